# The wallet service: `docker build -t wallet . && docker run -p 8000:8000 -v wallet-data:/data wallet`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, pinned, so that a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

# main.py puts src/ on the import path, so the package itself needs no install.
COPY main.py .
COPY src/ src/
# `wallet …` (the command line) inside the container, for `wallet keys create` and friends.
RUN printf '#!/bin/sh\nexec python -m wallet.cli "$@"\n' > /usr/local/bin/wallet \
    && chmod 755 /usr/local/bin/wallet

# Run as an unprivileged user (uid 10001) that owns only the data directory.
RUN useradd --system --uid 10001 --no-create-home wallet \
    && mkdir /data \
    && chown wallet /data
USER wallet

# SQLite by default, in a volume so the ledger outlives the container; point DATABASE_URL at
# PostgreSQL (postgresql://user:pass@host:5432/db) for production.
# WALLET_AUTH=required: every route but /, /health, /docs and /openapi.json needs an API key,
# even before the first one exists (see README, "Creating the first API key":
# `docker exec -it <container> wallet keys create --name ops --scope admin`).
ENV DATABASE_URL=sqlite:////data/wallet_service.db \
    PORT=8000 \
    WALLET_AUTH=required \
    PYTHONPATH=/app/src
VOLUME ["/data"]
EXPOSE 8000

# The slim image has no curl: ask Python. /health is open (no key needed) and answers 503 when
# the database does not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]

# The service starts its webhook and stream deliveries as a child process of its own (`wallet
# relay`, WALLET_EVENTS_RELAY=process), restarted if it dies and stopped with the service: the
# one command runs both, and a CPU beyond the first serves the deliveries.
CMD ["python", "main.py"]
