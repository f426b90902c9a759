"""Credits that expire: an asset's policy, lots, and what each debit took from them
(API.md, "Credits that expire").

- ``assets.expires_after_days``: the asset's credits expire this many days after they are made,
  NULL for never. The migration sets no policy: an existing database's assets keep theirs (none)
  until an operator changes it; a new database's seed gives LP 365 days.
- ``accounts.lots_open_minor``: the sum of what is left of the account's lots, kept by the writer
  under the account's lock, so a write on an account that has no open lot reads nothing more.
- ``accounts.lots_made``: how many lots the account has had, kept likewise, so that a refund or a
  release on an account that never had a lot looks up no draws.
- ``lots``: a credit that expires (a top-up or bonus of an expiring asset, or one with its own
  ``expires_at``), made by the transaction ``transaction_id``, with what is left of it. A lot is
  open while something is left; the partial indexes hold only open lots, by account and by expiry.
- ``lot_draws``: what a transaction (a purchase, a hold, a chargeback, an expiry) took from each
  lot, and how much of it went back since (a release, a refund), so that a give-back returns to
  the lots a debit came from.
- ``transaction_types``: ``expiry``, what is left of a lot moving from its user to the asset's
  ``expired`` account; not refundable.

PostgreSQL: ``lots_open_page(account, after_expires, after_id, page)``, a debit's next page of
an account's open lots, planned without bitmap scans (storage/lots.py, open_lots_query, says
why).

Online on a live database: new tables, and three columns added with a constant default.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TABLES = [
    """CREATE TABLE lots (
        id TEXT{collate} PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
        account_id BIGINT NOT NULL REFERENCES accounts (id),
        transaction_id TEXT NOT NULL UNIQUE
            REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
        amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
        remaining_minor BIGINT NOT NULL
            CHECK (remaining_minor >= 0 AND remaining_minor <= amount_minor),
        expires_at_us BIGINT NOT NULL,
        created_at_us BIGINT NOT NULL,
        CHECK (expires_at_us > created_at_us)
    )""",
    """CREATE INDEX lots_open_by_account ON lots (account_id, expires_at_us, id)
       WHERE remaining_minor > 0""",
    "CREATE INDEX lots_open_by_expiry ON lots (expires_at_us, id) WHERE remaining_minor > 0",
    """CREATE TABLE lot_draws (
        transaction_id TEXT NOT NULL REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
        lot_id TEXT{collate} NOT NULL REFERENCES lots (id),
        amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
        returned_minor BIGINT NOT NULL DEFAULT 0
            CHECK (returned_minor >= 0 AND returned_minor <= amount_minor),
        PRIMARY KEY (transaction_id, lot_id)
    )""",
    "CREATE INDEX lot_draws_by_lot ON lot_draws (lot_id)",
    "INSERT INTO transaction_types (name, refundable) VALUES ('expiry', 0)",
]

_ACCOUNT_COLUMNS = [
    """ALTER TABLE assets ADD COLUMN expires_after_days INTEGER
       CHECK (expires_after_days IS NULL OR expires_after_days BETWEEN 1 AND 3650)""",
    """ALTER TABLE accounts ADD COLUMN lots_open_minor BIGINT NOT NULL DEFAULT 0
       CHECK (lots_open_minor >= 0)""",
    """ALTER TABLE accounts ADD COLUMN lots_made BIGINT NOT NULL DEFAULT 0
       CHECK (lots_made >= 0)""",
]

# {collate}: lot ids are ordered (a debit's ties on expiry) by their bytes, whatever the
# database's locale: SQLite's own order for TEXT, "C" on PostgreSQL.
_SQLITE = [*_ACCOUNT_COLUMNS, *(table.format(collate="") for table in _TABLES)]

# PostgreSQL: the migration is one transaction, so adding the columns holds the accounts' lock
# until it commits, while their CHECKs scan the table once (the columns' constant default
# rewrites nothing).
_POSTGRESQL = [
    *_ACCOUNT_COLUMNS,
    *(table.format(collate=' COLLATE "C"') for table in _TABLES),
    # PL/pgSQL, not SQL: its plan is kept for the session, not made again at every call.
    """CREATE FUNCTION lots_open_page(
           account BIGINT, after_expires BIGINT, after_id TEXT, page INTEGER
       ) RETURNS SETOF lots LANGUAGE plpgsql STABLE
       SET enable_bitmapscan = off
       AS $$
       BEGIN
         RETURN QUERY SELECT * FROM lots l WHERE l.account_id = account
            AND l.remaining_minor > 0 AND (l.expires_at_us, l.id) > (after_expires, after_id)
          ORDER BY l.expires_at_us, l.id LIMIT page;
       END
       $$""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE if sqlite else _POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
