"""Player protection: freezes, daily limits and balance monitors (API.md, "Player protection").

- ``freezes``: the freezes in force, one per user and asset, ``asset_code`` ``'*'`` for all of a
  user's assets (a key column is never NULL). Unfreezing deletes the row.
- ``freeze_log``: every freeze and unfreeze, kept (who: the API key's id or ``cli``; when; why).
  Append-only.
- ``daily_limits``: what one user may spend (``debit_per_day_minor``) or receive
  (``credit_per_day_minor``) of an asset per UTC day, NULL for no limit; ``user_id`` ``'*'`` is
  the asset's limit for everyone, a user's own row overrides it.
- ``balance_monitors``: a threshold on the balances of an asset (``user_id`` NULL: every user's),
  ``above`` or ``below``; a crossing is decided from an entry's balance before and after, so a
  monitor keeps no state per user.

Online on a live database: new tables only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TABLES = [
    """CREATE TABLE freezes (
        user_id TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
        asset_code TEXT NOT NULL CHECK (asset_code = '*' OR length(asset_code) BETWEEN 2 AND 10),
        reason TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
        frozen_by TEXT NOT NULL CHECK (length(frozen_by) BETWEEN 1 AND 200),
        frozen_at_us BIGINT NOT NULL,
        PRIMARY KEY (user_id, asset_code)
    )""",
    """CREATE TABLE freeze_log (
        seq {seq_type} PRIMARY KEY,
        user_id TEXT NOT NULL,
        asset_code TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('freeze', 'unfreeze')),
        reason TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
        actor TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
        at_us BIGINT NOT NULL
    )""",
    "CREATE INDEX freeze_log_by_user ON freeze_log (user_id, seq)",
    """CREATE TABLE daily_limits (
        asset_code TEXT NOT NULL REFERENCES assets (code),
        user_id TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
        debit_per_day_minor BIGINT CHECK (debit_per_day_minor >= 0),
        credit_per_day_minor BIGINT CHECK (credit_per_day_minor >= 0),
        updated_at_us BIGINT NOT NULL,
        PRIMARY KEY (asset_code, user_id)
    )""",
    """CREATE TABLE balance_monitors (
        id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
        asset_code TEXT NOT NULL REFERENCES assets (code),
        user_id TEXT CHECK (length(user_id) BETWEEN 1 AND 128),
        condition TEXT NOT NULL CHECK (condition IN ('above', 'below')),
        threshold_minor BIGINT NOT NULL,
        created_at_us BIGINT NOT NULL
    )""",
    "CREATE INDEX balance_monitors_by_asset ON balance_monitors (asset_code, user_id)",
]

_SQLITE = [
    *(table.replace("{seq_type}", "INTEGER") for table in _TABLES),
    """CREATE TRIGGER freeze_log_append_only_update BEFORE UPDATE ON freeze_log
       BEGIN SELECT RAISE(ABORT, 'freeze_log is append-only'); END""",
    """CREATE TRIGGER freeze_log_append_only_delete BEFORE DELETE ON freeze_log
       BEGIN SELECT RAISE(ABORT, 'freeze_log is append-only'); END""",
]

_POSTGRESQL = [
    *(table.replace("{seq_type}", "BIGINT GENERATED ALWAYS AS IDENTITY") for table in _TABLES),
    """CREATE TRIGGER freeze_log_append_only BEFORE UPDATE OR DELETE ON freeze_log
       FOR EACH ROW EXECUTE FUNCTION wallet_refuse()""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE if sqlite else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
