"""Read-only reports over the ledger, for operators.

``daily_activity`` groups one asset's transactions into UTC days. ``created_at_us`` counts
microseconds since the Unix epoch, and a UTC day is exactly 86,400 s, so the integer division
``created_at_us / 86400000000`` is the day's number since 1970-01-01 on both backends (SQLite and
PostgreSQL both divide integers to an integer, and the times are positive).

Cost: one range scan of the index ``transactions_asset_time`` (migration 0006), which holds
every column the query reads, so the work grows with the number of the asset's transactions in
the window and not with the size of the ledger; the grouping keeps at most one row per day and type.
"""

from dataclasses import dataclass

from .database import Session

US_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class DailyTotal:
    day: int  # days since 1970-01-01, UTC
    transaction_type: str
    count: int
    amount_minor: int


def daily_activity(
    session: Session, asset_code: str, from_us: int, until_us: int
) -> list[DailyTotal]:
    """Per UTC day and transaction type, the count and the sum of the amounts of the asset's
    transactions created in ``[from_us, until_us)``; days and types with none are absent.
    """
    rows = session.all(
        f"SELECT created_at_us / {US_PER_DAY} AS day, transaction_type, count(*), sum(amount_minor)"
        " FROM transactions"
        " WHERE asset_code = ? AND created_at_us >= ? AND created_at_us < ?"
        " GROUP BY day, transaction_type"
        " ORDER BY day, transaction_type",
        (asset_code, from_us, until_us),
    )
    return [DailyTotal(int(day), kind, int(count), int(total)) for day, kind, count, total in rows]
