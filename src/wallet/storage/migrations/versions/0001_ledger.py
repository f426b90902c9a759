"""The ledger: assets, accounts, transactions, entries, idempotency keys.

The schema checks the ledger's invariants a second time, after the code:
- amounts and balances are integers of minor units; an entry's balance_after is its
  balance_before plus its amount, and only an asset's issuance account may go below zero;
- an entry must start from its account's stored balance, and a trigger moves the stored balance
  to the entry's balance_after, so a stored balance is always the sum of its account's entries;
- a transaction's entries are written first and sealed by the transaction row, whose insert
  checks that they sum to zero (the foreign key from entries is deferred to the commit);
- entries and transactions are append-only: UPDATE and DELETE are refused.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLES = """
CREATE TABLE assets (
    code TEXT PRIMARY KEY CHECK (length(code) BETWEEN 2 AND 10 AND code = upper(code)),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scale INTEGER NOT NULL CHECK (scale BETWEEN 0 AND 8),
    supply_minor BIGINT NOT NULL CHECK (supply_minor > 0),
    created_at_us BIGINT NOT NULL
);
CREATE TABLE accounts (
    id {id_pk},
    owner_type TEXT NOT NULL CHECK (owner_type IN ('user', 'system')),
    owner_id TEXT NOT NULL CHECK (length(owner_id) BETWEEN 1 AND 128),
    asset_code TEXT NOT NULL REFERENCES assets (code),
    balance_minor BIGINT NOT NULL DEFAULT 0
        CHECK (balance_minor >= 0 OR (owner_type = 'system' AND owner_id = 'issuance')),
    created_at_us BIGINT NOT NULL,
    UNIQUE (owner_type, owner_id, asset_code)
);
CREATE TABLE transactions (
    seq {id_pk},
    id TEXT NOT NULL UNIQUE,
    transaction_type TEXT NOT NULL
        CHECK (transaction_type IN ('issuance', 'topup', 'bonus', 'purchase')),
    user_id TEXT CHECK (user_id IS NOT NULL OR transaction_type = 'issuance'),
    asset_code TEXT NOT NULL REFERENCES assets (code),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    description TEXT CHECK (description IS NULL OR length(description) <= 500),
    idempotency_key TEXT CHECK (idempotency_key IS NULL OR length(idempotency_key) <= 255),
    created_at_us BIGINT NOT NULL
);
CREATE INDEX transactions_user_seq ON transactions (user_id, seq);
CREATE INDEX transactions_user_asset_seq ON transactions (user_id, asset_code, seq);
CREATE INDEX transactions_user_type_seq ON transactions (user_id, transaction_type, seq);
CREATE TABLE entries (
    id {id_pk},
    transaction_id TEXT NOT NULL
        REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor <> 0),
    balance_before BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    CHECK (balance_after = balance_before + amount_minor)
);
CREATE INDEX entries_transaction ON entries (transaction_id);
CREATE INDEX entries_account_time ON entries (account_id, created_at_us, id);
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    fingerprint TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (length(outcome) BETWEEN 1 AND 64),
    response_body TEXT NOT NULL,
    transaction_id TEXT REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
"""

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER accounts_open_at_zero BEFORE INSERT ON accounts
       WHEN NEW.balance_minor <> 0
       BEGIN SELECT RAISE(ABORT, 'an account opens with a zero balance'); END""",
    """CREATE TRIGGER entries_follow_balance BEFORE INSERT ON entries
       WHEN (SELECT balance_minor FROM accounts WHERE id = NEW.account_id) IS NOT NEW.balance_before
       BEGIN SELECT RAISE(ABORT, 'entry does not start from the account balance'); END""",
    """CREATE TRIGGER entries_before_seal BEFORE INSERT ON entries
       WHEN EXISTS (SELECT 1 FROM transactions WHERE id = NEW.transaction_id)
       BEGIN SELECT RAISE(ABORT, 'transaction is sealed: no entry may be added'); END""",
    """CREATE TRIGGER entries_move_balance AFTER INSERT ON entries
       BEGIN
         UPDATE accounts SET balance_minor = NEW.balance_after WHERE id = NEW.account_id;
       END""",
    """CREATE TRIGGER transactions_balanced BEFORE INSERT ON transactions
       WHEN (SELECT count(*) FROM entries WHERE transaction_id = NEW.id) < 2
         OR (SELECT sum(amount_minor) FROM entries WHERE transaction_id = NEW.id) <> 0
       BEGIN SELECT RAISE(ABORT, 'entries of a transaction must sum to zero'); END""",
    """CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
       BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END""",
    """CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
       BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END""",
    """CREATE TRIGGER transactions_append_only_update BEFORE UPDATE ON transactions
       BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END""",
    """CREATE TRIGGER transactions_append_only_delete BEFORE DELETE ON transactions
       BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END""",
]

_POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION wallet_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only',
           ERRCODE = 'check_violation';
       END $$""",
    """CREATE FUNCTION wallet_account_opens_at_zero() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.balance_minor <> 0 THEN
           RAISE EXCEPTION 'an account opens with a zero balance' USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE FUNCTION wallet_entry_insert() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM transactions WHERE id = NEW.transaction_id) THEN
           RAISE EXCEPTION 'transaction is sealed: no entry may be added'
             USING ERRCODE = 'check_violation';
         END IF;
         UPDATE accounts SET balance_minor = NEW.balance_after
          WHERE id = NEW.account_id AND balance_minor = NEW.balance_before;
         IF NOT FOUND THEN
           RAISE EXCEPTION 'entry does not start from the account balance'
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE FUNCTION wallet_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE n integer; total numeric;
       BEGIN
         SELECT count(*), coalesce(sum(amount_minor), 0) INTO n, total
           FROM entries WHERE transaction_id = NEW.id;
         IF n < 2 OR total <> 0 THEN
           RAISE EXCEPTION 'entries of a transaction must sum to zero'
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER accounts_open_at_zero BEFORE INSERT ON accounts
       FOR EACH ROW EXECUTE FUNCTION wallet_account_opens_at_zero()""",
    """CREATE TRIGGER entries_insert BEFORE INSERT ON entries
       FOR EACH ROW EXECUTE FUNCTION wallet_entry_insert()""",
    """CREATE TRIGGER transactions_balanced BEFORE INSERT ON transactions
       FOR EACH ROW EXECUTE FUNCTION wallet_transaction_balanced()""",
    """CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
       FOR EACH ROW EXECUTE FUNCTION wallet_refuse()""",
    """CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
       FOR EACH ROW EXECUTE FUNCTION wallet_refuse()""",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        tables, triggers = _TABLES.format(id_pk="INTEGER PRIMARY KEY"), _SQLITE_TRIGGERS
    else:
        id_pk = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        tables, triggers = _TABLES.format(id_pk=id_pk), _POSTGRESQL_TRIGGERS
    for statement in tables.split(";"):
        if statement.strip():
            op.execute(statement)
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
