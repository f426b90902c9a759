"""Transactions: posting top-ups, bonuses, purchases, refunds and batches, and reading them back.

A request is checked against the ledger's assets and bounds here, and becomes a command for the
writer; what the ledger decides (funds, refundable amounts) is decided inside the unit of work.
Preparing a request reads the database only for a refund (its original), an asset missing
from the cache, or a keyed credit whose ``expires_at`` has passed (was its key decided?); such
preparation runs on a worker thread, never on the event loop, so that a
slow or absent database cannot stall other requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import anyio.to_thread

from wallet.domain.errors import (
    AssetNotFound,
    BatchFailed,
    IdempotencyKeyMismatch,
    TransactionNotFound,
    UserNotFound,
    ValidationFailed,
)
from wallet.domain.ledger import CREDITS_USER, POSTABLE_TRANSACTION_TYPES, TransactionType
from wallet.domain.money import to_minor
from wallet.storage import Database
from wallet.storage import ledger as store

from .assets import AssetCatalog
from .clock import SYSTEM_CLOCK, Clock, parse_instant_us
from .commands import BatchCommand, Outcome, PostingCommand, metadata_json
from .cursors import Page, decode_cursor, encode_cursor
from .lots import check_expires_at
from .render import transaction_view
from .writer import GroupCommitWriter

_POSTABLE = {kind.value: kind for kind in POSTABLE_TRANSACTION_TYPES}


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
    metadata: Mapping[str, str] | None = None
    # Top-ups and bonuses: when what is left of the credit expires (service/lots.py).
    expires_at: datetime | None = None


def resolve_idempotency_key(header: str | None, body: str | None) -> str | None:
    """The request's idempotency key, from the header or the body; both and different: 400."""
    if header is not None and body is not None and header != body:
        raise IdempotencyKeyMismatch(
            "the Idempotency-Key header and the body's idempotency_key differ"
        )
    return header if header is not None else body


class Transactions:
    def __init__(
        self,
        database: Database,
        assets: AssetCatalog,
        writer: GroupCommitWriter,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._database = database
        self._assets = assets
        self._writer = writer
        self._clock = clock

    async def post(self, request: TransactionInput, key_owner: str = "") -> Outcome:
        if self._needs_database(request, request.idempotency_key):
            command = await anyio.to_thread.run_sync(self.command_for, request, key_owner)
        else:
            command = self.command_for(request, key_owner)
        return await self._writer.submit(command)

    async def post_batch(
        self, items: Sequence[TransactionInput], idempotency_key: str | None, key_owner: str = ""
    ) -> Outcome:
        """Apply ``items`` in order in one unit of work, all or none (one queued command).

        An item that is malformed is a validation_error located at its index; an item that the
        ledger refuses fails the batch with batch_failed, naming the item by its index.
        """
        if any(self._needs_database(item, idempotency_key) for item in items):
            commands = await anyio.to_thread.run_sync(
                self._batch_commands, items, key_owner, idempotency_key
            )
        else:
            commands = self._batch_commands(items, key_owner, idempotency_key)
        return await self._writer.submit(BatchCommand(tuple(commands), idempotency_key, key_owner))

    def get(self, transaction_id: str) -> dict[str, Any]:
        with self._database.reading() as session:
            transaction = store.get_transaction(session, transaction_id)
        if transaction is None:
            raise TransactionNotFound(f"no transaction with id {transaction_id!r}")
        return transaction_view(transaction, self._assets.scale_of(transaction.asset_code))

    def history(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None,
        asset_code: str | None,
        transaction_type: str | None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Page:
        """A user's transactions, newest first; a page costs the same whatever the history.
        Raises UserNotFound for a user never credited.
        """
        page = self.search(
            limit=limit,
            cursor=cursor,
            user_id=user_id,
            asset_code=asset_code,
            transaction_type=transaction_type,
            metadata=metadata,
        )
        if not page.items and cursor is None:
            with self._database.reading() as session:
                if not store.user_exists(session, user_id):
                    raise UserNotFound(f"user {user_id} has never been credited")
        return page

    def search(
        self,
        *,
        limit: int,
        cursor: str | None,
        user_id: str | None = None,
        asset_code: str | None = None,
        transaction_type: str | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Page:
        """Transactions across users, newest first, matching every filter given (each metadata
        pair included); paged by an opaque cursor, so that a reader paging on while writes go
        on sees every transaction that existed when it began, once.
        """
        if asset_code is not None:
            asset_code = self._assets.get(asset_code).code
        before_seq = int(decode_cursor(cursor)) if cursor is not None else None
        with self._database.reading() as session:
            transactions = store.find_transactions(
                session,
                limit=limit + 1,
                before_seq=before_seq,
                user_id=user_id,
                asset_code=asset_code,
                transaction_type=transaction_type,
                metadata=metadata,
            )
        page = transactions[:limit]
        next_cursor = encode_cursor(page[-1].seq) if len(transactions) > limit else None
        assets = self._assets
        return Page([transaction_view(t, assets.scale_of(t.asset_code)) for t in page], next_cursor)

    def command_for(
        self, request: TransactionInput, key_owner: str = "", batch_key: str | None = None
    ) -> PostingCommand:
        """Check a request (or an item of the batch with key ``batch_key``) against the ledger's
        assets and bounds; raise ValidationFailed."""
        kind = _POSTABLE.get(request.transaction_type)
        if kind is None:
            allowed = ", ".join(_POSTABLE)
            raise ValidationFailed.at(
                "transaction_type", f"transaction_type must be one of {allowed}"
            )
        expires_at_us: int | None = None
        if request.expires_at is not None:
            if kind not in CREDITS_USER:
                raise ValidationFailed.at(
                    "expires_at", "expires_at is only for a top-up or a bonus"
                )
            expires_at_us = parse_instant_us(request.expires_at)
            key = request.idempotency_key if batch_key is None else batch_key
            self._check_expires_at(expires_at_us, key_owner, key)
        if kind is TransactionType.REFUND:
            return self._refund_command(request, key_owner)
        if request.refund_of is not None:
            raise ValidationFailed.at("refund_of", "refund_of is only for a refund")
        for name in ("user_id", "asset_code", "amount"):
            if getattr(request, name) is None:
                raise ValidationFailed.at(name, f"{name} is required for a {kind.value}")
        assert request.asset_code is not None
        assert request.amount is not None
        try:
            asset = self._assets.get(request.asset_code)
        except AssetNotFound as error:
            raise ValidationFailed.at("asset_code", error.detail) from None
        return PostingCommand(
            transaction_type=kind,
            user_id=request.user_id,
            asset_code=asset.code,
            amount_minor=to_minor(request.amount, asset.scale),
            description=request.description,
            idempotency_key=request.idempotency_key,
            key_owner=key_owner,
            metadata=metadata_json(request.metadata),
            expires_at_us=expires_at_us,
            expires_after_days=asset.expires_after_days if kind in CREDITS_USER else None,
        )

    def _refund_command(self, request: TransactionInput, key_owner: str) -> PostingCommand:
        """A refund names its original, which fixes the user and the asset: a client may repeat
        them, and they must match. The original never changes, so reading it before the unit of
        work is safe; how much of it is left to refund is decided inside.
        """
        if request.refund_of is None:
            raise ValidationFailed.at("refund_of", "refund_of is required for a refund")
        with self._database.reading() as session:
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
        scale = self._assets.scale_of(original.asset_code)
        return PostingCommand(
            transaction_type=TransactionType.REFUND,
            user_id=original.user_id,
            asset_code=original.asset_code,
            amount_minor=None if request.amount is None else to_minor(request.amount, scale),
            description=request.description,
            idempotency_key=request.idempotency_key,
            refund_of=original.id,
            key_owner=key_owner,
            metadata=metadata_json(request.metadata),
        )

    def _check_expires_at(self, expires_at_us: int, key_owner: str, key: str | None) -> None:
        """A credit's ``expires_at`` must be ahead; but a retry of a request decided while it was
        ahead, with the same key, is not refused for the time that passed since: the writer
        answers it from its key (its replay, or idempotency_key_reused). Only a request whose
        key was never decided is checked (runs on a thread: it may read the database)."""
        try:
            check_expires_at(expires_at_us, self._clock.now_us())
        except ValidationFailed:
            if key is None:
                raise
            with self._database.reading() as session:
                if not store.find_outcomes(session, key_owner, [key]):
                    raise

    def _batch_commands(
        self, items: Sequence[TransactionInput], key_owner: str, batch_key: str | None = None
    ) -> list[PostingCommand]:
        commands: list[PostingCommand] = []
        for index, item in enumerate(items):
            try:
                commands.append(self.command_for(item, key_owner, batch_key))
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

    def _needs_database(self, request: TransactionInput, key: str | None) -> bool:
        """Whether preparing ``request`` (with the idempotency key ``key``, its own or its
        batch's) may read the database (see the module's docstring)."""
        return (
            request.transaction_type == "refund"
            or self._assets.cached(request.asset_code) is None
            or (request.expires_at is not None and key is not None)
        )
