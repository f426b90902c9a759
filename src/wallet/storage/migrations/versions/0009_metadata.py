"""Metadata: the caller's references (an order id, a store receipt), kept with each transaction
and hold, and the transactions found by them.

- ``transactions.metadata`` and ``holds.metadata``: the object as a JSON text with its keys
  sorted, NULL when there is none (every transaction written before this revision reads as
  ``{}``). Like the rest of a transaction, it never changes: the transactions' append-only
  triggers cover the new column, and a trigger keeps a hold's metadata as it was placed.
- ``transaction_metadata (key, value, seq)``: one row per member of a transaction's metadata,
  its primary key the index that ``GET /transactions?metadata[KEY]=VALUE`` reads, newest first,
  as a range scan whatever the ledger's size. The same design on both backends (a key-value
  table rather than JSONB with a GIN index on PostgreSQL): one query, one plan to reason about,
  and pages in ``seq`` order straight from the index. Append-only.

Online on a live database: the two columns are nullable without a default (PostgreSQL adds them
without rewriting the table; SQLite's ADD COLUMN only edits the schema), and the new table
starts empty, so its index costs nothing to build.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Bounds as the API's (limits.METADATA_*), checked a second time by the schema.
_TABLE = """
CREATE TABLE transaction_metadata (
    key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 40),
    value TEXT NOT NULL CHECK (length(value) <= 500),
    seq BIGINT NOT NULL REFERENCES transactions (seq),
    PRIMARY KEY (key, value, seq)
)"""

_SQLITE = [
    "ALTER TABLE transactions ADD COLUMN metadata TEXT",
    "ALTER TABLE holds ADD COLUMN metadata TEXT",
    _TABLE + " WITHOUT ROWID",
    """CREATE TRIGGER transaction_metadata_append_only_update
       BEFORE UPDATE ON transaction_metadata
       BEGIN SELECT RAISE(ABORT, 'transaction_metadata is append-only'); END""",
    """CREATE TRIGGER transaction_metadata_append_only_delete
       BEFORE DELETE ON transaction_metadata
       BEGIN SELECT RAISE(ABORT, 'transaction_metadata is append-only'); END""",
    """CREATE TRIGGER holds_metadata_kept BEFORE UPDATE ON holds
       WHEN NEW.metadata IS NOT OLD.metadata
       BEGIN SELECT RAISE(ABORT, 'a hold keeps its metadata'); END""",
]

_POSTGRESQL = [
    "ALTER TABLE transactions ADD COLUMN metadata TEXT",
    "ALTER TABLE holds ADD COLUMN metadata TEXT",
    _TABLE,
    """CREATE TRIGGER transaction_metadata_append_only BEFORE UPDATE OR DELETE
       ON transaction_metadata FOR EACH ROW EXECUTE FUNCTION wallet_refuse()""",
    """CREATE FUNCTION wallet_hold_metadata_kept() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.metadata IS DISTINCT FROM OLD.metadata THEN
           RAISE EXCEPTION 'a hold keeps its metadata' USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER holds_metadata_kept BEFORE UPDATE ON holds
       FOR EACH ROW EXECUTE FUNCTION wallet_hold_metadata_kept()""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE if sqlite else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
