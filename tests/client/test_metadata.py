"""Metadata, the caller's references, through the client against the real service: given on every
write that creates a transaction or a hold, read back on every result, and the transactions found
by it across users, a page at a time, with both clients.

The service is shared by every client test, so each test's references carry a value of its own
(``reference``) and a search finds only that test's transactions.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import get_args

import pytest

from tests.client.conftest import FAST_RETRY
from tests.support.server import ServerProcess
from wallet.client import (
    AsyncWalletClient,
    BatchItem,
    UserNotFound,
    ValidationError,
    WalletClient,
)
from wallet.client import operations as op
from wallet.client.models import AnyTransactionType
from wallet.domain.ledger import TransactionType


@pytest.fixture
def reference() -> str:
    """An order id no other test uses."""
    return f"A-{uuid.uuid4().hex[:12]}"


def test_metadata_round_trips_on_every_kind_of_transaction(
    wallet: WalletClient, user_id: str, reference: str
) -> None:
    topup = wallet.topup(user_id, "GC", "100.00", metadata={"order_id": reference})
    bonus = wallet.bonus(user_id, "GC", "5.00", metadata={"campaign": "winter", "n": "1"})
    purchase = wallet.purchase(user_id, "GC", "30.00", "Sword", metadata={"sku": "sword-7"})
    refund = wallet.refund(purchase.id, "10.00", metadata={"ticket": "48213"})
    plain = wallet.topup(user_id, "GC", "1.00")

    assert topup.metadata == {"order_id": reference}
    assert bonus.metadata == {"campaign": "winter", "n": "1"}
    assert purchase.metadata == {"sku": "sword-7"}
    # A refund carries its own references, not the original's.
    assert refund.metadata == {"ticket": "48213"}
    assert plain.metadata == {}
    for posted in (topup, bonus, purchase, refund, plain):
        assert wallet.get_transaction(posted.id).metadata == posted.metadata
    assert [t.metadata for t in wallet.history(user_id).items] == [
        {},
        {"ticket": "48213"},
        {"sku": "sword-7"},
        {"campaign": "winter", "n": "1"},
        {"order_id": reference},
    ]


def test_metadata_round_trips_on_each_batch_item(
    wallet: WalletClient, user_id: str, reference: str
) -> None:
    topup = wallet.topup(user_id, "GC", "50.00")

    batch = wallet.batch(
        [
            BatchItem.topup(user_id, "GC", "10.00", metadata={"order_id": reference}),
            BatchItem.bonus(user_id, "GC", "2.00", metadata={"campaign": "winter"}),
            BatchItem.purchase(user_id, "GC", "3.00", "Shield", metadata={"sku": "shield-2"}),
            BatchItem.refund(topup.id, "4.00", metadata={"ticket": "7"}),
            BatchItem.bonus(user_id, "LP", "1.00"),
        ]
    )

    assert [t.metadata for t in batch.transactions] == [
        {"order_id": reference},
        {"campaign": "winter"},
        {"sku": "shield-2"},
        {"ticket": "7"},
        {},
    ]
    assert wallet.get_transaction(batch.transactions[2].id).metadata == {"sku": "shield-2"}


def test_a_hold_and_the_transactions_it_makes_carry_its_metadata(
    wallet: WalletClient, user_id: str, reference: str
) -> None:
    wallet.topup(user_id, "GC", "100.00")

    hold = wallet.place_hold(user_id, "GC", "25.00", metadata={"order_id": reference})
    plain = wallet.place_hold(user_id, "GC", "1.00")
    captured = wallet.capture_hold(hold.id, "20.00")

    assert hold.metadata == {"order_id": reference}
    assert plain.metadata == {}
    assert wallet.get_hold(hold.id).metadata == {"order_id": reference}
    assert captured.metadata == {"order_id": reference}
    assert [wallet.get_transaction(t).metadata for t in captured.transactions] == [
        {"order_id": reference}
    ] * 3
    found = wallet.transactions(metadata={"order_id": reference}, transaction_type="capture")
    assert [(t.transaction_type, t.amount) for t in found.items] == [("capture", Decimal("20.00"))]


def test_metadata_is_sent_only_when_given() -> None:
    plain = op.post_transaction("topup", user_id="u", asset_code="GC", amount="1.00")
    hold = op.place_hold("u", "GC", "1.00")
    batch = op.batch([BatchItem.bonus("u", "GC", "1.00")])
    given = op.post_transaction(
        "topup", user_id="u", asset_code="GC", amount="1.00", metadata={"order_id": "A-1"}
    )

    assert plain.body is not None
    assert "metadata" not in plain.body
    assert hold.body is not None
    assert "metadata" not in hold.body
    assert batch.body is not None
    assert "metadata" not in batch.body["transactions"][0]
    assert given.body is not None
    assert given.body["metadata"] == {"order_id": "A-1"}


def test_find_an_orders_transactions_across_users(wallet: WalletClient, reference: str) -> None:
    buyer, seller = f"buyer-{reference}", f"seller-{reference}"
    wallet.topup(buyer, "GC", "100.00", metadata={"order_id": f"{reference}-other"})
    paid = wallet.purchase(buyer, "GC", "40.00", metadata={"order_id": reference, "leg": "pay"})
    earned = wallet.bonus(seller, "GC", "40.00", metadata={"order_id": reference, "leg": "earn"})
    wallet.bonus(seller, "LP", "1.00", metadata={"leg": "pay"})

    found = wallet.transactions(metadata={"order_id": reference})
    both = wallet.transactions(metadata={"order_id": reference, "leg": "pay"})
    of_seller = wallet.transactions(user_id=seller, metadata={"order_id": reference})
    in_lp = wallet.transactions(asset_code="LP", metadata={"order_id": reference})
    history = wallet.history(buyer, metadata={"order_id": reference})

    assert [(t.id, t.user_id) for t in found.items] == [(earned.id, seller), (paid.id, buyer)]
    assert found.next_cursor is None
    assert found.items[1].metadata == {"order_id": reference, "leg": "pay"}
    assert [t.id for t in both.items] == [paid.id]
    assert [t.id for t in of_seller.items] == [earned.id]
    assert in_lp.items == ()
    assert [t.id for t in history.items] == [paid.id]


def test_transactions_page_by_page_and_all_at_once(
    wallet: WalletClient, user_id: str, reference: str
) -> None:
    posted = [
        wallet.topup(f"{user_id}-{n}", "GC", f"{n}.00", metadata={"order_id": reference})
        for n in range(1, 6)
    ]
    newest_first = [t.id for t in reversed(posted)]

    first = wallet.transactions(metadata={"order_id": reference}, limit=2)
    assert first.next_cursor is not None
    second = wallet.transactions(
        metadata={"order_id": reference}, limit=2, cursor=first.next_cursor
    )
    every = list(wallet.iter_transactions(metadata={"order_id": reference}, page_size=2))
    one_user = list(wallet.iter_history(f"{user_id}-3", metadata={"order_id": reference}))

    assert [t.id for t in first.items] == newest_first[:2]
    assert [t.id for t in second.items] == newest_first[2:4]
    assert [t.id for t in every] == newest_first
    assert [t.amount for t in every] == [Decimal(f"{n}.00") for n in range(5, 0, -1)]
    assert [t.id for t in one_user] == [posted[2].id]


def test_bad_metadata_is_the_clients_validation_error(wallet: WalletClient, user_id: str) -> None:
    with pytest.raises(ValidationError) as on_write:
        wallet.topup(user_id, "GC", "1.00", metadata={"order id": "A-1"})
    with pytest.raises(ValidationError):
        wallet.place_hold(user_id, "GC", "1.00", metadata={"note": "x" * 501})
    with pytest.raises(ValidationError) as on_search:
        wallet.transactions(metadata={f"k{n}": "v" for n in range(4)})

    assert on_write.value.status == 422
    assert on_write.value.code == "validation_error"
    assert "metadata" in on_write.value.detail
    assert on_search.value.status == 422
    assert "at most 3 metadata filters" in on_search.value.detail
    # The refused writes left nothing behind: the user was never credited.
    with pytest.raises(UserNotFound):
        wallet.balances(user_id)


def test_the_async_client_finds_and_pages_by_reference(
    wallet_server: ServerProcess, user_id: str, reference: str
) -> None:
    async def scenario() -> None:
        async with AsyncWalletClient(wallet_server.url, retry=FAST_RETRY) as wallet:
            topup = await wallet.topup(user_id, "GC", "9.00", metadata={"order_id": reference})
            purchase = await wallet.purchase(
                user_id, "GC", "3.00", metadata={"order_id": reference}
            )
            refund = await wallet.refund(purchase.id, metadata={"order_id": reference})
            hold = await wallet.place_hold(user_id, "GC", "1.00", metadata={"order_id": reference})
            batch = await wallet.batch(
                [BatchItem.bonus(user_id, "LP", "2.00", metadata={"n": "1"})]
            )

            page = await wallet.transactions(metadata={"order_id": reference}, limit=3)
            every = [
                t
                async for t in wallet.iter_transactions(
                    metadata={"order_id": reference}, page_size=3
                )
            ]
            history = await wallet.history(user_id, metadata={"order_id": reference}, limit=2)
            in_history = [
                t
                async for t in wallet.iter_history(
                    user_id, metadata={"order_id": reference}, page_size=2
                )
            ]

            assert hold.metadata == {"order_id": reference}
            assert batch.transactions[0].metadata == {"n": "1"}
            assert len(page.items) == 3
            assert page.next_cursor is not None
            assert [t.transaction_type for t in every] == ["hold", "refund", "purchase", "topup"]
            assert every[0].id in hold.transactions
            assert [t.id for t in every[1:]] == [refund.id, purchase.id, topup.id]
            assert [t.id for t in in_history] == [t.id for t in every]
            assert [t.id for t in history.items] == [t.id for t in every[:2]]

    asyncio.run(scenario())


def test_the_kinds_to_search_by_are_the_domains() -> None:
    assert list(get_args(AnyTransactionType)) == [kind.value for kind in TransactionType]
