"""The SQL of balance monitors (migration 0012, ``balance_monitors``).

A monitor keeps no state per user: whether a balance crossed its threshold is decided from an
entry's balance before and after (service/monitors.py), so this table only changes when an
operator adds or removes a monitor. ``user_id`` NULL is a monitor of every user of the asset.
The unit of work reads the monitors of its accounts with its other protection
(storage/protection.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .database import Session


@dataclass(frozen=True, slots=True)
class Monitor:
    id: str
    asset_code: str
    user_id: str | None  # None: every user of the asset
    condition: str  # "above" or "below"
    threshold_minor: int
    created_at_us: int


_COLUMNS = "id, asset_code, user_id, condition, threshold_minor, created_at_us"


def _monitor(row: Sequence[object]) -> Monitor:
    return Monitor(
        id=str(row[0]),
        asset_code=str(row[1]),
        user_id=None if row[2] is None else str(row[2]),
        condition=str(row[3]),
        threshold_minor=int(str(row[4])),
        created_at_us=int(str(row[5])),
    )


def insert_monitor(session: Session, monitor: Monitor) -> None:
    session.run(
        f"INSERT INTO balance_monitors ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (
            monitor.id,
            monitor.asset_code,
            monitor.user_id,
            monitor.condition,
            monitor.threshold_minor,
            monitor.created_at_us,
        ),
    )


def count_monitors(session: Session) -> int:
    row = session.one("SELECT count(*) FROM balance_monitors")
    return 0 if row is None else int(row[0])


def get_monitor(session: Session, monitor_id: str) -> Monitor | None:
    row = session.one(f"SELECT {_COLUMNS} FROM balance_monitors WHERE id = ?", (monitor_id,))
    return None if row is None else _monitor(row)


def list_monitors(session: Session, after_id: str | None, limit: int) -> list[Monitor]:
    """Up to ``limit`` monitors in id order (ids are UUIDv7: oldest first), after ``after_id``."""
    rows = session.all(
        f"SELECT {_COLUMNS} FROM balance_monitors WHERE id > ? ORDER BY id LIMIT ?",
        ("" if after_id is None else after_id, limit),
    )
    return [_monitor(row) for row in rows]


def delete_monitor(session: Session, monitor_id: str) -> bool:
    """Remove a monitor; whether there was one."""
    row = session.one("DELETE FROM balance_monitors WHERE id = ? RETURNING id", (monitor_id,))
    return row is not None
