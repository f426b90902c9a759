"""Daily limits' SQL: the limits configured (``daily_limits``, migration 0012) and what a user's
accounts moved today, read from the ledger itself.

A day's usage is not kept anywhere: it is summed from the user's entries of the day, a range of
the index ``entries_account_time (account_id, created_at_us, id)`` (migration 0001), joined to
their transactions by id (and a refund to its original). So it is exact whatever wrote those
entries (any process, before or after a limit was set), and it costs nothing to the writes of
an asset without a limit. The writer's unit of work reads the limits and that usage with the
rest of its protection, in one statement (storage/protection.py).
"""

from dataclasses import dataclass

from wallet.domain.ledger import TransactionType

from .database import Session

# The asset's limit for everyone has this user id (a key column is never NULL).
EVERY_USER = "*"

_COLUMNS = "asset_code, user_id, debit_per_day_minor, credit_per_day_minor, updated_at_us"


@dataclass(frozen=True, slots=True)
class StoredLimit:
    asset_code: str
    # EVERY_USER for the asset's limit, else the user whose override it is.
    user_id: str
    debit_per_day_minor: int | None
    credit_per_day_minor: int | None
    updated_at_us: int


_DEBITS = (TransactionType.PURCHASE.value, TransactionType.HOLD.value)
_CREDITS = (TransactionType.TOPUP.value, TransactionType.BONUS.value)
# The day's usage of each account of ``{accounts}`` (a row source ``w`` of id, after_id,
# asset_code, user_id) that has a limit row of its asset, for everyone or for its user: what it
# spent (purchases and hold placements, less the refunds of purchases made the same day), what
# it received (top-ups and bonuses), and its last entry id, over its entries after ``after_id``
# made in [start, end). Parameters: the day's start, those of ``{accounts}``, start, end. Rows
# start with ``{columns}`` (storage/protection.py reads it among other rows). A user's debit
# entry is negative, a refund's credit entry positive: both are negated to count as spending.
USAGE = (
    "SELECT {columns} e.account_id,"
    " CAST(COALESCE(SUM(CASE"
    f" WHEN t.transaction_type IN ('{_DEBITS[0]}', '{_DEBITS[1]}') THEN -e.amount_minor"
    f" WHEN t.transaction_type = '{TransactionType.REFUND.value}'"
    f" AND o.transaction_type = '{TransactionType.PURCHASE.value}'"
    " AND o.created_at_us >= ? THEN -e.amount_minor"
    " ELSE 0 END), 0) AS BIGINT),"
    " CAST(COALESCE(SUM(CASE"
    f" WHEN t.transaction_type IN ('{_CREDITS[0]}', '{_CREDITS[1]}') THEN e.amount_minor"
    " ELSE 0 END), 0) AS BIGINT),"
    " max(e.id)"
    " FROM {accounts}"
    " JOIN entries e ON e.account_id = w.id AND e.id > w.after_id"
    " AND e.created_at_us >= ? AND e.created_at_us < ?"
    " JOIN transactions t ON t.id = e.transaction_id"
    " LEFT JOIN transactions o ON o.id = t.refund_of"
    " WHERE EXISTS (SELECT 1 FROM daily_limits d WHERE d.asset_code = w.asset_code"
    f" AND d.user_id IN (w.user_id, '{EVERY_USER}'))"
    " GROUP BY e.account_id"
)


def put_limit(session: Session, limit: StoredLimit) -> None:
    session.run(
        f"INSERT INTO daily_limits ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (asset_code, user_id) DO UPDATE SET"
        " debit_per_day_minor = excluded.debit_per_day_minor,"
        " credit_per_day_minor = excluded.credit_per_day_minor,"
        " updated_at_us = excluded.updated_at_us",
        (
            limit.asset_code,
            limit.user_id,
            limit.debit_per_day_minor,
            limit.credit_per_day_minor,
            limit.updated_at_us,
        ),
    )


def delete_limit(session: Session, asset_code: str, user_id: str) -> bool:
    """Remove a limit; False when there was none."""
    row = session.one(
        "DELETE FROM daily_limits WHERE asset_code = ? AND user_id = ? RETURNING asset_code",
        (asset_code, user_id),
    )
    return row is not None


def list_limits(
    session: Session,
    *,
    limit: int,
    after: tuple[str, str] | None = None,
    asset_code: str | None = None,
    user_id: str | None = None,
) -> list[StoredLimit]:
    """A page of limits in (asset_code, user_id) order, after ``after``: a range of the primary
    key."""
    conditions: list[str] = []
    params: list[object] = []
    if after is not None:
        conditions.append("(asset_code, user_id) > (?, ?)")
        params += list(after)
    if asset_code is not None:
        conditions.append("asset_code = ?")
        params.append(asset_code)
    if user_id is not None:
        conditions.append("user_id = ?")
        params.append(user_id)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    params.append(limit)
    rows = session.all(
        f"SELECT {_COLUMNS} FROM daily_limits{where} ORDER BY asset_code, user_id LIMIT ?", params
    )
    return [StoredLimit(*row) for row in rows]
