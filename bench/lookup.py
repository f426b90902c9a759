"""Finding transactions by a reference: the latency of GET /transactions?metadata[order_id]=X
with one connection, on a ledger built by bulkload.py (its orders bulk-order-1 … bulk-order-N).

    .venv/bin/python bench/lookup.py sqlite:////tmp/wallet-10m.db --warm
    .venv/bin/python bench/lookup.py postgresql://postgres@127.0.0.1:5432/bench_bulk --explain

1. counts the database's orders (the ``order_id`` values ``bulk-order-…`` in
   ``transaction_metadata``); with ``--explain``, prints the query plan of every statement of one
   lookup's page (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN``), the statements captured
   from the service's own ``find_transactions``;
2. starts the service (``main.py``) on the database, pinned to CPU 0 as run.py does, and checks
   a sample of orders: each answers its one transaction, an unknown order none;
3. ``--repeat`` rounds: with ``--warm`` the database read once first (SQLite: the file, front to
   back, as compare.py --warm; PostgreSQL: the relations a lookup reads, with ``pg_prewarm`` in
   its ``read`` mode, into the system's page cache, which the extension needs to be installed
   for), then 2 s of warm-up and ``--duration`` seconds measured, wrk with one
   thread and one connection on CPU 1 (bench/wrk/get_transactions_metadata.lua: a random order
   each request), taken again when other processes kept the machine busy (run.py's rule).

Prints each round's p50/p90/p99/p99.9 and the medians, and writes them as JSON to
bench/results/<timestamp>-<backend>-lookup.json.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

import run
from compare import warm_page_cache

sys.path.insert(0, str(run.ROOT / "src"))

from wallet.config import Backend, Settings
from wallet.storage import ledger as store
from wallet.storage import open_database
from wallet.storage.database import Params, Row, Session, postgresql_conninfo, sqlite_path

ORDER_PREFIX = "bulk-order-"  # bulkload.order_id
WARMUP_S = 2.0
# What a lookup reads on PostgreSQL (the plans under --explain), tables and indexes.
LOOKUP_RELATIONS = (
    "transaction_metadata",
    "transaction_metadata_pkey",
    "transactions",
    "transactions_pkey",
    "transactions_refund_of",
    "entries",
    "entries_transaction",
    "accounts",
    "accounts_pkey",
)
SAMPLE_ORDERS = 20
LOOKUP = run.Workload(
    "get_transactions_metadata",
    "GET /transactions?metadata[order_id]=X",
    "get_transactions_metadata.lua",
    default=False,
)


class Recording:
    """A session that keeps the statements it runs, to explain them afterwards."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.statements: list[tuple[str, Params]] = []

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        self.statements.append((sql, params))
        return self.session.all(sql, params)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        self.statements.append((sql, params))
        return self.session.one(sql, params)


def count_orders(session: Session) -> int:
    # '.' follows '-': the range of the values that start with the prefix, in the primary key.
    row = session.one(
        "SELECT count(*) FROM transaction_metadata WHERE key = 'order_id'"
        " AND value >= ? AND value < ?",
        (ORDER_PREFIX, ORDER_PREFIX[:-1] + "."),
    )
    return 0 if row is None else int(row[0])


def explain(session: Session, order: str) -> str:
    """The plans of the statements of one lookup's page, as the route asks for it (limit 50,
    one more to know if a next page exists)."""
    recording = Recording(session)
    store.find_transactions(recording, limit=51, metadata=[("order_id", order)])
    prefix = "EXPLAIN QUERY PLAN " if session.backend is Backend.SQLITE else "EXPLAIN "
    parts = []
    for sql, params in recording.statements:
        rows = session.all(prefix + sql, params)
        # SQLite: (id, parent, notused, detail); PostgreSQL: one line of text per row.
        plan = [str(row[-1]) for row in rows]
        parts.append(f"{sql}\n  " + "\n  ".join(plan))
    return "\n\n".join(parts)


def prewarm(database_url: str) -> float:
    """PostgreSQL: read the relations a lookup reads once (``pg_prewarm``, into the system's
    page cache, as the SQLite file is read); the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(postgresql_conninfo(database_url), autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        for relation in LOOKUP_RELATIONS:
            connection.execute("SELECT pg_prewarm(%s, 'read')", (relation,))
    return time.monotonic() - started


def warm(database_url: str) -> float:
    settings = Settings(database_url=database_url)
    if settings.backend is Backend.SQLITE:
        return warm_page_cache(Path(sqlite_path(database_url)))
    return prewarm(database_url)


def check_answers(url: str, orders: int, rng: random.Random) -> None:
    """A sample of orders each answers its one transaction; an unknown order answers none."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for number in rng.sample(range(1, orders + 1), min(SAMPLE_ORDERS, orders)):
            order = f"{ORDER_PREFIX}{number}"
            items = client.get("/transactions", params={"metadata[order_id]": order}).json()
            found = [item["metadata"].get("order_id") for item in items["items"]]
            if found != [order]:
                raise RuntimeError(f"{order}: the service answered {found}")
        unknown = client.get("/transactions", params={"metadata[order_id]": "no-such-order"})
        if unknown.json()["items"]:
            raise RuntimeError("an unknown order answered transactions")


def summary(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    return (
        f"{result['throughput_rps']:7,.0f} req/s  p50 {latency['p50']:.2f}  p90"
        f" {latency['p90']:.2f}  p99 {latency['p99']:.2f}  p99.9 {latency['p99.9']:.2f}"
        f"  max {latency['max']:.1f} ms  CPU {result['server_cpu_us_per_request']:.0f} µs/req"
        f"  statuses {result['statuses']}"
    )


def measure_rounds(args: argparse.Namespace, orders: int) -> list[dict[str, Any]]:
    """The service on the database, its answers checked, then ``--repeat`` measured rounds."""
    os.environ["BENCH_ORDERS"] = str(orders)
    settings = Settings(database_url=args.database_url)
    sqlite = settings.backend is Backend.SQLITE
    # PostgreSQL: its backends serving the service are not "other processes" (run.py's rule).
    database = None if sqlite else args.database_url.rsplit("/", 1)[1]
    load = run.LoadSettings(threads=1, connections=1, load_cpu=1, users=run.USERS)
    env = {"DATABASE_URL": args.database_url, "WALLET_LOG_LEVEL": "warning"}
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wallet-lookup-") as workdir:
        argv = [args.python, str(run.ROOT / "main.py")]
        server = run.Server("service", argv, env, 0, Path(workdir) / "server.log").start()
        try:
            check_answers(server.url, orders, random.Random(args.seed))
            for number in range(args.repeat):
                warmed_s = warm(args.database_url) if args.warm else None
                loadavg = Path("/proc/loadavg").read_text().split()[:3]
                run.run_wrk(load, LOOKUP, [server], WARMUP_S, args.seed + 1000 + number)
                result = run.measure_quietly(
                    load, LOOKUP, [server], args.duration, args.seed + number, database
                )
                result.update(warmed_s=warmed_s, loadavg_at_start=loadavg)
                rounds.append(result)
                read = f", read in {warmed_s:.1f} s before" if warmed_s is not None else ""
                print(f"round {number + 1} (load {' '.join(loadavg)}{read}): {summary(result)}")
        finally:
            server.stop()
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", help="a database built by bench/bulkload.py")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--warm", action="store_true", help="read the database once before each round"
    )
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    started_at = datetime.now(UTC)
    database = open_database(Settings(database_url=args.database_url))
    try:
        with database.reading() as session:
            backend = session.backend.value
            orders = count_orders(session)
            if orders == 0:
                raise SystemExit("no bulk-order-… in transaction_metadata: see bulkload.py")
            plans = explain(session, f"{ORDER_PREFIX}{orders // 2}")
    finally:
        database.close()
    print(f"{orders:,} orders")
    if args.explain:
        print(plans)
    rounds = measure_rounds(args, orders)
    medians = run.median_of(rounds)
    print(f"median of {len(rounds)}: {summary(medians)}")
    report = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/lookup.py", *sys.argv[1:]]),
        "backend": backend,
        "orders": orders,
        "plans": plans,
        "median": medians,
        "rounds": rounds,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
    }
    run.write_report(report, f"{backend}-lookup", started_at)
    return 0


if __name__ == "__main__":
    sys.exit(main())
