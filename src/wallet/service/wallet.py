"""The wallet's use cases, called by the HTTP API and the command line alike.

Writes go through the group-commit writer; reads run on the database's read sessions. Every
expected failure is a WalletError from wallet.domain.errors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import anyio.to_thread

from wallet.config import Settings
from wallet.domain.errors import (
    AssetNotFound,
    BatchFailed,
    HoldNotFound,
    IdempotencyKeyMismatch,
    TransactionNotFound,
    UserNotFound,
    ValidationFailed,
)
from wallet.domain.holds import Hold, HoldAction
from wallet.domain.ledger import (
    POSTABLE_TRANSACTION_TYPES,
    AccountRef,
    Asset,
    TransactionType,
)
from wallet.domain.money import format_minor, supply_to_minor, to_minor
from wallet.limits import ASSET_REFRESH_INTERVAL_S, HOLD_SWEEP_BATCH_MAX
from wallet.storage import Database, open_database
from wallet.storage import holds as hold_store
from wallet.storage import ledger as store

from .assets import add_asset, asset_supply
from .clock import format_us, now_us, parse_instant_us
from .commands import BatchCommand, Command, HoldCommand, PostingCommand
from .keys import KeyRing
from .metrics import Metrics
from .notes import note_transaction
from .posting import Outcome
from .render import hold_view, transaction_view
from .verify import VerifyReport, verify_ledger
from .writer import GroupCommitWriter

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TransactionInput:
    """A POST /transaction body, parsed but not yet checked against the ledger's assets."""

    transaction_type: str
    user_id: str | None
    asset_code: str | None
    amount: Decimal | None
    description: str | None = None
    idempotency_key: str | None = None
    refund_of: str | None = None


@dataclass(frozen=True, slots=True)
class HoldInput:
    """A POST /holds body, parsed but not yet checked against the ledger's assets."""

    user_id: str
    asset_code: str
    amount: Decimal
    expires_in_s: int
    description: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


class WalletService:
    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self.database = database or open_database(settings)
        self._assets: dict[str, Asset] = {}
        self._assets_loaded_at = 0.0
        self.metrics = Metrics()
        self.writer = GroupCommitWriter(self.database, self._scales, self.metrics)
        self.metrics.watch_queue(lambda: self.writer.queue_depth)
        self.keys = KeyRing(self.database, required=settings.auth == "required")

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate, load assets, seed if asked, and start the writer."""
        self.database.migrate()
        self.refresh_assets()
        if self.settings.seed:
            from .seed import seed_demo_ledger

            seed_demo_ledger(self)
        self.keys.refresh()
        self.writer.start()

    def stop(self) -> None:
        self.writer.stop()
        self.database.close()

    # --- assets --------------------------------------------------------------------------------

    def refresh_assets(self) -> list[Asset]:
        with self.database.reading() as session:
            assets = store.list_assets(session)
        self._assets = {asset.code: asset for asset in assets}
        self._assets_loaded_at = time.monotonic()
        return assets

    def assets(self) -> list[Asset]:
        return sorted(self._assets.values(), key=lambda a: a.code)

    def asset(self, code: str) -> Asset:
        asset = self._assets.get(code)
        if asset is None and self._may_refresh_assets():
            # Another process may have added it since we loaded the list.
            asset = {a.code: a for a in self.refresh_assets()}.get(code)
        if asset is None:
            raise AssetNotFound(f"no asset with code {code!r}")
        return asset

    def _may_refresh_assets(self) -> bool:
        """At most one reload a second: unknown codes must not become a query per request."""
        return time.monotonic() - self._assets_loaded_at >= ASSET_REFRESH_INTERVAL_S

    def _needs_database(self, request: TransactionInput) -> bool:
        """Whether preparing ``request`` reads the database (a refund reads its original, an
        asset not in the cache is looked up). Such preparation runs on a worker thread, never
        on the event loop, so a slow or absent database cannot stall other requests.
        """
        return request.transaction_type == "refund" or request.asset_code not in self._assets

    def _scales(self) -> dict[str, int]:
        return {code: asset.scale for code, asset in self._assets.items()}

    # --- writes --------------------------------------------------------------------------------

    def command_for(self, request: TransactionInput, scope: str = "") -> PostingCommand:
        """Check a request against the ledger's assets and bounds; raise ValidationFailed."""
        try:
            kind = TransactionType(request.transaction_type)
        except ValueError:
            kind = None
        if kind not in POSTABLE_TRANSACTION_TYPES:
            allowed = ", ".join(t.value for t in POSTABLE_TRANSACTION_TYPES)
            raise ValidationFailed.at(
                "transaction_type", f"transaction_type must be one of {allowed}"
            )
        if kind is TransactionType.REFUND:
            return self._refund_command(request, scope)
        assert kind is not None
        if request.refund_of is not None:
            raise ValidationFailed.at("refund_of", "refund_of is only for a refund")
        for name in ("user_id", "asset_code", "amount"):
            if getattr(request, name) is None:
                raise ValidationFailed.at(name, f"{name} is required for a {kind.value}")
        assert request.asset_code is not None
        assert request.amount is not None
        try:
            asset = self.asset(request.asset_code)
        except AssetNotFound as error:
            raise ValidationFailed.at("asset_code", error.detail) from None
        return PostingCommand(
            transaction_type=kind,
            user_id=request.user_id,
            asset_code=asset.code,
            amount_minor=to_minor(request.amount, asset.scale),
            description=request.description,
            idempotency_key=request.idempotency_key,
            scope=scope,
        )

    def _refund_command(self, request: TransactionInput, scope: str) -> PostingCommand:
        """A refund names its original, which fixes the user and the asset: a client may repeat
        them, and they must match. The original never changes, so reading it before the unit of
        work is safe; how much of it is left to refund is decided inside.
        """
        if request.refund_of is None:
            raise ValidationFailed.at("refund_of", "refund_of is required for a refund")
        with self.database.reading() as session:
            original = store.get_transaction(session, request.refund_of)
        if original is None:
            raise TransactionNotFound(f"no transaction with id {request.refund_of!r}")
        for name, given, actual in (
            ("user_id", request.user_id, original.user_id),
            ("asset_code", request.asset_code, original.asset_code),
        ):
            if given is not None and given != actual:
                raise ValidationFailed.at(
                    name, f"{name} {given!r} is not the refunded transaction's ({actual!r})"
                )
        scale = self.asset(original.asset_code).scale
        return PostingCommand(
            transaction_type=TransactionType.REFUND,
            user_id=original.user_id,
            asset_code=original.asset_code,
            amount_minor=None if request.amount is None else to_minor(request.amount, scale),
            description=request.description,
            idempotency_key=request.idempotency_key,
            refund_of=original.id,
            scope=scope,
        )

    async def post_transaction(self, request: TransactionInput, scope: str = "") -> Outcome:
        if self._needs_database(request):
            command = await anyio.to_thread.run_sync(self.command_for, request, scope)
        else:
            command = self.command_for(request, scope)
        return await self._submit(command)

    async def post_batch(
        self, items: Sequence[TransactionInput], idempotency_key: str | None, scope: str = ""
    ) -> Outcome:
        """Apply ``items`` in order in one unit of work, all or none (one queued command).

        An item that is malformed is a validation_error located at its index; an item that the
        ledger refuses fails the batch with batch_failed, naming the item by its index.
        """
        if any(self._needs_database(item) for item in items):
            commands = await anyio.to_thread.run_sync(self._batch_commands, items, scope)
        else:
            commands = self._batch_commands(items, scope)
        return await self._submit(BatchCommand(tuple(commands), idempotency_key, scope))

    def _batch_commands(
        self, items: Sequence[TransactionInput], scope: str
    ) -> list[PostingCommand]:
        commands: list[PostingCommand] = []
        for index, item in enumerate(items):
            try:
                commands.append(self.command_for(item, scope))
            except ValidationFailed as error:
                located = [
                    {**problem, "loc": ["body", "transactions", index, *problem["loc"][1:]]}
                    for problem in error.errors
                ]
                raise ValidationFailed(f"transactions[{index}]: {error.detail}", located) from None
            except TransactionNotFound as error:
                raise BatchFailed(
                    f"item {index} was refused ({error.code}): nothing was applied",
                    [{"index": index, "code": error.code, "detail": error.detail}],
                ) from None
        return commands

    async def _submit(self, command: Command) -> Outcome:
        outcome = await self.writer.submit(command)
        self.metrics.record_outcome(command, outcome)
        if outcome.transaction_id is not None:
            note_transaction(outcome.transaction_id)
        return outcome

    # --- reads ---------------------------------------------------------------------------------

    async def read(self, function: Callable[..., T], *args: Any) -> T:
        """Run a read use case from the event loop: inline where the database's reads are
        cheaper than a hop to a worker thread (SQLite), else on a worker thread (PostgreSQL,
        whose round trips must never stall the loop).
        """
        if self.database.reads_inline:
            return function(*args)
        return await anyio.to_thread.run_sync(function, *args)

    def balances(self, user_id: str) -> list[dict[str, str]]:
        with self.database.reading() as session:
            rows = store.user_balances(session, user_id)
            held = hold_store.held_amounts(session, user_id)
        if all(balance is None for _, balance in rows):
            raise UserNotFound(f"user {user_id} has never been credited")
        return [
            self._balance_view(user_id, code, balance or 0, held.get(code, 0))
            for code, balance in rows
        ]

    def balance(
        self, user_id: str, asset_code: str, as_of: datetime | None = None
    ) -> dict[str, str]:
        """A user's balance now (with what pending holds set aside), or just after the last
        entry at or before ``as_of``.
        """
        asset = self.asset(asset_code)
        account = AccountRef.user(user_id, asset.code)
        at_us = None if as_of is None else parse_instant_us(as_of)
        held: int | None = None
        with self.database.reading() as session:
            if at_us is None:
                balance = store.account_balance(session, account)
                held = hold_store.held_amounts(session, user_id).get(asset.code, 0)
            else:
                balance = store.account_balance_at(session, account, at_us)
            if balance is None and not store.user_exists(session, user_id):
                raise UserNotFound(f"user {user_id} has never been credited")
        view = self._balance_view(user_id, asset.code, balance or 0, held)
        if at_us is not None:
            view["as_of"] = format_us(at_us)
        return view

    def _balance_view(
        self, user_id: str, asset_code: str, balance_minor: int, held_minor: int | None
    ) -> dict[str, str]:
        scale = self._assets[asset_code].scale
        view = {
            "user_id": user_id,
            "asset_code": asset_code,
            "balance": format_minor(balance_minor, scale),
        }
        if held_minor is not None:
            view["held"] = format_minor(held_minor, scale)
        return view

    def transaction(self, transaction_id: str) -> dict[str, Any]:
        with self.database.reading() as session:
            transaction = store.get_transaction(session, transaction_id)
        if transaction is None:
            raise TransactionNotFound(f"no transaction with id {transaction_id!r}")
        return transaction_view(transaction, self.asset(transaction.asset_code).scale)

    def history(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None,
        asset_code: str | None,
        transaction_type: str | None,
    ) -> HistoryPage:
        if asset_code is not None:
            asset_code = self.asset(asset_code).code
        before_seq = int(decode_cursor(cursor)) if cursor is not None else None
        with self.database.reading() as session:
            transactions = store.user_history(
                session,
                user_id,
                limit=limit + 1,
                before_seq=before_seq,
                asset_code=asset_code,
                transaction_type=transaction_type,
            )
            if not transactions and before_seq is None and not store.user_exists(session, user_id):
                raise UserNotFound(f"user {user_id} has never been credited")
        page = transactions[:limit]
        next_cursor = encode_cursor(page[-1].seq) if len(transactions) > limit else None
        items = [transaction_view(t, self._assets[t.asset_code].scale) for t in page]
        return HistoryPage(items=items, next_cursor=next_cursor)

    # --- holds ---------------------------------------------------------------------------------

    async def place_hold(self, request: HoldInput, scope: str = "") -> Outcome:
        try:
            if request.asset_code in self._assets:
                asset = self._assets[request.asset_code]
            else:
                asset = await anyio.to_thread.run_sync(self.asset, request.asset_code)
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
            scope=scope,
        )
        return await self._submit(command)

    async def settle_hold(
        self,
        hold_id: str,
        action: HoldAction,
        amount: Decimal | None = None,
        idempotency_key: str | None = None,
        scope: str = "",
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
            scope=scope,
        )
        return await self._submit(command)

    async def expire_holds(self) -> int:
        """One pass of the sweeper: release up to HOLD_SWEEP_BATCH_MAX expired pending holds,
        through the writer like any other write. Returns how many it expired.
        """
        expired = await anyio.to_thread.run_sync(self._expired_holds)
        commands = [
            HoldCommand(HoldAction.EXPIRE, h.user_id, h.asset_code, hold_id=h.id) for h in expired
        ]
        outcomes = await asyncio.gather(*(self._submit(c) for c in commands))
        expired_count = sum(outcome.error is None for outcome in outcomes)
        self.metrics.holds_expired.inc(expired_count)
        return expired_count

    def _hold_and_scale(self, hold_id: str) -> tuple[Hold, int]:
        hold = self._read_hold(hold_id)
        return hold, self.asset(hold.asset_code).scale

    def _expired_holds(self) -> list[Hold]:
        with self.database.reading() as session:
            return hold_store.expired_pending(session, now_us(), HOLD_SWEEP_BATCH_MAX)

    def hold(self, hold_id: str) -> dict[str, Any]:
        hold = self._read_hold(hold_id)
        return hold_view(hold, self.asset(hold.asset_code).scale)

    def holds(
        self, user_id: str, *, status: str | None, limit: int, cursor: str | None
    ) -> HistoryPage:
        before_id = decode_cursor(cursor, "hold") if cursor is not None else None
        with self.database.reading() as session:
            found = hold_store.list_holds(
                session, user_id, status=status, before_id=before_id, limit=limit + 1
            )
        page = found[:limit]
        next_cursor = encode_cursor(page[-1].id, "hold") if len(found) > limit else None
        items = [hold_view(h, self.asset(h.asset_code).scale) for h in page]
        return HistoryPage(items=items, next_cursor=next_cursor)

    def _read_hold(self, hold_id: str) -> Hold:
        with self.database.reading() as session:
            hold = hold_store.get_hold(session, hold_id)
        if hold is None:
            raise HoldNotFound(f"no hold with id {hold_id!r}")
        return hold

    # --- administration ------------------------------------------------------------------------

    def supply(self, asset_code: str) -> dict[str, object]:
        supply = asset_supply(self.database, self.asset(asset_code))
        scale = supply.asset.scale
        return {
            "asset_code": supply.asset.code,
            "supply": format_minor(supply.asset.supply_minor, scale),
            "treasury": format_minor(supply.treasury_minor, scale),
            "users": format_minor(supply.users_minor, scale),
            "pending_holds": format_minor(supply.pending_holds_minor, scale),
            "adds_up": supply.adds_up,
        }

    def add_asset(self, code: str, name: str, scale: int, supply: Decimal) -> Asset:
        """Add an asset with its supply in its treasury (one unit of work). Raises AssetExists."""
        asset = Asset(code, name, scale, supply_to_minor(supply, scale))
        add_asset(self.database, asset)
        self.refresh_assets()
        return asset

    def verify(self) -> VerifyReport:
        return verify_ledger(self.database)

    def metrics_exposition(self) -> bytes:
        """The Prometheus exposition, with the pending holds counted now."""
        with self.database.reading() as session:
            pending = hold_store.pending_by_asset(session)
        self.metrics.set_holds_pending((code, count) for code, (count, _) in pending.items())
        return self.metrics.exposition()

    def ping(self) -> float:
        """Query the database; the round trip in milliseconds. Raises Unavailable."""
        started = time.perf_counter()
        with self.database.reading() as session:
            session.one("SELECT 1")
        return (time.perf_counter() - started) * 1000


def resolve_idempotency_key(header: str | None, body: str | None) -> str | None:
    if header is not None and body is not None and header != body:
        raise IdempotencyKeyMismatch(
            "the Idempotency-Key header and the body's idempotency_key differ"
        )
    return header if header is not None else body


def encode_cursor(position: int | str, kind: str = "seq") -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str = "seq") -> str:
    """The position a cursor of ``kind`` names; a cursor we did not give out is a 422."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != kind or not value or len(value) > 64:
            raise ValueError(cursor)
        # ASCII digits only (str.isdigit also takes "²"), and within a BIGINT's range.
        if kind == "seq" and not (
            value.isascii() and value.isdigit() and len(value) <= 19 and int(value) < 2**63
        ):
            raise ValueError(cursor)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed.at(
            "cursor", "cursor is not one this service gave out", "query"
        ) from None
