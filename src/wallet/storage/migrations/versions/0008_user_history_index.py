"""One index for a user's history instead of three.

A user's history page (GET /transaction/{user_id}/history) was served by three indexes,
``(user_id, seq)``, ``(user_id, asset_code, seq)`` and ``(user_id, transaction_type, seq)``, one
per filter. Every transaction written inserted into all three, each at a random place (the
user's), so each dirtied a page of its own: two thirds of the random index pages a write touches
besides its account and its entries. On SQLite each dirty page is a WAL frame written and synced
at the commit; measured in process on the bench's POST mix, a unit of work of 16 transactions
wrote 98 pages.

``(user_id, seq, asset_code, transaction_type)`` serves every page: newest first by
``(user_id, seq)``, and a filter on the asset or the kind is checked in the index itself, so only
the rows of the page are read from the table. The price is paid by a rare filter on a user with a
long history, which scans that user's index entries (not the ledger's) until its page is full.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from wallet.storage.migrations.online import create_index, drop_index

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index(
        "transactions_user_history", "ON transactions (user_id, seq, asset_code, transaction_type)"
    )
    for name in (
        "transactions_user_seq",
        "transactions_user_asset_seq",
        "transactions_user_type_seq",
    ):
        drop_index(name)


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
