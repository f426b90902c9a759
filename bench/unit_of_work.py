"""The CPU of the write path's logic alone: units of work of 16 postings (top-ups, bonuses and
purchases of 2,000 users who each have 5 top-ups today) applied and rolled back: no HTTP, no
load generator, no fsync. Steadier than the POST mix's A/B on a noisy machine. Compare builds,
or the cost of each part of player protection (configured as bench/protect.py does):

    for b in /tmp/before .; do PYTHONPATH=$b/src .venv/bin/python bench/unit_of_work.py; done
    for p in none freezes limits monitors all; do
        PYTHONPATH=src .venv/bin/python bench/unit_of_work.py --protect $p; done

``--postgresql ADMIN_URL`` runs on a PostgreSQL database of its own, created through ADMIN_URL
and dropped afterwards (as bench/compare.py does); each statement is then a round trip.

``--builds SRC SRC …`` compares builds interleaved finely, for a machine whose speed drifts
within seconds: one process per build (PYTHONPATH=SRC), each with its database set up alike,
take turns running slices of SLICE_UNITS units of work, the order turning each round. It prints
each build's median and the median, over the rounds, of each build's slice to the first's:

    .venv/bin/python bench/unit_of_work.py --protect all --builds /tmp/before/src src

``--expiring``: the postings are in LP, whose credits expire after 30 days (every top-up and
bonus a lot, every purchase drawing from them); compare with the same run without it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import run
import wallet
from wallet.config import Settings
from wallet.service.clock import new_transaction_id, now_us
from wallet.service.commands import PostingCommand
from wallet.service.posting import apply_commands
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService
from wallet.storage import Session

UNITS = 1_500
WARMUP_UNITS = 300
SLICE_UNITS = 25
POSTINGS = 16
USERS = 2_000
TOPUPS_TODAY = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--protect", choices=["none", "freezes", "limits", "monitors", "all"], default="none"
    )
    parser.add_argument(
        "--postgresql",
        metavar="ADMIN_URL",
        help="run on a fresh PostgreSQL database created through this URL (e.g."
        " postgresql://postgres@127.0.0.1:5432/postgres) instead of a SQLite file",
    )
    parser.add_argument("--builds", nargs="+", metavar="SRC", help="compare these builds' src")
    parser.add_argument("--expiring", action="store_true", help="LP, with credits that expire")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.builds:
        compare(args.builds, sys.argv[1 : sys.argv.index("--builds")])
        return
    directory = Path(tempfile.mkdtemp(prefix="wallet-uow-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        backend = "sqlite" if args.postgresql is None else "postgresql"
        url = stack.enter_context(run.fresh_database(backend, directory, args.postgresql or ""))
        measure(url, args.protect, args.expiring, args.serve)


def compare(builds: list[str], options: list[str]) -> None:
    """Run one serving process per build and alternate slices of units of work among them."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, *options, "--serve"],
            env={**os.environ, "PYTHONPATH": os.path.abspath(build)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for build in builds
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", "a build failed to set up"
    times: list[list[float]] = [[] for _ in builds]
    ratios: list[list[float]] = [[] for _ in builds]
    for round_ in range(UNITS // SLICE_UNITS):
        order = list(range(len(builds)))
        order = order[round_ % len(order) :] + order[: round_ % len(order)]
        medians = [0.0] * len(builds)
        for index in order:
            process = processes[index]
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(f"{SLICE_UNITS}\n")
            process.stdin.flush()
            slice_times = json.loads(process.stdout.readline())
            medians[index] = statistics.median(slice_times)
            if round_ * SLICE_UNITS >= WARMUP_UNITS:
                times[index].extend(slice_times)
        if round_ * SLICE_UNITS >= WARMUP_UNITS:
            for index in range(len(builds)):
                ratios[index].append(medians[index] / medians[0])
    for process in processes:
        assert process.stdin is not None
        process.stdin.close()
        process.wait()
    for build, build_times, build_ratios in zip(builds, times, ratios, strict=True):
        median_us = statistics.median(build_times) * 1e6
        print(
            f"{build} {' '.join(options)}: median {median_us / POSTINGS:.1f} µs per posting,"
            f" {statistics.median(build_ratios):.3f} of the first build's (median of"
            f" {len(build_ratios)} rounds of {SLICE_UNITS} units of work)"
        )


def measure(database_url: str, part: str, expiring: bool, serve: bool = False) -> None:
    service = WalletService(Settings(database_url=database_url, seed=True))
    service.start()
    asset = "GC"
    if expiring:
        asset = "LP"
        with service.database.unit_of_work() as session:
            session.run("UPDATE assets SET expires_after_days = 30 WHERE code = 'LP'")
        service.assets.refresh()
    rng = random.Random(1)
    users = [f"bench_{n:05d}" for n in range(1, USERS + 1)]

    def command(kind: str, user: str) -> PostingCommand:
        return service.transactions.command_for(
            TransactionInput(
                transaction_type=kind,
                user_id=user,
                asset_code=asset,
                amount=Decimal("1.00"),
                description="x",
                idempotency_key=None,
                refund_of=None,
            )
        )

    connection = service.database.connect_writer()
    scales = service.assets.scales()
    # As the writer does: it remembers its accounts' usage of the day (builds that have it).
    remembered: dict[str, Any] = {}
    try:
        from wallet.service.limits import DayUsage

        remembered["day_usage"] = DayUsage()
    except ImportError:
        pass
    for _ in range(TOPUPS_TODAY):
        for first in range(0, USERS, 100):
            connection.begin()
            topups = [command("topup", user) for user in users[first : first + 100]]
            apply_commands(connection.session, topups, scales, service.clock.now_us())
            connection.commit()
    connection.begin()
    protect(connection.session, part, users, rng)
    connection.commit()

    def unit_of_work() -> float:
        kinds = ["topup", "bonus", "purchase", "topup"]
        commands = [command(rng.choice(kinds), rng.choice(users)) for _ in range(POSTINGS)]
        started = time.perf_counter()
        connection.begin()
        apply_commands(connection.session, commands, scales, service.clock.now_us(), **remembered)
        connection.rollback()
        return time.perf_counter() - started

    if serve:
        print("ready", flush=True)
        for line in sys.stdin:
            print(json.dumps([unit_of_work() for _ in range(int(line))]), flush=True)
        connection.close()
        service.stop()
        return
    times = [unit_of_work() for _ in range(UNITS)]
    median_us = statistics.median(times[WARMUP_UNITS:]) * 1e6
    build = Path(wallet.__file__).parents[1]
    print(
        f"{build} --protect {part} {asset}: median {median_us:.0f} µs per unit of work of"
        f" {POSTINGS} postings ({median_us / POSTINGS:.1f} µs per posting)"
    )
    connection.close()
    service.stop()


def protect(session: Session, part: str, users: list[str], rng: random.Random) -> None:
    at = now_us()
    if part in ("freezes", "all"):
        session.run_many(
            "INSERT INTO freezes (user_id, asset_code, reason, frozen_by, frozen_at_us)"
            " VALUES (?, '*', 'bench', 'bench', ?)",
            [(f"frozen_{n:06d}", at) for n in range(100_000)],
        )
    if part in ("limits", "all"):
        session.run_many(
            "INSERT INTO daily_limits (asset_code, user_id, debit_per_day_minor,"
            " credit_per_day_minor, updated_at_us) VALUES (?, '*', ?, ?, ?)",
            [(code, 10**15, 10**15, at) for code in ("GC", "DI", "LP")],
        )
    if part in ("monitors", "all"):
        session.run_many(
            "INSERT INTO balance_monitors (id, asset_code, user_id, condition, threshold_minor,"
            " created_at_us) VALUES (?, 'GC', ?, ?, ?, ?)",
            [
                (
                    new_transaction_id(),
                    rng.choice(users),
                    "above" if n % 2 else "below",
                    rng.randint(100, 1_000),
                    at,
                )
                for n in range(1_000)
            ],
        )


if __name__ == "__main__":
    main()
