"""Refunds: transaction kinds in a table, ``refund_of``, and the refund rules in the schema.

- ``transaction_types`` lists the kinds a transaction may have, each marked refundable or not;
  ``transactions.transaction_type`` references it. The CHECK of 0001 is replaced by this foreign
  key, so a later kind (holds) is an INSERT, not another rebuild of the ledger's main table.
- ``transactions.refund_of`` names the refunded transaction; a refund has one and nothing else
  does.
- A trigger checks every refund as it is sealed: the original exists and is of a refundable kind,
  belongs to the same user and asset, and the refunds of it, this one included, add up to at most
  its amount. The service locks the original's row before it computes a refund (see
  wallet.service.posting), so on PostgreSQL the trigger's sum sees every committed refund.

On SQLite a CHECK cannot be dropped: the table is rebuilt (new table, copy, drop, rename) and its
indexes and triggers are created again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TYPES = """
CREATE TABLE transaction_types (
    name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 32),
    refundable INTEGER NOT NULL CHECK (refundable IN (0, 1))
);
INSERT INTO transaction_types (name, refundable) VALUES
    ('issuance', 0), ('topup', 1), ('bonus', 1), ('purchase', 1), ('refund', 0)
"""

_SQLITE_TRANSACTIONS = """
CREATE TABLE transactions_new (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    transaction_type TEXT NOT NULL REFERENCES transaction_types (name),
    user_id TEXT CHECK (user_id IS NOT NULL OR transaction_type = 'issuance'),
    asset_code TEXT NOT NULL REFERENCES assets (code),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    description TEXT CHECK (description IS NULL OR length(description) <= 500),
    idempotency_key TEXT CHECK (idempotency_key IS NULL OR length(idempotency_key) <= 255),
    created_at_us BIGINT NOT NULL,
    refund_of TEXT REFERENCES transactions (id),
    CHECK ((transaction_type = 'refund') = (refund_of IS NOT NULL))
);
INSERT INTO transactions_new (seq, id, transaction_type, user_id, asset_code, amount_minor,
    description, idempotency_key, created_at_us)
    SELECT seq, id, transaction_type, user_id, asset_code, amount_minor, description,
        idempotency_key, created_at_us FROM transactions;
DROP TABLE transactions;
PRAGMA legacy_alter_table = ON;
ALTER TABLE transactions_new RENAME TO transactions;
PRAGMA legacy_alter_table = OFF;
CREATE INDEX transactions_user_seq ON transactions (user_id, seq);
CREATE INDEX transactions_user_asset_seq ON transactions (user_id, asset_code, seq);
CREATE INDEX transactions_user_type_seq ON transactions (user_id, transaction_type, seq)
"""

_POSTGRESQL_TRANSACTIONS = """
ALTER TABLE transactions DROP CONSTRAINT transactions_transaction_type_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_transaction_type_fkey
    FOREIGN KEY (transaction_type) REFERENCES transaction_types (name);
ALTER TABLE transactions ADD COLUMN refund_of TEXT REFERENCES transactions (id);
ALTER TABLE transactions ADD CONSTRAINT transactions_refund_of_check
    CHECK ((transaction_type = 'refund') = (refund_of IS NOT NULL))
"""

_REFUND_INDEX = (
    "CREATE INDEX transactions_refund_of ON transactions (refund_of) WHERE refund_of IS NOT NULL"
)

# The sealing triggers of 0001 went with the old table on SQLite; they come back unchanged.
_SQLITE_TRIGGERS = [
    """CREATE TRIGGER transactions_balanced BEFORE INSERT ON transactions
       WHEN (SELECT count(*) FROM entries WHERE transaction_id = NEW.id) < 2
         OR (SELECT sum(amount_minor) FROM entries WHERE transaction_id = NEW.id) <> 0
       BEGIN SELECT RAISE(ABORT, 'entries of a transaction must sum to zero'); END""",
    """CREATE TRIGGER transactions_append_only_update BEFORE UPDATE ON transactions
       BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END""",
    """CREATE TRIGGER transactions_append_only_delete BEFORE DELETE ON transactions
       BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END""",
    """CREATE TRIGGER transactions_refund_rules BEFORE INSERT ON transactions
       WHEN NEW.refund_of IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM transactions o JOIN transaction_types t ON t.name = o.transaction_type
          WHERE o.id = NEW.refund_of AND t.refundable = 1 AND o.asset_code = NEW.asset_code
            AND o.user_id = NEW.user_id
            AND o.amount_minor >= NEW.amount_minor + coalesce((
              SELECT sum(r.amount_minor) FROM transactions r WHERE r.refund_of = o.id), 0))
       BEGIN SELECT RAISE(ABORT, 'refund does not fit its original'); END""",
]

_POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION wallet_refund_rules() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NOT EXISTS (
           SELECT 1 FROM transactions o JOIN transaction_types t ON t.name = o.transaction_type
            WHERE o.id = NEW.refund_of AND t.refundable = 1 AND o.asset_code = NEW.asset_code
              AND o.user_id = NEW.user_id
              AND o.amount_minor >= NEW.amount_minor + coalesce((
                SELECT sum(r.amount_minor) FROM transactions r WHERE r.refund_of = o.id), 0))
         THEN
           RAISE EXCEPTION 'refund does not fit its original' USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER transactions_refund_rules BEFORE INSERT ON transactions
       FOR EACH ROW WHEN (NEW.refund_of IS NOT NULL) EXECUTE FUNCTION wallet_refund_rules()""",
]


def _run(script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(_TYPES)
    if op.get_bind().dialect.name == "sqlite":
        _run(_SQLITE_TRANSACTIONS)
        triggers = _SQLITE_TRIGGERS
    else:
        _run(_POSTGRESQL_TRANSACTIONS)
        triggers = _POSTGRESQL_TRIGGERS
    op.execute(_REFUND_INDEX)
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
