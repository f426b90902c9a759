"""The asyncio client: the same protocol, awaited; checked on the paths that differ in transport
(sending, sleeping between retries, the async iterator, closing).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.client.conftest import FAST_RETRY
from tests.client.proxy import DROP, SILENT, Canned, Proxy, problem
from tests.support.server import ServerProcess
from wallet.client import (
    AsyncWalletClient,
    BatchItem,
    InsufficientFunds,
    WalletConnectionError,
)


def test_async_happy_path(wallet_server: ServerProcess, user_id: str) -> None:
    async def scenario() -> None:
        async with AsyncWalletClient(wallet_server.url, retry=FAST_RETRY) as wallet:
            topups = await asyncio.gather(
                *(wallet.topup(user_id, "GC", f"{n}.25") for n in range(1, 4))
            )
            purchase = await wallet.purchase(user_id, "GC", Decimal("0.75"))
            hold = await wallet.place_hold(user_id, "GC", "1.00")
            await wallet.release_hold(hold.id)
            batch = await wallet.batch([BatchItem.bonus(user_id, "LP", "2.50")])
            history = [t async for t in wallet.iter_history(user_id, page_size=2)]
            balance = await wallet.balance(user_id, "GC")

            assert sorted(t.amount for t in topups) == [
                Decimal("1.25"),
                Decimal("2.25"),
                Decimal("3.25"),
            ]
            assert purchase.balance_after == Decimal("6.00")
            assert batch.transactions[0].amount == Decimal("2.50")
            assert len(history) == 7  # three top-ups, a purchase, hold, release, bonus
            assert (balance.balance, balance.held) == (Decimal("6.00"), Decimal("0.00"))
            assert await wallet.get_transaction(purchase.id) == purchase
            assert "GC" in {asset.code for asset in await wallet.assets()}

    asyncio.run(scenario())


def test_async_errors_are_the_same_classes(wallet_server: ServerProcess, user_id: str) -> None:
    async def scenario() -> None:
        async with AsyncWalletClient(wallet_server.url, retry=FAST_RETRY) as wallet:
            await wallet.topup(user_id, "GC", "1.00")
            with pytest.raises(InsufficientFunds) as caught:
                await wallet.purchase(user_id, "GC", "1.01")
            assert caught.value.status == 422

    asyncio.run(scenario())


def test_async_retries_a_lost_response_and_a_503(
    wallet_server: ServerProcess, user_id: str
) -> None:
    async def scenario(url: str) -> None:
        async with AsyncWalletClient(url, retry=FAST_RETRY) as wallet:
            topup = await wallet.topup(user_id, "GC", "9.99")
            assert topup.replayed is True
            assert (await wallet.balance(user_id, "GC")).balance == Decimal("9.99")

    plan: list[str | Canned] = [problem(503, "unavailable"), DROP]
    with Proxy(wallet_server.port, plan) as proxy:
        asyncio.run(scenario(proxy.url))

    assert len(proxy.requests) == 4  # 503, dropped, replay, then the balance
    assert len(set(proxy.keys()[:3])) == 1


def test_async_read_timeout(wallet_server: ServerProcess) -> None:
    async def scenario(url: str) -> None:
        async with AsyncWalletClient(url, read_timeout_s=0.2, retry=FAST_RETRY) as wallet:
            with pytest.raises(WalletConnectionError):
                await wallet.assets()

    with Proxy(wallet_server.port, [SILENT]) as proxy:
        asyncio.run(scenario(proxy.url))

    assert len(proxy.requests) == 1
