"""Daily limits' SQL: the limits configured (``daily_limits``, migration 0012) and what a user's
accounts moved today, read from the ledger itself.

A day's usage is not kept anywhere: it is summed from the user's entries of the day, a range of
the index ``entries_account_time (account_id, created_at_us, id)`` (migration 0001), joined to
their transactions by id (and a refund to its original). So it is exact whatever wrote those
entries (any process, before or after a limit was set), and it costs nothing to the writes of
an asset without a limit. The writer's unit of work reads the limits of its assets and users
with its other protection (storage/protection.py), then, if one applies, that usage.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from wallet.config import Backend
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
# Per account: what it spent (purchases and hold placements, less the refunds of purchases made
# the same day) and what it received (top-ups and bonuses) from ``day_start``. A user's debit
# entry is negative, a refund's credit entry positive: both are negated to count as spending.
_USAGE = (
    "SELECT e.account_id,"
    " COALESCE(SUM(CASE"
    f" WHEN t.transaction_type IN ('{_DEBITS[0]}', '{_DEBITS[1]}') THEN -e.amount_minor"
    f" WHEN t.transaction_type = '{TransactionType.REFUND.value}'"
    f" AND o.transaction_type = '{TransactionType.PURCHASE.value}'"
    " AND o.created_at_us >= ? THEN -e.amount_minor"
    " ELSE 0 END), 0),"
    " COALESCE(SUM(CASE"
    f" WHEN t.transaction_type IN ('{_CREDITS[0]}', '{_CREDITS[1]}') THEN e.amount_minor"
    " ELSE 0 END), 0)"
    " , max(e.id)"
    " FROM {accounts}"
    " JOIN entries e ON e.account_id = w.id AND e.id > w.after_id"
    " AND e.created_at_us >= ? AND e.created_at_us < ?"
    " JOIN transactions t ON t.id = e.transaction_id"
    " LEFT JOIN transactions o ON o.id = t.refund_of"
    " GROUP BY e.account_id"
)
_USAGE_POSTGRESQL = _USAGE.replace(
    "{accounts}", "unnest(?::bigint[], ?::bigint[]) AS w(id, after_id)"
)
_USAGE_SQLITE = _USAGE.replace(
    "{accounts}",
    "(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS after_id"
    " FROM json_each(?)) AS w",
)


def usage_after(
    session: Session, accounts: Sequence[tuple[int, int]], start_us: int, end_us: int
) -> dict[int, tuple[int, int, int]]:
    """(spent, received, last entry id) of each (account id, entry id) in ``accounts``, summed
    over its entries after that entry id made in [start_us, end_us), for those that have any.

    On PostgreSQL the caller has locked the accounts first: every unit of work that writes an
    entry of an account holds its row lock, so what this reads is all there is, and an
    account's entry ids grow in the order its entries were committed.
    """
    if not accounts:
        return {}
    if session.backend is Backend.POSTGRESQL:
        ids = [account_id for account_id, _ in accounts]
        afters = [after_id for _, after_id in accounts]
        rows = session.all(_USAGE_POSTGRESQL, (start_us, ids, afters, start_us, end_us))
    else:
        pairs = orjson.dumps([list(pair) for pair in accounts]).decode()
        rows = session.all(_USAGE_SQLITE, (start_us, pairs, start_us, end_us))
    return {
        int(account_id): (int(spent), int(received), int(last))
        for account_id, spent, received, last in rows
    }


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
