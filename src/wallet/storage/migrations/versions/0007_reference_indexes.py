"""Index every column that references a transaction.

The transaction row is written after its entries (it seals them), and its foreign keys are
deferred to the commit, so inserting it makes the database look for rows that point at it. Without
an index on the referencing column that look-up scans the whole table: on SQLite every write grew
slower as idempotency keys accumulated (measured: 1,469 to 466 writes/s as keys went from 2.8k to
8.3k; flat at about 2,000 writes/s with these indexes). Keys never expire, so this is the index
that keeps a write's cost independent of the ledger's age.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from wallet.storage.migrations.online import create_index

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEXES = [
    ("idempotency_keys_transaction", "ON idempotency_keys (transaction_id)"),
    ("holds_hold_transaction", "ON holds (hold_transaction_id)"),
    ("holds_capture_transaction", "ON holds (capture_transaction_id)"),
    ("holds_release_transaction", "ON holds (release_transaction_id)"),
]


def upgrade() -> None:
    for name, definition in _INDEXES:
        create_index(name, definition)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
