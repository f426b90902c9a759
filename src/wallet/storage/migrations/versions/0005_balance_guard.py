"""A stored balance moves only through an entry.

Before this, the schema checked that each entry starts from its account's stored balance and
moved the balance with a trigger, but a direct ``UPDATE accounts SET balance_minor = …`` was not
refused. Now every account remembers its last entry, the entry trigger moves both, and a guard
refuses any change of a balance that is not explained by a newer entry of that account going
from the old balance to the new one. An account's owner and asset never change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMN = [
    "ALTER TABLE accounts ADD COLUMN last_entry_id BIGINT",
    """UPDATE accounts SET last_entry_id =
       (SELECT max(e.id) FROM entries e WHERE e.account_id = accounts.id)""",
]

# Shared by both dialects: the entry that explains a balance change.
_EXPLAINED = """EXISTS (SELECT 1 FROM entries e
       WHERE e.id = NEW.last_entry_id AND e.account_id = NEW.id
         AND e.id > coalesce(OLD.last_entry_id, 0)
         AND e.balance_before = OLD.balance_minor AND e.balance_after = NEW.balance_minor)"""

_SQLITE = [
    "DROP TRIGGER entries_move_balance",
    """CREATE TRIGGER entries_move_balance AFTER INSERT ON entries
       BEGIN
         UPDATE accounts SET balance_minor = NEW.balance_after, last_entry_id = NEW.id
          WHERE id = NEW.account_id;
       END""",
    f"""CREATE TRIGGER accounts_balance_by_entries BEFORE UPDATE OF balance_minor, last_entry_id
       ON accounts WHEN NOT {_EXPLAINED}
       BEGIN SELECT RAISE(ABORT, 'a balance moves only through an entry'); END""",
    """CREATE TRIGGER accounts_identity_fixed BEFORE UPDATE OF id, owner_type, owner_id, asset_code
       ON accounts
       BEGIN SELECT RAISE(ABORT, 'an account keeps its owner and asset'); END""",
]

_POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION wallet_entry_insert() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE stored bigint;
       BEGIN
         IF EXISTS (SELECT 1 FROM transactions WHERE id = NEW.transaction_id) THEN
           RAISE EXCEPTION 'transaction is sealed: no entry may be added'
             USING ERRCODE = 'check_violation';
         END IF;
         SELECT balance_minor INTO stored FROM accounts WHERE id = NEW.account_id FOR UPDATE;
         IF stored IS DISTINCT FROM NEW.balance_before THEN
           RAISE EXCEPTION 'entry does not start from the account balance'
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE FUNCTION wallet_entry_moves_balance() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         UPDATE accounts SET balance_minor = NEW.balance_after, last_entry_id = NEW.id
          WHERE id = NEW.account_id;
         RETURN NULL;
       END $$""",
    f"""CREATE FUNCTION wallet_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.id <> OLD.id OR NEW.owner_type <> OLD.owner_type
            OR NEW.owner_id <> OLD.owner_id OR NEW.asset_code <> OLD.asset_code THEN
           RAISE EXCEPTION 'an account keeps its owner and asset'
             USING ERRCODE = 'check_violation';
         END IF;
         IF (NEW.balance_minor IS DISTINCT FROM OLD.balance_minor
             OR NEW.last_entry_id IS DISTINCT FROM OLD.last_entry_id)
            AND NOT {_EXPLAINED} THEN
           RAISE EXCEPTION 'a balance moves only through an entry'
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER entries_move_balance AFTER INSERT ON entries
       FOR EACH ROW EXECUTE FUNCTION wallet_entry_moves_balance()""",
    """CREATE TRIGGER accounts_guard BEFORE UPDATE ON accounts
       FOR EACH ROW EXECUTE FUNCTION wallet_account_guard()""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in [*_COLUMN, *(_SQLITE if sqlite else _POSTGRESQL)]:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
