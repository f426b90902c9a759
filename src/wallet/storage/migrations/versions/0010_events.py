"""Events: the outbox every change to the ledger writes into, in the same unit of work.

- ``events (position, id, type, created_at_us, data)``: one row per event, ``data`` the JSON
  of what changed (a Transaction, a Hold) exactly as the API shows it. Positions are 1, 2, 3, …
  without a gap, in commit order: a unit of work takes its positions from ``event_positions`` as
  its last statement, and the row lock it takes there is held until it commits (ARCHITECTURE.md,
  "Events"). Rows never change; the oldest are deleted by retention, never the newest, so the
  first position kept tells how far retention has gone.
- ``(type, position)`` index: a feed filtered by type reads one range per type.
- ``event_positions``: one row, the last position given out.

Online on a live database: new tables only.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# SQLite: INTEGER PRIMARY KEY makes the position the rowid, the table its own index.
_TABLES = [
    """CREATE TABLE events (
        position {position_type} PRIMARY KEY CHECK (position > 0),
        id TEXT NOT NULL,
        type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
        created_at_us BIGINT NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX events_by_type ON events (type, position)",
    """CREATE TABLE event_positions (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        last_position BIGINT NOT NULL CHECK (last_position >= 0)
    )""",
    "INSERT INTO event_positions (singleton, last_position) VALUES (1, 0)",
]

_SQLITE = [
    *(table.replace("{position_type}", "INTEGER") for table in _TABLES),
    """CREATE TRIGGER events_unchanged BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'an event never changes'); END""",
]

_POSTGRESQL = [
    *(table.replace("{position_type}", "BIGINT") for table in _TABLES),
    """CREATE TRIGGER events_unchanged BEFORE UPDATE ON events
       FOR EACH ROW EXECUTE FUNCTION wallet_refuse()""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE if sqlite else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
