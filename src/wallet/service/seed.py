"""The seed data of API.md, created on first start and idempotently on every later one.

Assets GC, DI and LP (scale 2), each with a treasury holding a supply of a trillion, issued from
the asset's issuance account; users user_001 and user_002 with opening balances that are
themselves top-ups, so every balance is explained by entries. Every step carries an idempotency
key of the system's own scope, so running it again changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wallet.domain.ledger import Asset, TransactionType
from wallet.limits import SEED_SUPPLY_MAJOR
from wallet.storage import ledger as store

from .clock import now_us
from .commands import PostingCommand

if TYPE_CHECKING:
    from .wallet import WalletService

SEED_SCOPE = "system:seed"

SEED_ASSETS = (
    Asset("GC", "Gold Coins", 2, SEED_SUPPLY_MAJOR * 100),
    Asset("DI", "Diamonds", 2, SEED_SUPPLY_MAJOR * 100),
    Asset("LP", "Loyalty Points", 2, SEED_SUPPLY_MAJOR * 100),
)

# Opening balances in minor units.
SEED_USERS = {
    "user_001": {"GC": 100_000, "DI": 5_000, "LP": 20_000},
    "user_002": {"GC": 50_000, "DI": 1_000, "LP": 7_500},
}


def issuance_command(asset: Asset) -> PostingCommand:
    return PostingCommand(
        transaction_type=TransactionType.ISSUANCE,
        user_id=None,
        asset_code=asset.code,
        amount_minor=asset.supply_minor,
        description=f"Supply of {asset.name}",
        idempotency_key=f"issuance:{asset.code}",
        scope=SEED_SCOPE,
    )


def add_assets(service: WalletService, assets: tuple[Asset, ...] | list[Asset]) -> None:
    """Create assets and issue their supply to their treasuries (idempotent)."""
    connection = service.database.connect_writer()
    try:
        connection.begin()
        for asset in assets:
            store.insert_asset(connection.session, asset, now_us())
        connection.commit()
    finally:
        connection.close()
    service.refresh_assets()
    service.writer.apply_now([issuance_command(asset) for asset in assets])


def seed_demo_ledger(service: WalletService) -> None:
    add_assets(service, SEED_ASSETS)
    openings = [
        PostingCommand(
            transaction_type=TransactionType.TOPUP,
            user_id=user_id,
            asset_code=asset_code,
            amount_minor=amount_minor,
            description="Opening balance",
            idempotency_key=f"opening:{user_id}:{asset_code}",
            scope=SEED_SCOPE,
        )
        for user_id, balances in SEED_USERS.items()
        for asset_code, amount_minor in balances.items()
    ]
    service.writer.apply_now(openings)
