"""The SQL of holds: reading, locking, placing and settling them, and finding expired ones.

Settling is ``UPDATE … WHERE status = 'pending'``: a hold leaves pending once, and the schema's
trigger refuses any other move (migration 0003).
"""

from collections.abc import Iterable, Sequence

from wallet.config import Backend
from wallet.domain.holds import Hold, HoldStatus

from .database import Row, Session

_COLUMNS = (
    "id, user_id, asset_code, amount_minor, status, description, idempotency_key,"
    " expires_at_us, created_at_us, hold_transaction_id, captured_minor, settled_at_us,"
    " capture_transaction_id, release_transaction_id, metadata"
)


def _hold(row: Row) -> Hold:
    return Hold(
        id=row[0],
        user_id=row[1],
        asset_code=row[2],
        amount_minor=row[3],
        status=HoldStatus(row[4]),
        description=row[5],
        idempotency_key=row[6],
        expires_at_us=row[7],
        created_at_us=row[8],
        hold_transaction_id=row[9],
        captured_minor=row[10],
        settled_at_us=row[11],
        capture_transaction_id=row[12],
        release_transaction_id=row[13],
        metadata=row[14],
    )


def get_hold(session: Session, hold_id: str) -> Hold | None:
    row = session.one(f"SELECT {_COLUMNS} FROM holds WHERE id = ?", (hold_id,))
    return None if row is None else _hold(row)


def lock_holds(session: Session, hold_ids: Iterable[str]) -> dict[str, Hold]:
    """Read, and on PostgreSQL lock in id order, the holds about to be settled.

    Holds are locked before anything else in a unit of work, so two processes settling the same
    hold take turns, and the second sees that the first settled it.
    """
    wanted = sorted(set(hold_ids))
    if not wanted:
        return {}
    placeholders = ", ".join("?" * len(wanted))
    lock = " FOR UPDATE" if session.backend is Backend.POSTGRESQL else ""
    rows = session.all(
        f"SELECT {_COLUMNS} FROM holds WHERE id IN ({placeholders}) ORDER BY id{lock}", wanted
    )
    return {row[0]: _hold(row) for row in rows}


def list_holds(
    session: Session, user_id: str, *, status: str | None, before_id: str | None, limit: int
) -> list[Hold]:
    """A page of a user's holds, newest first (hold ids are time-ordered UUIDv7)."""
    conditions = ["user_id = ?"]
    params: list[object] = [user_id]
    if status is not None:
        conditions.append("status = ?")
        params.append(status)
    if before_id is not None:
        conditions.append("id < ?")
        params.append(before_id)
    params.append(limit)
    rows = session.all(
        f"SELECT {_COLUMNS} FROM holds WHERE {' AND '.join(conditions)} ORDER BY id DESC LIMIT ?",
        params,
    )
    return [_hold(row) for row in rows]


def held_amounts(session: Session, user_id: str) -> dict[str, int]:
    """The sum of a user's pending holds, by asset."""
    rows = session.all(
        "SELECT asset_code, sum(amount_minor) FROM holds"
        " WHERE user_id = ? AND status = 'pending' GROUP BY asset_code",
        (user_id,),
    )
    return {asset_code: int(total) for asset_code, total in rows}


def pending_by_asset(session: Session) -> dict[str, tuple[int, int]]:
    """(how many, how much in minor units) of the pending holds, by asset."""
    rows = session.all(
        "SELECT asset_code, count(*), sum(amount_minor) FROM holds"
        " WHERE status = 'pending' GROUP BY asset_code"
    )
    return {asset_code: (int(count), int(total)) for asset_code, count, total in rows}


def expired_pending(session: Session, now_us: int, limit: int) -> list[Hold]:
    """Pending holds whose expiry has passed, the longest expired first."""
    rows = session.all(
        f"SELECT {_COLUMNS} FROM holds WHERE status = 'pending' AND expires_at_us <= ?"
        " ORDER BY expires_at_us LIMIT ?",
        (now_us, limit),
    )
    return [_hold(row) for row in rows]


def insert_holds(session: Session, holds: Sequence[Hold]) -> None:
    session.run_many(
        "INSERT INTO holds (id, user_id, asset_code, amount_minor, status, description,"
        " idempotency_key, expires_at_us, created_at_us, hold_transaction_id, metadata)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                h.id,
                h.user_id,
                h.asset_code,
                h.amount_minor,
                h.status.value,
                h.description,
                h.idempotency_key,
                h.expires_at_us,
                h.created_at_us,
                h.hold_transaction_id,
                h.metadata,
            )
            for h in holds
        ],
    )


def settle_holds(session: Session, holds: Sequence[Hold]) -> None:
    """Move holds out of pending; each must still be pending (the caller holds its lock)."""
    for hold in holds:
        row = session.one(
            "UPDATE holds SET status = ?, captured_minor = ?, settled_at_us = ?,"
            " capture_transaction_id = ?, release_transaction_id = ?"
            " WHERE id = ? AND status = 'pending' RETURNING id",
            (
                hold.status.value,
                hold.captured_minor,
                hold.settled_at_us,
                hold.capture_transaction_id,
                hold.release_transaction_id,
                hold.id,
            ),
        )
        assert row is not None, f"hold {hold.id} was settled by someone else"
