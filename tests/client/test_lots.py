"""Credits that expire through the client, blocking and asyncio, against the real service on
both backends: an asset's policy (added with one, changed), a balance's ``expiring``, a user's
lots a page at a time, the supply's ``expired``.

The server is shared by the client tests: each test adds an asset of its own, so that changing
its policy touches no other test's credits.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.client.conftest import FAST_RETRY
from tests.support.server import ServerProcess
from wallet.client import (
    Asset,
    AssetNotFound,
    AsyncWalletClient,
    BatchItem,
    Expiring,
    UserNotFound,
    ValidationError,
    WalletClient,
)


def new_code() -> str:
    """An asset code of this test alone (two to ten capital letters), from a fresh UUID."""
    return "".join(chr(ord("A") + int(digit, 16)) for digit in uuid.uuid4().hex[:10])


def test_an_asset_with_a_policy_makes_lots_the_client_reads(
    wallet: WalletClient, user_id: str
) -> None:
    code = new_code()
    asset = wallet.add_asset(code, "Season points", 2, "1000000", expires_after_days=30)
    assert asset == Asset(code, "Season points", 2, 30)
    assert asset in wallet.assets()
    before = datetime.now(UTC)
    made = [wallet.topup(user_id, code, amount) for amount in ("1.00", "2.00", "3.00", "4.00")]
    wallet.purchase(user_id, code, "1.50")  # all of the first lot and 0.50 of the second

    balance = wallet.balance(user_id, code)
    assert balance.balance == Decimal("8.50")
    assert [e.amount for e in balance.expiring or ()] == [
        Decimal("1.50"),
        Decimal("3.00"),
        Decimal("4.00"),
    ]
    assert all(isinstance(e, Expiring) for e in balance.expiring or ())
    lots = list(wallet.lots(user_id, code, page_size=2))
    assert [lot.transaction_id for lot in lots] == [t.id for t in made[1:]]
    assert [(lot.amount, lot.remaining) for lot in lots] == [
        (Decimal("2.00"), Decimal("1.50")),
        (Decimal("3.00"), Decimal("3.00")),
        (Decimal("4.00"), Decimal("4.00")),
    ]
    for lot, transaction in zip(lots, made[1:], strict=True):
        assert lot.expires_at == transaction.created_at + timedelta(days=30)
        assert lot.expires_at > before + timedelta(days=29)
    first = wallet.lots_page(user_id, code, limit=2)
    assert (len(first.items), first.next_cursor is not None) == (2, True)
    rest = wallet.lots_page(user_id, code, limit=2, cursor=first.next_cursor)
    assert (rest.items, rest.next_cursor) == ((lots[2],), None)

    past = wallet.balance(user_id, code, as_of=datetime.now(UTC))
    assert (past.held, past.expiring) == (None, None)
    every = {b.asset_code: b for b in wallet.balances(user_id)}
    assert every[code].expiring == balance.expiring
    assert wallet.balance(user_id, code).expiring == balance.expiring
    supply = wallet.asset_supply(code)
    assert (supply.expired, supply.adds_up) == (Decimal("0.00"), True)


def test_a_policy_changed_through_the_client_applies_to_later_credits(
    wallet: WalletClient, user_id: str
) -> None:
    code = new_code()
    assert wallet.add_asset(code, "Tokens", 0, "1000").expires_after_days is None
    wallet.topup(user_id, code, 5)
    assert list(wallet.lots(user_id, code)) == []
    assert wallet.set_asset_expiry(code, 7) == Asset(code, "Tokens", 0, 7)
    lot_credit = wallet.bonus(user_id, code, 3)
    assert wallet.set_asset_expiry(code, None).expires_after_days is None
    wallet.topup(user_id, code, 2)

    [lot] = wallet.lots(user_id, code)
    assert (lot.transaction_id, lot.amount) == (lot_credit.id, Decimal(3))
    assert lot.expires_at == lot_credit.created_at + timedelta(days=7)
    assert wallet.balance(user_id, code).balance == Decimal(10)


def test_lot_and_policy_refusals(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "GC", "1.00")
    with pytest.raises(AssetNotFound):
        wallet.set_asset_expiry("ZZZZZZ", 5)
    with pytest.raises(ValidationError):
        wallet.set_asset_expiry("GC", 0)
    with pytest.raises(UserNotFound):
        list(wallet.lots(f"{user_id}-never", "GC"))
    with pytest.raises(AssetNotFound):
        wallet.lots_page(user_id, "ZZZZZZ")
    with pytest.raises(ValidationError):
        wallet.lots_page(user_id, "GC", cursor="not-ours")
    assert wallet.balance(user_id, "GC").expiring == ()


def test_async_lots_and_policy(wallet_server: ServerProcess, user_id: str) -> None:
    async def scenario() -> None:
        async with AsyncWalletClient(wallet_server.url, retry=FAST_RETRY) as wallet:
            code = new_code()
            await wallet.add_asset(code, "Season points", 0, "1000", expires_after_days=10)
            credits = [await wallet.topup(user_id, code, n) for n in (1, 2, 3)]
            lots = [lot async for lot in wallet.lots(user_id, code, page_size=1)]
            balance = await wallet.balance(user_id, code)
            changed = await wallet.set_asset_expiry(code, 20)
            page = await wallet.lots_page(user_id, code, limit=5)

            assert [lot.transaction_id for lot in lots] == [c.id for c in credits]
            assert [e.amount for e in balance.expiring or ()] == [1, 2, 3]
            assert changed.expires_after_days == 20
            assert page.items == tuple(lots)
            assert page.next_cursor is None
            assert (await wallet.asset_supply(code)).expired == Decimal(0)

    asyncio.run(scenario())


def test_a_credit_with_its_own_expiry_is_a_lot_of_any_asset(
    wallet: WalletClient, user_id: str
) -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    later = soon + timedelta(days=2)
    topup = wallet.topup(user_id, "GC", "4.00", expires_at=later)
    bonus = wallet.bonus(user_id, "GC", "1.00", expires_at=soon)
    batch = wallet.batch([BatchItem.bonus(user_id, "GC", "2.00", expires_at=soon + timedelta(1))])
    wallet.topup(user_id, "GC", "10.00")  # no expiry: no lot

    lots = list(wallet.lots(user_id, "GC"))
    assert [(lot.transaction_id, lot.expires_at) for lot in lots] == [
        (bonus.id, soon),
        (batch.transactions[0].id, soon + timedelta(days=1)),
        (topup.id, later),
    ]
    assert wallet.balance(user_id, "GC").balance == Decimal("17.00")
    with pytest.raises(ValueError, match="timezone-aware"):
        wallet.topup(user_id, "GC", "1.00", expires_at=datetime(2030, 1, 1))
    with pytest.raises(ValidationError):
        wallet.topup(user_id, "GC", "1.00", expires_at=datetime.now(UTC) - timedelta(days=1))
