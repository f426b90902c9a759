"""Configure player protection on a populated bench database, as issue 18's speed target says:
a freeze list of 100,000 users (none of them in the workload: bench users are bench_NNNNN),
a daily limit on every asset (far above what a run spends or receives), and 1,000 balance
monitors on bench users' GC balances (half above, half below thresholds around the opening
balance, so that the mix's moves cross them).

    .venv/bin/python bench/protect.py DATABASE_URL [--users 10000]
"""

from __future__ import annotations

import argparse
import random

from wallet.config import Settings
from wallet.service.clock import new_transaction_id, now_us
from wallet.storage import open_database

FROZEN_USERS = 100_000
MONITORS = 1_000
LIMIT_MINOR = 10**15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    database = open_database(Settings(database_url=args.database_url))
    rng = random.Random(18)
    at = now_us()
    with database.unit_of_work() as session:
        session.run_many(
            "INSERT INTO freezes (user_id, asset_code, reason, frozen_by, frozen_at_us)"
            " VALUES (?, '*', 'bench', 'bench', ?)",
            [(f"frozen_{n:06d}", at) for n in range(FROZEN_USERS)],
        )
        codes = [row[0] for row in session.all("SELECT code FROM assets")]
        session.run_many(
            "INSERT INTO daily_limits (asset_code, user_id, debit_per_day_minor,"
            " credit_per_day_minor, updated_at_us) VALUES (?, '*', ?, ?, ?)",
            [(code, LIMIT_MINOR, LIMIT_MINOR, at) for code in codes],
        )
        session.run_many(
            "INSERT INTO balance_monitors (id, asset_code, user_id, condition, threshold_minor,"
            " created_at_us) VALUES (?, 'GC', ?, ?, ?, ?)",
            [
                (
                    new_transaction_id(),
                    f"bench_{rng.randint(1, args.users):05d}",
                    "above" if n % 2 else "below",
                    rng.randint(5_000, 15_000),
                    at,
                )
                for n in range(MONITORS)
            ],
        )
    database.close()
    print(
        f"protected: {FROZEN_USERS:,} frozen users, limits on {len(codes)} assets,"
        f" {MONITORS:,} monitors"
    )


if __name__ == "__main__":
    main()
