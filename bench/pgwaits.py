"""What the service's PostgreSQL backends are doing, sampled: are the writers waiting on each
other's row locks (the treasury row is the one every unit of work locks)?

Run it beside a benchmark of two or more service processes on one database:

    .venv/bin/python bench/run.py --backend postgresql --processes 2 --workloads post_transaction &
    sleep 20; .venv/bin/python bench/pgwaits.py --seconds 10

(bench/run.py names its databases ``wallet_bench_…``: the default ``--database-prefix``.)

Every ``--interval`` it reads ``pg_stat_activity`` for the database and counts, per sample, the
backends inside a transaction (``state`` active or idle in transaction) and, of those, the ones
waiting for a lock (``wait_event_type = 'Lock'``: a row lock shows as ``transactionid`` or
``tuple``). The share of lock waits among busy backends is what a serialising row would drive
towards one half (with two writers) and more.
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import psycopg

SAMPLE = """
SELECT state, wait_event_type, wait_event
FROM pg_stat_activity
WHERE datname LIKE %s AND pid <> pg_backend_pid()
  AND state IN ('active', 'idle in transaction')
"""


def sample(admin_url: str, prefix: str, seconds: float, interval: float) -> dict[str, object]:
    busy = 0
    waiting = 0
    samples = 0
    events: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + seconds
    with psycopg.connect(admin_url, autocommit=True) as connection:
        while time.monotonic() < deadline:
            rows = connection.execute(SAMPLE, (f"{prefix}%",)).fetchall()
            samples += 1
            for state, wait_type, wait_event in rows:
                busy += 1
                label = f"{wait_type}:{wait_event}" if wait_type else f"{state}: on CPU"
                events[label] += 1
                if wait_type == "Lock":
                    waiting += 1
            time.sleep(interval)
    return {
        "samples": samples,
        "busy_backend_samples": busy,
        "lock_wait_samples": waiting,
        "lock_wait_share_of_busy": round(waiting / busy, 4) if busy else None,
        "by_wait_event": dict(events.most_common(10)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-prefix", default="wallet_bench_", help="whose backends")
    parser.add_argument(
        "--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="where to look"
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--interval", type=float, default=0.005)
    args = parser.parse_args()
    found = sample(args.admin_url, args.database_prefix, args.seconds, args.interval)
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
