"""The CPU of the write path's logic alone: units of work of 16 postings (top-ups, bonuses and
purchases of 2,000 users who each have 5 top-ups today) applied and rolled back: no HTTP, no
load generator, no fsync. Steadier than the POST mix's A/B on a noisy machine. Compare builds,
or the cost of each part of player protection (configured as bench/protect.py does):

    for b in /tmp/before .; do PYTHONPATH=$b/src .venv/bin/python bench/unit_of_work.py; done
    for p in none freezes limits monitors all; do
        PYTHONPATH=src .venv/bin/python bench/unit_of_work.py --protect $p; done

``--expiring``: the postings are in LP, whose credits expire after 30 days (every top-up and
bonus a lot, every purchase drawing from them); compare with the same run without it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from typing import Any

from wallet.config import Settings
from wallet.service.clock import new_transaction_id, now_us
from wallet.service.commands import PostingCommand
from wallet.service.posting import apply_commands
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService
from wallet.storage import Session

UNITS = 1_500
WARMUP_UNITS = 300
POSTINGS = 16
USERS = 2_000
TOPUPS_TODAY = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--protect", choices=["none", "freezes", "limits", "monitors", "all"], default="none"
    )
    parser.add_argument("--expiring", action="store_true", help="LP, with credits that expire")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="wallet-uow-")
    service = WalletService(Settings(database_url=f"sqlite:///{directory}/w.db", seed=True))
    service.start()
    asset = "GC"
    if args.expiring:
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
    protect(connection.session, args.protect, users, rng)
    connection.commit()
    times = []
    for _ in range(UNITS):
        kinds = ["topup", "bonus", "purchase", "topup"]
        commands = [command(rng.choice(kinds), rng.choice(users)) for _ in range(POSTINGS)]
        started = time.perf_counter()
        connection.begin()
        apply_commands(connection.session, commands, scales, service.clock.now_us(), **remembered)
        connection.rollback()
        times.append(time.perf_counter() - started)
    median_us = statistics.median(times[WARMUP_UNITS:]) * 1e6
    print(
        f"{sys.path[0]} --protect {args.protect} {asset}: median {median_us:.0f} µs per unit of"
        f" work of {POSTINGS} postings ({median_us / POSTINGS:.1f} µs per posting)"
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
