"""The seed data of API.md, created on first start and idempotently on every later one.

Assets GC, DI and LP (scale 2; LP's credits expire after 365 days, GC's and DI's never), each
with a treasury holding a supply of a trillion, issued from the asset's issuance account
(``AssetCatalog.add``, as any asset is added); users user_001 and user_002 with opening balances
that are themselves top-ups, so every balance is explained by entries. Every opening carries an
idempotency key the system owns, so running the seed again changes nothing.
"""

from __future__ import annotations

from wallet.domain.ledger import Asset, TransactionType
from wallet.limits import SEED_SUPPLY_MAJOR

from .assets import SYSTEM_KEY_OWNER, AssetCatalog
from .commands import PostingCommand
from .writer import GroupCommitWriter

SEED_ASSETS = (
    Asset("GC", "Gold Coins", 2, SEED_SUPPLY_MAJOR * 100),
    Asset("DI", "Diamonds", 2, SEED_SUPPLY_MAJOR * 100),
    Asset("LP", "Loyalty Points", 2, SEED_SUPPLY_MAJOR * 100, expires_after_days=365),
)

# Opening balances in minor units.
SEED_USERS = {
    "user_001": {"GC": 100_000, "DI": 5_000, "LP": 20_000},
    "user_002": {"GC": 50_000, "DI": 1_000, "LP": 7_500},
}


def seed_demo_ledger(assets: AssetCatalog, writer: GroupCommitWriter) -> None:
    """Add the seed assets that are missing, then post the openings (before the writer runs).

    An asset that exists keeps its policy: LP's 365 days are given only to the LP this seed
    creates, so a database made before credits could expire has no retroactive expiry. The
    openings are top-ups like any other: on a new database, the LP ones are lots.
    """
    assets.add(SEED_ASSETS, exist_ok=True)
    openings = [
        PostingCommand(
            transaction_type=TransactionType.TOPUP,
            user_id=user_id,
            asset_code=asset_code,
            amount_minor=amount_minor,
            description="Opening balance",
            idempotency_key=f"opening:{user_id}:{asset_code}",
            key_owner=SYSTEM_KEY_OWNER,
            # An asset whose credits expire: its openings are lots too (service/lots.py).
            expires_after_days=assets.get(asset_code).expires_after_days,
        )
        for user_id, balances in SEED_USERS.items()
        for asset_code, amount_minor in balances.items()
    ]
    writer.apply_now(openings)
