"""A purchase by a user with many open lots: issue 17's "a user with 10,000 open lots still buys
in under 5 ms p99" (spending reads only the lots it consumes).

    .venv/bin/python bench/lots.py
    .venv/bin/python bench/lots.py --dir /dev/shm     # SQLite on memory: no disk in the figure
    .venv/bin/python bench/lots.py --postgresql postgresql://postgres@127.0.0.1:5432/postgres

On a fresh database, the service (``main.py``, pinned to CPU 0 as run.py does) is given two
users in GC: ``lots_user``, credited ``--lots`` times 10.00 GC, each credit a lot of its own
expiring one hour later than the one before (100 top-ups a batch, ``expires_at`` in the body),
and ``plain_user``, credited the same total without expiry. Then, one connection from CPU 1,
``--purchases`` purchases of each, alternating, each a random amount of 0.01 to 25.00 GC (so one
purchase takes from up to four lots; the lots left open stay in the thousands). Prints the p50,
p99 and max latency of each user's purchases, the lots still open, and writes them to
bench/results/<timestamp>-<backend>-lots.json. Random amounts from ``--seed`` (printed).

A purchase commits to disk before it is answered (SQLite ``synchronous=FULL``), so its p99 on
one connection carries the disk's slowest syncs, which a user without lots pays as much; with
``--dir`` on a memory file system (``/dev/shm``) the SQLite file is there and the figures are
the service's own work.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

import run

LOT_MAJOR = 10
BATCH_ITEMS = 100


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def credit(client: httpx.Client, user: str, lots: int, expiring: bool) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    for first in range(0, lots, BATCH_ITEMS):
        items = []
        for number in range(first, min(lots, first + BATCH_ITEMS)):
            item = {
                "transaction_type": "topup",
                "user_id": user,
                "asset_code": "GC",
                "amount": LOT_MAJOR,
            }
            if expiring:
                item["expires_at"] = (start + timedelta(hours=number)).isoformat()
            items.append(item)
        answer = client.post("/transaction/batch", json={"transactions": items})
        answer.raise_for_status()


def count_open_lots(client: httpx.Client, user: str) -> int:
    count, cursor = 0, None
    while True:
        params = {"limit": 500} if cursor is None else {"limit": 500, "cursor": cursor}
        page = client.get(f"/balance/{user}/GC/lots", params=params).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgresql", metavar="ADMIN_URL")
    parser.add_argument("--lots", type=int, default=10_000)
    parser.add_argument("--purchases", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the SQLite file goes (default: a temp dir)"
    )
    args = parser.parse_args()
    print(f"seed {args.seed}")
    rng = random.Random(args.seed)
    os.sched_setaffinity(0, {1})
    backend = "postgresql" if args.postgresql else "sqlite"
    workdir = Path(tempfile.mkdtemp(prefix="wallet-lots-", dir=args.dir))
    with run.fresh_database(backend, workdir, args.postgresql or "") as url:
        env = {"DATABASE_URL": url, "WALLET_LOG_LEVEL": "warning"}
        server = run.Server("service", [sys.executable, "main.py"], env, 0, workdir / "server.log")
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                credit(client, "lots_user", args.lots, expiring=True)
                credit(client, "plain_user", args.lots, expiring=False)
                latencies: dict[str, list[float]] = {"lots_user": [], "plain_user": []}
                for _ in range(args.purchases):
                    amount = f"{rng.randint(1, 2_500) / 100:.2f}"
                    for user, times in latencies.items():
                        body = {
                            "transaction_type": "purchase",
                            "user_id": user,
                            "asset_code": "GC",
                            "amount": amount,
                        }
                        started = time.perf_counter()
                        answer = client.post("/transaction", json=body)
                        times.append((time.perf_counter() - started) * 1000)
                        answer.raise_for_status()
                still_open = count_open_lots(client, "lots_user")
        except BaseException:
            print(f"failed: the service's log is kept in {workdir}", file=sys.stderr)
            raise
        finally:
            server.stop()
    # Kept only after a failure (its log): under /dev/shm the database takes memory.
    shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "backend": backend,
        "dir": None if args.postgresql else str(args.dir or tempfile.gettempdir()),
        "lots": args.lots,
        "purchases": args.purchases,
        "seed": args.seed,
        "lots_still_open": still_open,
        "latency_ms": {
            user: {
                "p50": statistics.median(times),
                "p99": percentile(times, 0.99),
                "max": max(times),
            }
            for user, times in latencies.items()
        },
    }
    for user, figures in report["latency_ms"].items():
        print(
            f"{user}: p50 {figures['p50']:.2f} ms, p99 {figures['p99']:.2f} ms,"
            f" max {figures['max']:.2f} ms"
        )
    print(f"lots_user: {still_open:,} lots still open")
    run.write_report(report, f"{backend}-lots")


if __name__ == "__main__":
    main()
