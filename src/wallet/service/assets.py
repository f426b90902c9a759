"""Assets as an operator sees them: adding one with its supply, and where its supply is.

Adding an asset writes the asset and issues its whole supply (issuance -> treasury) in ONE unit
of work, on a writer connection of its own: either the asset exists with its supply in the
treasury, or nothing was written. (On SQLite this connection takes turns with the group-commit
writer through the database's write lock.)
"""

from __future__ import annotations

from dataclasses import dataclass

from wallet.domain.errors import AssetExists
from wallet.domain.ledger import HOLDS, ISSUANCE, TREASURY, Asset
from wallet.storage import Database
from wallet.storage import ledger as store

from .clock import now_us
from .posting import apply_commands
from .seed import issuance_command


@dataclass(frozen=True, slots=True)
class Supply:
    """Where an asset's supply is, in minor units: treasury + users + pending holds = supply."""

    asset: Asset
    treasury_minor: int
    users_minor: int
    pending_holds_minor: int

    @property
    def adds_up(self) -> bool:
        total = self.treasury_minor + self.users_minor + self.pending_holds_minor
        return total == self.asset.supply_minor


def add_asset(database: Database, asset: Asset) -> None:
    """Create ``asset`` and issue its supply to its treasury. Raises AssetExists."""
    scales = {a.code: a.scale for a in list_assets(database)} | {asset.code: asset.scale}
    connection = database.connect_writer()
    try:
        connection.begin()
        if not store.insert_asset(connection.session, asset, now_us()):
            raise AssetExists(f"an asset with code {asset.code!r} exists already")
        [outcome] = apply_commands(connection.session, [issuance_command(asset)], scales, now_us())
        # A new asset's issuance account is empty and may go below zero: nothing can refuse it.
        assert outcome.error is None, outcome.error
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()


def list_assets(database: Database) -> list[Asset]:
    with database.reading() as session:
        return store.list_assets(session)


def asset_supply(database: Database, asset: Asset) -> Supply:
    """The asset's balances by holder, in one statement (so one consistent read)."""
    with database.reading() as session:
        totals = store.balances_by_holder(session, asset.code)
    for holder in totals:
        assert holder in ("user", TREASURY, ISSUANCE, HOLDS), holder
    return Supply(
        asset=asset,
        treasury_minor=totals.get(TREASURY, 0),
        users_minor=totals.get("user", 0),
        pending_holds_minor=totals.get(HOLDS, 0),
    )
