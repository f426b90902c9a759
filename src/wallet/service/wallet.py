"""The wallet's use cases, called by the HTTP API and the command line alike.

Writes go through the group-commit writer; reads run on the database's read sessions. Every
expected failure is a WalletError from wallet.domain.errors.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from wallet.config import Settings
from wallet.domain.errors import (
    AssetNotFound,
    BatchFailed,
    IdempotencyKeyMismatch,
    TransactionNotFound,
    UserNotFound,
    ValidationFailed,
)
from wallet.domain.ledger import (
    POSTABLE_TRANSACTION_TYPES,
    AccountRef,
    Asset,
    TransactionType,
)
from wallet.domain.money import format_minor, to_minor
from wallet.storage import Database, open_database
from wallet.storage import ledger as store

from .clock import format_us, parse_instant_us
from .commands import BatchCommand, PostingCommand
from .posting import Outcome
from .render import transaction_view
from .writer import GroupCommitWriter

log = logging.getLogger(__name__)


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
class HistoryPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


class WalletService:
    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self.database = database or open_database(settings)
        self._assets: dict[str, Asset] = {}
        self.writer = GroupCommitWriter(self.database, self._scales)

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate, load assets, seed if asked, and start the writer."""
        self.database.migrate()
        self.refresh_assets()
        if self.settings.seed:
            from .seed import seed_demo_ledger

            seed_demo_ledger(self)
        self.writer.start()

    def stop(self) -> None:
        self.writer.stop()
        self.database.close()

    # --- assets --------------------------------------------------------------------------------

    def refresh_assets(self) -> list[Asset]:
        with self.database.reading() as session:
            assets = store.list_assets(session)
        self._assets = {asset.code: asset for asset in assets}
        return assets

    def assets(self) -> list[Asset]:
        return sorted(self._assets.values(), key=lambda a: a.code)

    def asset(self, code: str) -> Asset:
        asset = self._assets.get(code)
        if asset is None:
            # Another process may have added it since we loaded the list.
            asset = {a.code: a for a in self.refresh_assets()}.get(code)
        if asset is None:
            raise AssetNotFound(f"no asset with code {code!r}")
        return asset

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
        return await self.writer.submit(self.command_for(request, scope))

    async def post_batch(
        self, items: Sequence[TransactionInput], idempotency_key: str | None, scope: str = ""
    ) -> Outcome:
        """Apply ``items`` in order in one unit of work, all or none (one queued command).

        An item that is malformed is a validation_error located at its index; an item that the
        ledger refuses fails the batch with batch_failed, naming the item by its index.
        """
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
        return await self.writer.submit(BatchCommand(tuple(commands), idempotency_key, scope))

    # --- reads ---------------------------------------------------------------------------------

    def balances(self, user_id: str) -> list[dict[str, str]]:
        with self.database.reading() as session:
            rows = store.user_balances(session, user_id)
        if all(balance is None for _, balance in rows):
            raise UserNotFound(f"user {user_id} has never been credited")
        return [self._balance_view(user_id, code, balance or 0) for code, balance in rows]

    def balance(
        self, user_id: str, asset_code: str, as_of: datetime | None = None
    ) -> dict[str, str]:
        """A user's balance now, or just after the last entry at or before ``as_of``."""
        asset = self.asset(asset_code)
        account = AccountRef.user(user_id, asset.code)
        at_us = None if as_of is None else parse_instant_us(as_of)
        with self.database.reading() as session:
            if at_us is None:
                balance = store.account_balance(session, account)
            else:
                balance = store.account_balance_at(session, account, at_us)
            if balance is None and not store.user_exists(session, user_id):
                raise UserNotFound(f"user {user_id} has never been credited")
        view = self._balance_view(user_id, asset.code, balance or 0)
        if at_us is not None:
            view["as_of"] = format_us(at_us)
        return view

    def _balance_view(self, user_id: str, asset_code: str, balance_minor: int) -> dict[str, str]:
        scale = self._assets[asset_code].scale
        return {
            "user_id": user_id,
            "asset_code": asset_code,
            "balance": format_minor(balance_minor, scale),
        }

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
        before_seq = decode_cursor(cursor) if cursor is not None else None
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


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "seq" or not value.isdigit() or len(value) > 19:
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed.at(
            "cursor", "cursor is not one this service gave out", "query"
        ) from None
