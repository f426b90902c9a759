"""Holds: placing one, capturing or releasing it, expiring those past due, and reading them.

The unit of work's part (moving the funds, deciding whether a hold is still pending) is in
holding.py; this module prepares the commands and reads holds back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio.to_thread

from wallet.domain.errors import AssetNotFound, HoldNotFound, ValidationFailed
from wallet.domain.holds import Hold, HoldAction
from wallet.domain.money import format_minor, to_minor
from wallet.limits import HOLD_SWEEP_BATCH_MAX
from wallet.storage import Database
from wallet.storage import holds as hold_store

from .assets import AssetCatalog
from .clock import Clock
from .commands import HoldCommand, Outcome
from .cursors import Page, decode_cursor, encode_cursor
from .metrics import Metrics
from .render import hold_view
from .writer import GroupCommitWriter


@dataclass(frozen=True, slots=True)
class HoldInput:
    """A POST /holds body, parsed but not yet checked against the ledger's assets."""

    user_id: str
    asset_code: str
    amount: Decimal
    expires_in_s: int
    description: str | None = None
    idempotency_key: str | None = None


class Holds:
    def __init__(
        self,
        database: Database,
        assets: AssetCatalog,
        writer: GroupCommitWriter,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._database = database
        self._assets = assets
        self._writer = writer
        self._clock = clock
        self._metrics = metrics

    async def place(self, request: HoldInput, key_owner: str = "") -> Outcome:
        asset = self._assets.cached(request.asset_code)
        try:
            if asset is None:
                asset = await anyio.to_thread.run_sync(self._assets.get, request.asset_code)
        except AssetNotFound as error:
            raise ValidationFailed.at("asset_code", error.detail) from None
        command = HoldCommand(
            action=HoldAction.PLACE,
            user_id=request.user_id,
            asset_code=asset.code,
            amount_minor=to_minor(request.amount, asset.scale),
            expires_in_s=request.expires_in_s,
            description=request.description,
            idempotency_key=request.idempotency_key,
            key_owner=key_owner,
        )
        return await self._writer.submit(command)

    async def settle(
        self,
        hold_id: str,
        action: HoldAction,
        amount: Decimal | None = None,
        idempotency_key: str | None = None,
        key_owner: str = "",
    ) -> Outcome:
        """Capture (all or ``amount``, the rest released) or release a hold.

        The hold's user, asset and amount never change, so they are read before the unit of
        work; whether it is still pending, and not expired, is decided inside it.
        """
        hold, scale = await anyio.to_thread.run_sync(self._hold_and_scale, hold_id)
        amount_minor = None if amount is None else to_minor(amount, scale)
        if amount_minor is not None and amount_minor > hold.amount_minor:
            held = format_minor(hold.amount_minor, scale)
            raise ValidationFailed.at("amount", f"a capture takes at most the {held} held")
        command = HoldCommand(
            action=action,
            user_id=hold.user_id,
            asset_code=hold.asset_code,
            amount_minor=amount_minor,
            hold_id=hold.id,
            idempotency_key=idempotency_key,
            key_owner=key_owner,
        )
        return await self._writer.submit(command)

    async def expire_due(self) -> int:
        """One pass of the sweeper: release up to HOLD_SWEEP_BATCH_MAX expired pending holds,
        through the writer like any other write. Returns how many it expired.
        """
        due = await anyio.to_thread.run_sync(self._due)
        commands = [
            HoldCommand(HoldAction.EXPIRE, h.user_id, h.asset_code, hold_id=h.id) for h in due
        ]
        outcomes = await asyncio.gather(*(self._writer.submit(c) for c in commands))
        expired = sum(outcome.error is None for outcome in outcomes)
        self._metrics.holds_expired.inc(expired)
        return expired

    def get(self, hold_id: str) -> dict[str, Any]:
        hold = self._read(hold_id)
        return hold_view(hold, self._assets.get(hold.asset_code).scale)

    def of_user(self, user_id: str, *, status: str | None, limit: int, cursor: str | None) -> Page:
        before_id = decode_cursor(cursor, "hold") if cursor is not None else None
        with self._database.reading() as session:
            found = hold_store.list_holds(
                session, user_id, status=status, before_id=before_id, limit=limit + 1
            )
        page = found[:limit]
        next_cursor = encode_cursor(page[-1].id, "hold") if len(found) > limit else None
        items = [hold_view(h, self._assets.get(h.asset_code).scale) for h in page]
        return Page(items, next_cursor)

    def _hold_and_scale(self, hold_id: str) -> tuple[Hold, int]:
        hold = self._read(hold_id)
        return hold, self._assets.get(hold.asset_code).scale

    def _due(self) -> list[Hold]:
        with self._database.reading() as session:
            return hold_store.expired_pending(session, self._clock.now_us(), HOLD_SWEEP_BATCH_MAX)

    def _read(self, hold_id: str) -> Hold:
        with self._database.reading() as session:
            hold = hold_store.get_hold(session, hold_id)
        if hold is None:
            raise HoldNotFound(f"no hold with id {hold_id!r}")
        return hold
