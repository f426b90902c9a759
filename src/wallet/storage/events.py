"""The SQL of events: appending them in a unit of work, reading the feed, and retention.

Why positions never appear behind a reader (ARCHITECTURE.md, "Events"): a unit of work takes its
positions as its last statement, ``UPDATE event_positions … RETURNING``, and the row lock that
takes is held until it commits. The next unit of work to write events, in this process or any
other, waits there until the one before has committed; so positions are given out in commit
order, and by the time position P can be seen every position below it can be seen too. On
SQLite the database's one write lock does the same.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from .database import Session


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: str
    type: str
    data: bytes  # the JSON of what changed, as the API shows it


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    id: str
    type: str
    created_at_us: int
    data: str


_COLUMNS = "position, id, type, created_at_us, data"


def append_events(session: Session, events: Sequence[NewEvent], created_at_us: int) -> int:
    """Write ``events`` at the next positions; the last position written. Call it last in the
    unit of work, just before the commit: the lock it takes is held until then."""
    row = session.one(
        "UPDATE event_positions SET last_position = last_position + ? WHERE singleton = 1"
        " RETURNING last_position",
        (len(events),),
    )
    assert row is not None, "migration 0010 creates the one row of event_positions"
    last: int = row[0]
    first = last - len(events) + 1
    session.run_many(
        f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
        [
            (first + offset, event.id, event.type, created_at_us, event.data.decode())
            for offset, event in enumerate(events)
        ],
    )
    return last


def newest_position(session: Session) -> int:
    """The highest position committed (0 before the first event). Every position below it is
    committed too."""
    row = session.one("SELECT max(position) FROM events")
    return int(row[0]) if row is not None and row[0] is not None else 0


def oldest_position(session: Session) -> int | None:
    """The lowest position retention kept; None before the first event."""
    row = session.one("SELECT min(position) FROM events")
    return None if row is None or row[0] is None else int(row[0])


def read_events(
    session: Session, after: int, through: int, limit: int, types: Sequence[str] = ()
) -> list[StoredEvent]:
    """Events at positions after ``after`` up to ``through``, oldest first, at most ``limit``;
    only of ``types`` if given, each read as one range of the (type, position) index."""
    if not types:
        rows = session.all(
            f"SELECT {_COLUMNS} FROM events WHERE position > ? AND position <= ?"
            " ORDER BY position LIMIT ?",
            (after, through, limit),
        )
    else:
        one_type = (
            f"SELECT * FROM (SELECT {_COLUMNS} FROM events WHERE type = ? AND position > ?"
            " AND position <= ? ORDER BY position LIMIT ?) AS of_type"
        )
        params: list[object] = []
        for kind in types:
            params.extend((kind, after, through, limit))
        params.append(limit)
        rows = session.all(
            " UNION ALL ".join([one_type] * len(types)) + " ORDER BY position LIMIT ?", params
        )
    return [StoredEvent(*row) for row in rows]


def prune_events(session: Session, older_than_us: int, batch: int) -> int:
    """Delete up to ``batch`` of the oldest events made before ``older_than_us``, never the
    newest event (whose position tells a reader how far retention has gone); how many."""
    rows = session.all(
        "SELECT position, created_at_us FROM events ORDER BY position LIMIT ?", (batch,)
    )
    through = 0
    # Stop at the first event young enough to keep: positions and times grow together.
    for position, created_at_us in rows:
        if created_at_us >= older_than_us:
            break
        through = position
    through = min(through, newest_position(session) - 1)
    if not rows or through < rows[0][0]:
        return 0
    session.run("DELETE FROM events WHERE position <= ?", (through,))
    return int(through - rows[0][0] + 1)
