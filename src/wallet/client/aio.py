"""The asyncio client: the same methods as :class:`~wallet.client.WalletClient`, awaited.

It shares the protocol (requests, parsing, retry decisions) with the blocking client; only sending
and sleeping differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import TypeVar

import httpx

from . import operations as op
from .models import (
    AmountInput,
    AnyTransactionType,
    Asset,
    AssetSupply,
    Balance,
    Batch,
    BatchItem,
    Event,
    EventPage,
    EventType,
    HistoryPage,
    Hold,
    HoldPage,
    HoldStatus,
    Lot,
    LotPage,
    MetadataInput,
    Transaction,
    TransactionPage,
    TransactionType,
    VerifyReport,
)
from .protocol import (
    CONNECT_TIMEOUT_S_DEFAULT,
    EVENTS_WAIT_S_DEFAULT,
    READ_TIMEOUT_S_DEFAULT,
    Call,
    Connection,
    Done,
    Exchange,
)
from .retry import RetryPolicy

T = TypeVar("T")


class AsyncWalletClient:
    """An asyncio client of the wallet service: every method of :class:`WalletClient`, awaited.

    ``base_url`` defaults to ``WALLET_URL``, then ``http://127.0.0.1:8000``; ``api_key`` to
    ``WALLET_API_KEY`` (sent as ``Authorization: Bearer``). Every write carries an idempotency
    key (a fresh uuid4 unless given) that is kept across the client's own retries, so a retried
    write never moves money twice. Retries follow ``retry`` (see :mod:`wallet.client.retry`).
    Errors are raised as :class:`~wallet.client.WalletAPIError` subclasses, one per error code,
    or :class:`~wallet.client.WalletConnectionError` when no answer came.

    Use it as an async context manager, or await :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S_DEFAULT,
        read_timeout_s: float = READ_TIMEOUT_S_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> None:
        connection = Connection.resolve(base_url, api_key, connect_timeout_s, read_timeout_s)
        self.base_url = connection.base_url
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=connection.base_url, headers=connection.headers, timeout=connection.timeout
        )

    async def __aenter__(self) -> AsyncWalletClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections of the pool."""
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send a call, retrying as the policy allows, and return its parsed result."""
        exchange = Exchange(call, self.retry)
        while True:
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                json=call.body,
                headers=call.headers(),
                timeout=call.timeout(self._http.timeout),
            )
            try:
                step = exchange.after_response(await self._http.send(request))
            except httpx.TransportError as error:
                step = exchange.after_error(error)
            if isinstance(step, Done):
                return step.value
            await asyncio.sleep(step.delay_s)

    # Reads.

    async def assets(self) -> tuple[Asset, ...]:
        """Every asset (code, name, scale)."""
        return await self.send(op.assets())

    async def balances(self, user_id: str) -> tuple[Balance, ...]:
        """Every balance of a user, one per asset, zeros included, each with ``held``."""
        return await self.send(op.balances(user_id))

    async def balance(
        self, user_id: str, asset_code: str, as_of: datetime | None = None
    ) -> Balance:
        """A user's balance in one asset: now, or just after the last entry at or before the
        timezone-aware instant ``as_of``.
        """
        return await self.send(op.balance(user_id, asset_code, as_of))

    async def lots_page(
        self,
        user_id: str,
        asset_code: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> LotPage:
        """One page of a user's open lots in an asset (credits that expire), soonest expiry
        first; pass ``next_cursor`` for the next."""
        return await self.send(op.lots(user_id, asset_code, limit=limit, cursor=cursor))

    async def lots(
        self, user_id: str, asset_code: str, *, page_size: int | None = None
    ) -> AsyncIterator[Lot]:
        """Every open lot of a user in an asset, soonest expiry first, fetched a page at a
        time as you iterate."""
        cursor: str | None = None
        while True:
            page = await self.lots_page(user_id, asset_code, limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_transaction(self, transaction_id: str) -> Transaction:
        """One transaction with its entries."""
        return await self.send(op.get_transaction(transaction_id))

    async def history(
        self,
        user_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        asset_code: str | None = None,
        transaction_type: TransactionType | None = None,
        metadata: MetadataInput | None = None,
    ) -> HistoryPage:
        """One page of a user's transactions, newest first; pass ``next_cursor`` for the next.
        ``metadata`` keeps those whose metadata has each of its keys with that value.
        """
        return await self.send(
            op.history(
                user_id,
                limit=limit,
                cursor=cursor,
                asset_code=asset_code,
                transaction_type=transaction_type,
                metadata=metadata,
            )
        )

    async def iter_history(
        self,
        user_id: str,
        *,
        page_size: int | None = None,
        asset_code: str | None = None,
        transaction_type: TransactionType | None = None,
        metadata: MetadataInput | None = None,
    ) -> AsyncIterator[Transaction]:
        """Every transaction of a user, newest first, fetched a page at a time as you iterate."""
        cursor: str | None = None
        while True:
            page = await self.history(
                user_id,
                limit=page_size,
                cursor=cursor,
                asset_code=asset_code,
                transaction_type=transaction_type,
                metadata=metadata,
            )
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def transactions(
        self,
        *,
        user_id: str | None = None,
        asset_code: str | None = None,
        transaction_type: AnyTransactionType | None = None,
        metadata: MetadataInput | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TransactionPage:
        """One page of transactions across users, newest first; pass ``next_cursor`` for the
        next. ``metadata`` (at most three members) keeps those whose metadata has each of its
        keys with that value: ``transactions(metadata={"order_id": "A-1042"})`` finds an
        order's transactions.
        """
        return await self.send(
            op.transactions(
                user_id=user_id,
                asset_code=asset_code,
                transaction_type=transaction_type,
                metadata=metadata,
                limit=limit,
                cursor=cursor,
            )
        )

    async def iter_transactions(
        self,
        *,
        user_id: str | None = None,
        asset_code: str | None = None,
        transaction_type: AnyTransactionType | None = None,
        metadata: MetadataInput | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Transaction]:
        """Every transaction matching the filters, newest first, a page at a time as you
        iterate.
        """
        cursor: str | None = None
        while True:
            page = await self.transactions(
                user_id=user_id,
                asset_code=asset_code,
                transaction_type=transaction_type,
                metadata=metadata,
                limit=page_size,
                cursor=cursor,
            )
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_hold(self, hold_id: str) -> Hold:
        """One hold."""
        return await self.send(op.get_hold(hold_id))

    async def list_holds(
        self,
        user_id: str,
        *,
        status: HoldStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> HoldPage:
        """One page of a user's holds, newest first, optionally of one status."""
        return await self.send(op.list_holds(user_id, status=status, limit=limit, cursor=cursor))

    async def events_page(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        types: Sequence[EventType] | None = None,
        wait_s: float | None = None,
    ) -> EventPage:
        """One page of the feed: the events after position ``after``, oldest first, at most
        ``limit`` (1 to 1,000; default 100), only of ``types`` if given. With ``wait_s`` (at most
        30) an empty page is held until an event arrives. Read on with
        ``after=page.next_after``; :class:`EventsPruned` when retention no longer keeps the events
        after ``after``.
        """
        return await self.send(op.events(after, limit=limit, types=types, wait_s=wait_s))

    async def events(
        self,
        after: int = 0,
        *,
        types: Sequence[EventType] | None = None,
        wait_s: float = EVENTS_WAIT_S_DEFAULT,
        page_size: int | None = None,
    ) -> AsyncIterator[Event]:
        """Every event after position ``after``, oldest first, following the feed as it grows:
        each request waits up to ``wait_s`` for the next event, then the next request reads on,
        without end. With ``wait_s=0`` it stops once it has caught up. To resume after an error
        or a restart, pass the ``position`` of the last event handled as ``after``.
        """
        while True:
            page = await self.events_page(after, limit=page_size, types=types, wait_s=wait_s)
            for event in page.items:
                yield event
            if not page.items and not wait_s:
                return
            after = page.next_after

    # Writes: each takes an optional idempotency_key (without one a uuid4 is used), and those
    # that create a transaction or a hold an optional metadata, the caller's references.

    async def topup(
        self,
        user_id: str,
        asset_code: str,
        amount: AmountInput,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
        idempotency_key: str | None = None,
        expires_at: datetime | None = None,
    ) -> Transaction:
        """Credit a user from the treasury (bought credits); creates the user if new.
        With ``expires_at`` (timezone-aware), what is left of it expires then."""
        return await self.send(
            op.post_transaction(
                "topup",
                user_id=user_id,
                asset_code=asset_code,
                amount=amount,
                description=description,
                metadata=metadata,
                idempotency_key=idempotency_key,
                expires_at=expires_at,
            )
        )

    async def bonus(
        self,
        user_id: str,
        asset_code: str,
        amount: AmountInput,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
        idempotency_key: str | None = None,
        expires_at: datetime | None = None,
    ) -> Transaction:
        """Credit a user from the treasury (a gift); creates the user if new.
        With ``expires_at`` (timezone-aware), what is left of it expires then."""
        return await self.send(
            op.post_transaction(
                "bonus",
                user_id=user_id,
                asset_code=asset_code,
                amount=amount,
                description=description,
                metadata=metadata,
                idempotency_key=idempotency_key,
                expires_at=expires_at,
            )
        )

    async def purchase(
        self,
        user_id: str,
        asset_code: str,
        amount: AmountInput,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
        idempotency_key: str | None = None,
    ) -> Transaction:
        """Debit a user to the treasury; :class:`InsufficientFunds` if they have too little."""
        return await self.send(
            op.post_transaction(
                "purchase",
                user_id=user_id,
                asset_code=asset_code,
                amount=amount,
                description=description,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )

    async def refund(
        self,
        refund_of: str,
        amount: AmountInput | None = None,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
        idempotency_key: str | None = None,
    ) -> Transaction:
        """Reverse all (``amount`` None: whatever is not refunded yet) or part of a transaction.
        The refund carries its own ``metadata``, not the original's.
        """
        return await self.send(
            op.post_transaction(
                "refund",
                amount=amount,
                description=description,
                refund_of=refund_of,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )

    async def batch(
        self, items: Sequence[BatchItem], *, idempotency_key: str | None = None
    ) -> Batch:
        """Apply several transactions in order, all or none (:class:`BatchFailed` names the
        failing item's index in ``errors``).
        """
        return await self.send(op.batch(items, idempotency_key))

    async def place_hold(
        self,
        user_id: str,
        asset_code: str,
        amount: AmountInput,
        *,
        expires_in_s: int | None = None,
        description: str | None = None,
        metadata: MetadataInput | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        """Set a user's funds aside until captured, released, or expired (default 600 s); the
        transactions the hold makes carry its ``metadata``.
        """
        return await self.send(
            op.place_hold(
                user_id,
                asset_code,
                amount,
                expires_in_s=expires_in_s,
                description=description,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        )

    async def capture_hold(
        self, hold_id: str, amount: AmountInput | None = None, *, idempotency_key: str | None = None
    ) -> Hold:
        """Capture all of a hold, or ``amount`` of it (the rest goes back to the user)."""
        return await self.send(op.capture_hold(hold_id, amount, idempotency_key))

    async def release_hold(self, hold_id: str, *, idempotency_key: str | None = None) -> Hold:
        """Release all of a hold back to the user."""
        return await self.send(op.release_hold(hold_id, idempotency_key))

    # Administration (scope admin).

    async def asset_supply(self, asset_code: str) -> AssetSupply:
        """Where an asset's supply is: treasury, users' balances, pending holds."""
        return await self.send(op.asset_supply(asset_code))

    async def add_asset(
        self,
        code: str,
        name: str,
        scale: int,
        supply: AmountInput,
        *,
        idempotency_key: str | None = None,
        expires_after_days: int | None = None,
    ) -> Asset:
        """Add an asset with its treasury holding ``supply``; with ``expires_after_days``, its
        top-ups and bonuses expire that many days after they are made."""
        return await self.send(
            op.add_asset(code, name, scale, supply, idempotency_key, expires_after_days)
        )

    async def set_asset_expiry(self, code: str, expires_after_days: int | None) -> Asset:
        """Change how many days an asset's top-ups and bonuses last (None: they never expire),
        for the credits made from now on; lots made before keep their expiry."""
        return await self.send(op.set_asset_expiry(code, expires_after_days))

    async def verify(self) -> VerifyReport:
        """Recompute every balance from entries and check every transaction sums to zero."""
        return await self.send(op.verify())

    async def metrics(self) -> str:
        """The Prometheus exposition text."""
        return await self.send(op.metrics())
