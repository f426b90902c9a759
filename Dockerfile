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

# Run as an unprivileged user that owns only the data directory.
RUN useradd --system --uid 10001 --no-create-home wallet \
    && mkdir /data \
    && chown wallet /data
USER wallet

# SQLite by default, in a volume so the ledger outlives the container; point DATABASE_URL at
# PostgreSQL (postgresql://user:pass@host:5432/db) for production.
ENV DATABASE_URL=sqlite:////data/wallet_service.db \
    PORT=8000
VOLUME ["/data"]
EXPOSE 8000

# The slim image has no curl: ask Python. `/` answers as soon as the process serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/', timeout=4)"]

CMD ["python", "main.py"]
