"""Give every bench user an opening top-up, fast: the service's own ledger code without HTTP.

    python bench/populate.py sqlite:////tmp/wallet.db --users 10000

Migrates and seeds the database as the service would on start, then applies one top-up of
100.00 GC per user (bench_00001 …) through the group-commit writer's ``apply_now``: the same
``posting.apply_commands`` and the same schema checks as POST /transaction, a thousand
transactions per commit. It is meant for a fresh database (bench/run.py runs it on one before
starting the service), and does nothing where the bench users exist already. On PostgreSQL it
ends with ANALYZE, as autovacuum would soon after a bulk load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Like main.py: the wallet package from src/, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wallet.config import Backend, Settings
from wallet.domain.ledger import TransactionType
from wallet.service.commands import PostingCommand
from wallet.service.seed import seed_demo_ledger
from wallet.service.wallet import WalletService
from wallet.storage import ledger as store

OPENING_TOPUP_MINOR = 10_000  # 100.00 GC
COMMANDS_PER_COMMIT = 1_000


def user_id(number: int) -> str:
    return f"bench_{number:05d}"


def opening_topup(number: int) -> PostingCommand:
    return PostingCommand(
        transaction_type=TransactionType.TOPUP,
        user_id=user_id(number),
        asset_code="GC",
        amount_minor=OPENING_TOPUP_MINOR,
        description="Opening top-up",
    )


def populate(database_url: str, users: int) -> bool:
    """True if the users were created, False if they existed already."""
    service = WalletService(Settings(database_url=database_url, seed=True))
    service.database.migrate()
    service.assets.refresh()
    seed_demo_ledger(service.assets, service.writer)
    try:
        with service.database.reading() as session:
            if store.user_exists(session, user_id(1)):
                return False
        for first in range(1, users + 1, COMMANDS_PER_COMMIT):
            last = min(first + COMMANDS_PER_COMMIT, users + 1)
            outcomes = service.writer.apply_now([opening_topup(n) for n in range(first, last)])
            refused = [o.error for o in outcomes if o.error is not None]
            if refused:
                raise SystemExit(f"opening top-ups refused: {refused[:3]}")
        if service.database.backend is Backend.POSTGRESQL:
            # What autovacuum would do a minute later: without statistics, PostgreSQL plans the
            # history page's join of entries and accounts as a scan of every account.
            with service.database.reading() as session:
                session.run("ANALYZE")
    finally:
        service.stop()
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    started = time.monotonic()
    if populate(args.database_url, args.users):
        print(f"{args.users:,} opening top-ups in {time.monotonic() - started:.1f} s")
    else:
        print("the bench users exist already: nothing done")


if __name__ == "__main__":
    main()
