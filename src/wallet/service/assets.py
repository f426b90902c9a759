"""Assets: the catalogue the service checks requests against, adding one with its supply, and
where an asset's supply is.

An asset's expiry policy (``expires_after_days``, API.md "Credits that expire") is read from the
catalogue by whatever makes credits: a change applies at once in the process that made it (the
catalogue is read again after its commit), and within ``ASSET_POLICY_REFRESH_INTERVAL_S`` in
every other process (the app reads the catalogue again that often, api/app.refresh_assets).
It applies to credits made after it: a lot keeps the expiry it was made with.

Adding an asset writes the asset and issues its whole supply (issuance -> treasury) in ONE unit
of work, on a writer connection of its own: either the asset exists with its supply in the
treasury, or nothing was written. (On SQLite this connection takes turns with the group-commit
writer through the database's write lock.) The HTTP route, the command line and the seed all add
assets through ``AssetCatalog.add``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from wallet.domain.errors import AssetExists, AssetNotFound, Unavailable
from wallet.domain.ledger import EXPIRED, HOLDS, ISSUANCE, TREASURY, Asset, TransactionType
from wallet.domain.money import format_minor, supply_to_minor
from wallet.limits import ASSET_REFRESH_INTERVAL_S
from wallet.storage import Database
from wallet.storage import ledger as store

from .clock import SYSTEM_CLOCK, Clock
from .commands import InternalError, PostingCommand
from .posting import apply_commands

# The owner of the idempotency keys of what the service posts by itself (issuance, the seed's
# openings): no API key's id looks like it.
SYSTEM_KEY_OWNER = "system:seed"


@dataclass(frozen=True, slots=True)
class Supply:
    """Where an asset's supply is, in minor units: treasury + users + pending holds + expired
    (what is left of lots when they expired) = supply."""

    asset: Asset
    treasury_minor: int
    users_minor: int
    pending_holds_minor: int
    expired_minor: int

    @property
    def adds_up(self) -> bool:
        total = (
            self.treasury_minor + self.users_minor + self.pending_holds_minor + self.expired_minor
        )
        return total == self.asset.supply_minor

    def view(self) -> dict[str, Any]:
        scale = self.asset.scale
        return {
            "asset_code": self.asset.code,
            "supply": format_minor(self.asset.supply_minor, scale),
            "treasury": format_minor(self.treasury_minor, scale),
            "users": format_minor(self.users_minor, scale),
            "pending_holds": format_minor(self.pending_holds_minor, scale),
            "expired": format_minor(self.expired_minor, scale),
            "adds_up": self.adds_up,
        }


def new_asset(
    code: str, name: str, scale: int, supply: Decimal, expires_after_days: int | None = None
) -> Asset:
    """An asset as an operator describes it, its supply in major units (422 if out of bounds),
    and how many days its credits last (None: for ever; the caller has checked 1 to
    ``EXPIRES_AFTER_DAYS_MAX``, as the schema does again)."""
    return Asset(code, name, scale, supply_to_minor(supply, scale), expires_after_days)


def asset_view(asset: Asset) -> dict[str, object]:
    """An asset as GET /assets, POST and PATCH /admin/assets answer it."""
    return {
        "code": asset.code,
        "name": asset.name,
        "scale": asset.scale,
        "expires_after_days": asset.expires_after_days,
    }


def issuance_command(asset: Asset) -> PostingCommand:
    """The transaction that issues an asset's whole supply to its treasury (once per asset)."""
    return PostingCommand(
        transaction_type=TransactionType.ISSUANCE,
        user_id=None,
        asset_code=asset.code,
        amount_minor=asset.supply_minor,
        description=f"Supply of {asset.name}",
        idempotency_key=f"issuance:{asset.code}",
        key_owner=SYSTEM_KEY_OWNER,
    )


class AssetCatalog:
    """The ledger's assets, cached in memory: every request is checked against them, and a code
    not in the cache is looked up again at most once a second (another process may have added
    it), so that unknown codes never become a query per request.
    """

    def __init__(self, database: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self._database = database
        self._clock = clock
        self._assets: dict[str, Asset] = {}
        self._loaded_at = -ASSET_REFRESH_INTERVAL_S

    def refresh(self) -> list[Asset]:
        with self._database.reading() as session:
            assets = store.list_assets(session)
        self._assets = {asset.code: asset for asset in assets}
        self._loaded_at = time.monotonic()
        return assets

    def cached(self, code: str | None) -> Asset | None:
        """The asset if it is in the cache; no database read (safe on the event loop)."""
        return None if code is None else self._assets.get(code)

    def get(self, code: str) -> Asset:
        """The asset, looked up again if it is not cached. Raises AssetNotFound."""
        asset = self._assets.get(code)
        if asset is None and time.monotonic() - self._loaded_at >= ASSET_REFRESH_INTERVAL_S:
            asset = {a.code: a for a in self.refresh()}.get(code)
        if asset is None:
            raise AssetNotFound(f"no asset with code {code!r}")
        return asset

    def scale_of(self, code: str) -> int:
        """The scale of an asset the ledger holds rows of (a transaction, a balance, a hold).
        A miss means the asset was added since the cache was loaded (by another process, or the
        command line), so the catalogue is read again at once: unlike a code a client names,
        this one is known to exist (a foreign key), and a new asset costs one read per process.
        """
        asset = self._assets.get(code)
        if asset is None:
            asset = {a.code: a for a in self.refresh()}[code]
        return asset.scale

    def scales(self) -> dict[str, int]:
        return {code: asset.scale for code, asset in self._assets.items()}

    def add(self, assets: Iterable[Asset], *, exist_ok: bool = False) -> list[Asset]:
        """Create each asset and issue its supply to its treasury, in one unit of work, and
        return the assets created. An asset whose code exists already raises AssetExists, or,
        with ``exist_ok`` (the seed), is left as it is: its issuance is posted again under its
        idempotency key, a replay that changes nothing (and that completes a database whose
        asset was written by an older seed that stopped before issuing it).

        Two processes seeding one new database at once may both try to issue a supply: the
        second one's unit of work fails on the first one's idempotency key (Unavailable), and is
        tried once more, when it finds the issuance and replays it.
        """
        assets = list(assets)
        try:
            return self._add(assets, exist_ok)
        except Unavailable:
            return self._add(assets, exist_ok)

    def _add(self, assets: list[Asset], exist_ok: bool) -> list[Asset]:
        created: list[Asset] = []
        to_issue: list[Asset] = []
        with self._database.unit_of_work() as session:
            now_us = self._clock.now_us()
            for asset in assets:
                if store.insert_asset(session, asset, now_us):
                    created.append(asset)
                    to_issue.append(asset)
                elif exist_ok:
                    # Read after the insert: a process seeding at the same time may have just
                    # committed it (PostgreSQL's insert waited for that commit).
                    stored = {a.code: a for a in store.list_assets(session)}
                    to_issue.append(stored[asset.code])
                else:
                    raise AssetExists(f"an asset with code {asset.code!r} exists already")
            if to_issue:
                issued = apply_commands(
                    session,
                    [issuance_command(asset) for asset in to_issue],
                    {asset.code: asset.scale for asset in to_issue},
                    now_us,
                )
                # A new asset's issuance account is empty and may go below zero: nothing can
                # refuse its issuance, unless the code is wrong.
                refused = [outcome.error for outcome in issued if outcome.error is not None]
                if refused:
                    raise InternalError(f"an asset's issuance was refused: {refused}")
        self.refresh()
        return created

    def set_expiry(self, code: str, expires_after_days: int | None) -> Asset:
        """Change how many days the asset's credits last (None: they never expire), for the
        credits made from now on; the lots made before keep their expiry. Raises AssetNotFound.
        """
        with self._database.unit_of_work() as session:
            found = store.set_asset_expiry(session, code, expires_after_days)
        if not found:
            raise AssetNotFound(f"no asset with code {code!r}")
        return {asset.code: asset for asset in self.refresh()}[code]

    def supply(self, code: str) -> Supply:
        """Where the asset's supply is, read in one statement (so one consistent read)."""
        asset = self.get(code)
        with self._database.reading() as session:
            totals = store.balances_by_holder(session, asset.code)
        for holder in totals:
            assert holder in ("user", TREASURY, ISSUANCE, HOLDS, EXPIRED), holder
        return Supply(
            asset=asset,
            treasury_minor=totals.get(TREASURY, 0),
            users_minor=totals.get("user", 0),
            pending_holds_minor=totals.get(HOLDS, 0),
            expired_minor=totals.get(EXPIRED, 0),
        )
