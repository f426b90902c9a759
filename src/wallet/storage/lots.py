"""The SQL of lots (credits that expire) and of what each debit drew from them.

A lot changes only under its account's row lock (storage/ledger.py, open_and_lock_accounts),
so whatever a unit of work reads here after taking its locks stays true until it commits. The
rules (which lots a debit takes from, which a give-back returns to) are service/lots.py's.
"""

from collections.abc import Sequence
from typing import NamedTuple

from wallet.config import Backend

from .database import Row, Session


class StoredLot(NamedTuple):
    id: str
    account_id: int
    transaction_id: str
    amount_minor: int
    remaining_minor: int
    expires_at_us: int
    created_at_us: int


class StoredDraw(NamedTuple):
    """What transaction ``transaction_id`` took from lot ``lot_id``, and how much went back."""

    transaction_id: str
    lot_id: str
    amount_minor: int
    returned_minor: int


class DueLot(NamedTuple):
    """An open lot whose expiry has passed, with the account it belongs to."""

    id: str
    user_id: str
    asset_code: str
    expires_at_us: int


_COLUMNS = (
    "id, account_id, transaction_id, amount_minor, remaining_minor, expires_at_us, created_at_us"
)
_COLUMNS_OF_L = ", ".join(f"l.{column.strip()}" for column in _COLUMNS.split(","))
_COLUMNS_OF_P = ", ".join(f"p.{column.strip()}" for column in _COLUMNS.split(","))


def _lot(row: Row) -> StoredLot:
    return StoredLot(*row)


# Before every lot in the order (expiry, id): where a debit's first page starts.
_BEFORE_ALL = (-(2**63), "")


def open_lots_page(
    session: Session, account_id: int, after: tuple[int, str] | None, limit: int
) -> list[StoredLot]:
    """The account's next ``limit`` open lots by (expiry, id), after ``after`` (a range of the
    partial index lots_open_by_account: it costs the lots read, not the lots the account has).
    """
    sql, params = open_lots_query(session.backend is Backend.POSTGRESQL, account_id, after, limit)
    return [_lot(row) for row in session.all(sql, params)]


def open_lots_query(
    postgresql: bool, account_id: int, after: tuple[int, str] | None, limit: int
) -> tuple[str, list[object]]:
    """The statement of ``open_lots_page`` (tests/storage/test_plans.py checks its plan).

    PostgreSQL: through the function lots_open_page (migration 0013), the same SELECT planned
    without bitmap scans. Its planner estimates an account's open lots from the average account
    (one or two), and for so few it prefers a bitmap scan and a sort to the index's order: right
    for most accounts, but for one with 10,000 open lots, every debit would read all of them.
    """
    after_expires, after_id = after or _BEFORE_ALL
    params: list[object] = [account_id, after_expires, after_id, limit]
    if postgresql:
        return f"SELECT {_COLUMNS} FROM lots_open_page(?, ?, ?, ?)", params
    return (
        f"SELECT {_COLUMNS} FROM lots WHERE account_id = ? AND remaining_minor > 0"
        " AND (expires_at_us, id) > (?, ?) ORDER BY expires_at_us, id LIMIT ?",
        params,
    )


def first_pages(session: Session, account_ids: Sequence[int], limit: int) -> list[StoredLot]:
    """The first page of open lots of each account, as open_lots_page: in one statement on
    PostgreSQL (one round trip for a unit of work's debits), one each on SQLite (in-process)."""
    if session.backend is not Backend.POSTGRESQL:
        return [lot for a in account_ids for lot in open_lots_page(session, a, None, limit)]
    rows = session.all(
        f"SELECT {_COLUMNS_OF_P} FROM unnest(?::bigint[]) AS w(a)"
        " CROSS JOIN LATERAL lots_open_page(w.a, ?, ?, ?) AS p",
        (list(account_ids), _BEFORE_ALL[0], _BEFORE_ALL[1], limit),
    )
    return [_lot(row) for row in rows]


def lot_of_transaction(session: Session, transaction_id: str) -> StoredLot | None:
    """The lot a top-up or bonus made, if it made one."""
    row = session.one(f"SELECT {_COLUMNS} FROM lots WHERE transaction_id = ?", (transaction_id,))
    return None if row is None else _lot(row)


def draws_of(session: Session, transaction_id: str) -> list[tuple[StoredDraw, StoredLot]]:
    """What a debit drew from each lot, with the lot (one statement)."""
    rows = session.all(
        f"SELECT d.amount_minor, d.returned_minor, {_COLUMNS_OF_L}"
        " FROM lot_draws d JOIN lots l ON l.id = d.lot_id WHERE d.transaction_id = ?",
        (transaction_id,),
    )
    return [(StoredDraw(transaction_id, row[2], row[0], row[1]), _lot(row[2:])) for row in rows]


def due_lots(session: Session, now_us: int, limit: int) -> list[DueLot]:
    """Open lots whose expiry is at or before ``now_us``, the longest due first (a range of the
    partial index lots_open_by_expiry, so it costs what it returns).
    """
    return [DueLot(*row) for row in session.all(*due_lots_query(now_us, limit))]


def due_lots_query(now_us: int, limit: int) -> tuple[str, list[object]]:
    """The statement of ``due_lots`` (tests/storage/test_plans.py checks its plan)."""
    return (
        "SELECT l.id, acc.owner_id, acc.asset_code, l.expires_at_us FROM lots l"
        " JOIN accounts acc ON acc.id = l.account_id"
        " WHERE l.remaining_minor > 0 AND l.expires_at_us <= ?"
        " ORDER BY l.expires_at_us, l.id LIMIT ?",
        [now_us, limit],
    )


def write_lots(
    session: Session,
    new_lots: Sequence[StoredLot],
    changed_lots: Sequence[tuple[str, int]],
    new_draws: Sequence[StoredDraw],
    changed_draws: Sequence[StoredDraw],
    accounts: Sequence[tuple[int, int, int]],
) -> None:
    """Write what a unit of work did to lots: the lots it made, the new ``remaining`` of those
    it changed (id, remaining), its draws, the new ``returned`` of earlier draws, and each
    changed account's (id, lots_open_minor, lots made by this unit of work).
    """
    if new_lots:
        session.run_many(f"INSERT INTO lots ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", new_lots)
    if changed_lots:
        session.run_many(
            "UPDATE lots SET remaining_minor = ? WHERE id = ?",
            [(remaining, lot_id) for lot_id, remaining in changed_lots],
        )
    if new_draws:
        session.run_many(
            "INSERT INTO lot_draws (transaction_id, lot_id, amount_minor, returned_minor)"
            " VALUES (?, ?, ?, ?)",
            new_draws,
        )
    if changed_draws:
        session.run_many(
            "UPDATE lot_draws SET returned_minor = ? WHERE transaction_id = ? AND lot_id = ?",
            [(d.returned_minor, d.transaction_id, d.lot_id) for d in changed_draws],
        )
    if accounts:
        session.run_many(
            "UPDATE accounts SET lots_open_minor = ?, lots_made = lots_made + ? WHERE id = ?",
            [(open_minor, made, account_id) for account_id, open_minor, made in accounts],
        )
