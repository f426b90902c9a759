"""The CPU of the write path's logic alone: units of work of 16 postings applied and rolled back
(no HTTP, no load generator, no fsync), on a fresh seeded SQLite database in a temporary
directory. Steadier than the POST mix's A/B on a noisy machine; compare builds with

    for b in /tmp/before .; do PYTHONPATH=$b/src .venv/bin/python bench/unit_of_work.py; done
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal

from wallet.config import Settings
from wallet.service.posting import apply_commands
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService

UNITS = 1_500
WARMUP_UNITS = 300
POSTINGS = 16


def main() -> None:
    directory = tempfile.mkdtemp(prefix="wallet-uow-")
    service = WalletService(Settings(database_url=f"sqlite:///{directory}/w.db", seed=True))
    service.start()
    rng = random.Random(1)
    connection = service.database.connect_writer()
    scales = service.assets.scales()
    times = []
    for _ in range(UNITS):
        commands = [
            service.transactions.command_for(
                TransactionInput(
                    transaction_type=rng.choice(["topup", "bonus", "purchase", "topup"]),
                    user_id=f"user_00{rng.randint(1, 2)}",
                    asset_code="GC",
                    amount=Decimal("1.00"),
                    description="x",
                    idempotency_key=None,
                    refund_of=None,
                )
            )
            for _ in range(POSTINGS)
        ]
        started = time.perf_counter()
        connection.begin()
        apply_commands(connection.session, commands, scales, service.clock.now_us())
        connection.rollback()
        times.append(time.perf_counter() - started)
    median_us = statistics.median(times[WARMUP_UNITS:]) * 1e6
    print(
        f"{sys.path[0]}: median {median_us:.0f} µs per unit of work of {POSTINGS} postings"
        f" ({median_us / POSTINGS:.1f} µs per posting)"
    )
    connection.close()
    service.stop()


if __name__ == "__main__":
    main()
