"""The SQL of freezes: the freezes in force (``freezes``, primary key ``(user_id, asset_code)``,
``'*'`` for all of a user's assets) and their history (``freeze_log``, append-only).

The unit of work reads the freezes of every user it moves with its other protection
(storage/protection.py); a balance read asks about one user (``frozen_assets_of_user``). Both
are ranges of the primary key, so their cost does not grow with the number of frozen users.
"""

from dataclasses import dataclass

from .database import Session

ALL_ASSETS = "*"


@dataclass(frozen=True, slots=True)
class StoredFreeze:
    user_id: str
    asset_code: str  # ALL_ASSETS for all of the user's assets
    reason: str
    frozen_by: str
    frozen_at_us: int


@dataclass(frozen=True, slots=True)
class FreezeLogEntry:
    seq: int
    user_id: str
    asset_code: str
    action: str  # 'freeze' or 'unfreeze'
    reason: str
    actor: str
    at_us: int


_FREEZE_COLUMNS = "user_id, asset_code, reason, frozen_by, frozen_at_us"
_LOG_COLUMNS = "seq, user_id, asset_code, action, reason, actor, at_us"


def frozen_assets_of_user(session: Session, user_id: str) -> frozenset[str]:
    rows = session.all("SELECT asset_code FROM freezes WHERE user_id = ?", (user_id,))
    return frozenset(row[0] for row in rows)


def freezes_of_user(session: Session, user_id: str) -> list[StoredFreeze]:
    """The user's freezes in force, newest first."""
    rows = session.all(
        f"SELECT {_FREEZE_COLUMNS} FROM freezes WHERE user_id = ?"
        " ORDER BY frozen_at_us DESC, asset_code",
        (user_id,),
    )
    return [StoredFreeze(*row) for row in rows]


def get_freeze(session: Session, user_id: str, asset_code: str) -> StoredFreeze | None:
    row = session.one(
        f"SELECT {_FREEZE_COLUMNS} FROM freezes WHERE user_id = ? AND asset_code = ?",
        (user_id, asset_code),
    )
    return None if row is None else StoredFreeze(*row)


def insert_freeze(session: Session, freeze: StoredFreeze) -> bool:
    """Put a freeze in force; False when one of that user and asset is in force already (then
    nothing changes). Two racing inserts: the second waits for the first's commit, then finds
    the conflict."""
    row = session.one(
        f"INSERT INTO freezes ({_FREEZE_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id, asset_code) DO NOTHING RETURNING user_id",
        (
            freeze.user_id,
            freeze.asset_code,
            freeze.reason,
            freeze.frozen_by,
            freeze.frozen_at_us,
        ),
    )
    return row is not None


def delete_freeze(session: Session, user_id: str, asset_code: str) -> StoredFreeze | None:
    """Lift a freeze; the freeze lifted, None when none of that user and asset was in force."""
    row = session.one(
        f"DELETE FROM freezes WHERE user_id = ? AND asset_code = ? RETURNING {_FREEZE_COLUMNS}",
        (user_id, asset_code),
    )
    return None if row is None else StoredFreeze(*row)


def append_log(
    session: Session,
    user_id: str,
    asset_code: str,
    action: str,
    reason: str,
    actor: str,
    at_us: int,
) -> FreezeLogEntry:
    row = session.one(
        "INSERT INTO freeze_log (user_id, asset_code, action, reason, actor, at_us)"
        f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {_LOG_COLUMNS}",
        (user_id, asset_code, action, reason, actor, at_us),
    )
    assert row is not None
    return FreezeLogEntry(*row)


def log_of_user(
    session: Session, user_id: str, limit: int, before_seq: int | None
) -> list[FreezeLogEntry]:
    """The user's freezes and unfreezes, newest first, at most ``limit``, before ``before_seq``
    if given: one range of the index (user_id, seq)."""
    if before_seq is None:
        rows = session.all(
            f"SELECT {_LOG_COLUMNS} FROM freeze_log WHERE user_id = ? ORDER BY seq DESC LIMIT ?",
            (user_id, limit),
        )
    else:
        rows = session.all(
            f"SELECT {_LOG_COLUMNS} FROM freeze_log WHERE user_id = ? AND seq < ?"
            " ORDER BY seq DESC LIMIT ?",
            (user_id, before_seq, limit),
        )
    return [FreezeLogEntry(*row) for row in rows]
