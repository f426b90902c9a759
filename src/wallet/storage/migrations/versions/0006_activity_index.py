"""An index for an asset's daily activity (GET /admin/assets/{code}/activity).

``(asset_code, created_at_us, transaction_type, amount_minor)`` answers the report from the
index alone: a range scan over the window's rows of one asset, reading no table page (SQLite's
covering index; PostgreSQL's index-only scan, as the append-only table is all-visible once
vacuumed). Its price is one more index entry per transaction written.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from wallet.storage.migrations.online import create_index

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index(
        "transactions_asset_time",
        "ON transactions (asset_code, created_at_us, transaction_type, amount_minor)",
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is append-only: there is no downgrade")
