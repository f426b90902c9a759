"""A million lots expiring at once: issue 17's "POST mix throughput during the sweep at least
0.7 x without it, and how long the sweep took".

    .venv/bin/python bench/expiry_sweep.py
    .venv/bin/python bench/expiry_sweep.py --postgresql postgresql://postgres@127.0.0.1:5432/postgres

1. A fresh database, populated as every bench run is (bench/populate.py: 10,000 bench users
   with 100.00 GC), and the service (``main.py``) on CPU 0 as run.py starts it.
2. ``--lots`` lots (default 1,000,000): every bench user gets ``--lots / --users`` top-ups of
   1.00 LP, each a lot of its own with an ``expires_at`` a day ahead, through the API
   (``POST /transaction/batch``, 100 top-ups a request, from four connections).
3. The POST mix (run.py's wrk workload, 32 connections, wrk on CPU 1): a 2 s warm-up, then
   ``--duration`` seconds measured, "before".
4. Every lot is made due at once (``UPDATE lots SET expires_at_us = <now>``, what midnight does
   to lots made the same day a year ago), and the same mix runs again at once: 2 s of warm-up
   and ``--duration`` seconds measured while the service's sweep moves them to the ``expired``
   accounts, "during".
5. The sweep's time, from the update until no open lot is due (polled every 0.5 s), its lots
   per second, and a last run of the mix, "after", once the sweep is done.

Prints the three runs' throughput and p99, the ratio of "during" to the mean of "before" and
"after", and the sweep's time, and writes them to bench/results/<timestamp>-<backend>-sweep.json.
Measured runs are taken as run.py takes them (again when other processes were busy), except
"during", which cannot wait: its share of other processes' CPU is printed instead.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

import run

sys.path.insert(0, str(run.ROOT / "src"))

from wallet.config import Settings
from wallet.storage import open_database
from wallet.storage.database import Session

BATCH_ITEMS = 100
SWEEP_POLL_S = 0.5
SWEEP_TIMEOUT_S = 3_600.0


def create_lots(url: str, users: int, lots_per_user: int) -> None:
    expires_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    def credit(number: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for user in range(number, users + 1, 4):
                for first in range(0, lots_per_user, BATCH_ITEMS):
                    items = [
                        {
                            "transaction_type": "topup",
                            "user_id": run.user_id(user),
                            "asset_code": "LP",
                            "amount": 1,
                            "expires_at": expires_at,
                        }
                        for _ in range(first, min(lots_per_user, first + BATCH_ITEMS))
                    ]
                    client.post(
                        "/transaction/batch", json={"transactions": items}
                    ).raise_for_status()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(credit, range(1, 5)))


def due_lots(url: str, at_us: int) -> int:
    with unit_of_work(url) as session:
        row = session.one(
            "SELECT count(*) FROM lots WHERE remaining_minor > 0 AND expires_at_us <= ?",
            (at_us,),
        )
    assert row is not None
    return int(row[0])


def make_due(url: str, at_us: int) -> int:
    """Make every open lot due at ``at_us``; how many there are."""
    with unit_of_work(url) as session:
        session.run("UPDATE lots SET expires_at_us = ? WHERE remaining_minor > 0", (at_us,))
        row = session.one("SELECT count(*) FROM lots WHERE remaining_minor > 0")
    assert row is not None
    return int(row[0])


@contextlib.contextmanager
def unit_of_work(url: str) -> Iterator[Session]:
    database = open_database(Settings(database_url=url), create=False)
    try:
        with database.unit_of_work() as session:
            yield session
    finally:
        database.close()


def summary(result: dict[str, Any]) -> str:
    return (
        f"{result['throughput_rps']:8.0f} req/s, p99 {result['latency_ms']['p99']:.1f} ms,"
        f" other processes {100 * result['other_cpu_share']:.0f} % of a CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgresql", metavar="ADMIN_URL")
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    backend = "postgresql" if args.postgresql else "sqlite"
    workdir = Path(tempfile.mkdtemp(prefix="wallet-sweep-"))
    posts = next(w for w in run.WORKLOADS if w.name == "post_transaction")
    load = run.LoadSettings(2, 32, 1, args.users)
    runs: dict[str, dict[str, Any]] = {}
    with run.fresh_database(backend, workdir, args.postgresql or "") as url:
        run.populate(sys.executable, url, args.users, cpu=1)
        env = {"DATABASE_URL": url, "WALLET_LOG_LEVEL": "warning"}
        server = run.Server("service", [sys.executable, "main.py"], env, 0, workdir / "server.log")
        server.start()
        name = url.rsplit("/", 1)[1] if args.postgresql else None
        try:
            started = time.monotonic()
            create_lots(server.url, args.users, args.lots // args.users)
            print(f"{args.lots:,} lots made in {time.monotonic() - started:.0f} s")
            run.run_wrk(load, posts, [server], 2, seed=args.seed + 1000)
            runs["before"] = run.measure_quietly(
                load, posts, [server], args.duration, args.seed, database=name
            )
            print(f"before: {summary(runs['before'])}")
            due_at_us = time.time_ns() // 1000
            made_due = make_due(url, due_at_us)
            swept_from = time.monotonic()
            run.run_wrk(load, posts, [server], 2, seed=args.seed + 1001)
            runs["during"] = run.run_wrk(
                load, posts, [server], args.duration, args.seed + 1, database=name
            )
            measured_until = time.monotonic()
            print(f"during: {summary(runs['during'])}")
            while (left := due_lots(url, due_at_us)) > 0:
                if time.monotonic() - swept_from > SWEEP_TIMEOUT_S:
                    raise RuntimeError(f"the sweep left {left:,} due lots after an hour")
                time.sleep(SWEEP_POLL_S)
            sweep_s = time.monotonic() - swept_from
            print(f"sweep: {made_due:,} lots in {sweep_s:.1f} s ({made_due / sweep_s:,.0f}/s)")
            runs["after"] = run.measure_quietly(
                load, posts, [server], args.duration, args.seed + 2, database=name
            )
            print(f"after:  {summary(runs['after'])}")
        finally:
            server.stop()
    without = (runs["before"]["throughput_rps"] + runs["after"]["throughput_rps"]) / 2
    ratio = runs["during"]["throughput_rps"] / without
    whole = sweep_s >= measured_until - swept_from
    print(
        f"during / without: {ratio:.2f}"
        + ("" if whole else " (the sweep ended before the measured run did)")
    )
    report = {
        "backend": backend,
        "lots": made_due,
        "duration_s": args.duration,
        "seed": args.seed,
        "runs": runs,
        "during_vs_without": round(ratio, 3),
        "sweep_s": round(sweep_s, 1),
        "sweep_lots_per_s": round(made_due / sweep_s),
        "sweep_covered_the_measured_run": whole,
    }
    run.write_report(report, f"{backend}-sweep")


if __name__ == "__main__":
    main()
