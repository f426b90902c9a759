"""Make every asset of a populated bench database expire, as issue 17's speed target says: the
POST mix "on an expiring asset" against the same mix on a non-expiring one.

    .venv/bin/python bench/expiring.py DATABASE_URL [--days 365] [--users 10000]

Every asset gets ``expires_after_days`` (so every top-up and bonus of the run makes a lot), and
every bench user's opening top-up (bench/populate.py's, of the first ``--users``) becomes a lot
of its whole amount, expiring ``--days`` after it was made, as if the policy had been on when it
was made: each purchase of the run then takes from lots, soonest first, before any credit
without expiry.
Written the way the service keeps lots: one row per lot, and the account's ``lots_open_minor``
and ``lots_made``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wallet.config import Settings
from wallet.service.clock import new_transaction_id
from wallet.storage import open_database

MICROS_PER_DAY = 86_400 * 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    database = open_database(Settings(database_url=args.database_url))
    with database.unit_of_work() as session:
        session.run("UPDATE assets SET expires_after_days = ?", (args.days,))
        openings = session.all(
            "SELECT t.id, e.account_id, e.amount_minor, t.created_at_us FROM transactions t"
            " JOIN entries e ON e.transaction_id = t.id AND e.amount_minor > 0"
            " JOIN accounts a ON a.id = e.account_id AND a.owner_type = 'user'"
            " WHERE t.transaction_type = 'topup' AND t.user_id LIKE 'bench\\_%' ESCAPE '\\'"
            " AND t.user_id <= ?",
            (f"bench_{args.users:05d}",),
        )
        session.run_many(
            "INSERT INTO lots (id, account_id, transaction_id, amount_minor, remaining_minor,"
            " expires_at_us, created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    new_transaction_id(),
                    account_id,
                    transaction_id,
                    amount,
                    amount,
                    created_at + args.days * MICROS_PER_DAY,
                    created_at,
                )
                for transaction_id, account_id, amount, created_at in openings
            ],
        )
        session.run_many(
            "UPDATE accounts SET lots_open_minor = lots_open_minor + ?, lots_made = lots_made + 1"
            " WHERE id = ?",
            [(amount, account_id) for _, account_id, amount, _ in openings],
        )
    database.close()
    print(f"expiring: every asset after {args.days} days, {len(openings):,} opening lots")


if __name__ == "__main__":
    main()
