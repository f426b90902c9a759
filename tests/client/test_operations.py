"""Every operation of the client against the real service, amounts checked to the cent."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from wallet.client import Asset, BatchItem, WalletClient


def test_assets_are_the_seeded_three(wallet: WalletClient) -> None:
    assets = wallet.assets()
    assert {Asset("GC", "Gold Coins", 2), Asset("DI", "Diamonds", 2)} <= set(assets)
    assert "LP" in {asset.code for asset in assets}


def test_topup_answers_the_transaction_with_exact_amounts(
    wallet: WalletClient, user_id: str
) -> None:
    transaction = wallet.topup(user_id, "GC", Decimal("100.50"), "Bought 100.50 Gold Coins")

    assert transaction.transaction_type == "topup"
    assert transaction.status == "completed"
    assert (transaction.user_id, transaction.asset_code) == (user_id, "GC")
    assert transaction.amount == Decimal("100.50")
    assert str(transaction.amount) == "100.50"
    assert transaction.balance_after == Decimal("100.50")
    assert transaction.refunded_amount == Decimal("0.00")
    assert transaction.description == "Bought 100.50 Gold Coins"
    assert transaction.idempotency_key is not None
    assert transaction.replayed is False
    assert transaction.created_at.tzinfo is not None
    treasury_entry, user_entry = sorted(transaction.entries, key=lambda e: e.account_type)
    assert (treasury_entry.account_type, treasury_entry.account_id) == ("system", "treasury")
    assert treasury_entry.amount == Decimal("-100.50")
    assert (user_entry.account_type, user_entry.account_id) == ("user", user_id)
    assert user_entry.amount == Decimal("100.50")
    assert (user_entry.balance_before, user_entry.balance_after) == (
        Decimal("0.00"),
        Decimal("100.50"),
    )
    assert sum(entry.amount for entry in transaction.entries) == 0


def test_bonus_and_purchase_move_the_balance_to_the_cent(
    wallet: WalletClient, user_id: str
) -> None:
    wallet.topup(user_id, "GC", 100)
    wallet.bonus(user_id, "GC", "0.01")
    purchase = wallet.purchase(user_id, "GC", Decimal("25.25"), "Sword")

    assert purchase.amount == Decimal("25.25")
    assert purchase.balance_after == Decimal("74.76")
    assert wallet.balance(user_id, "GC").balance == Decimal("74.76")


def test_balances_lists_every_asset_with_held(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "DI", "10")

    balances = {balance.asset_code: balance for balance in wallet.balances(user_id)}

    assert balances["DI"].balance == Decimal("10.00")
    assert balances["DI"].held == Decimal("0.00")
    assert balances["GC"].balance == Decimal("0.00")
    assert all(balance.user_id == user_id for balance in balances.values())


def test_balance_as_of_a_past_instant(wallet: WalletClient, user_id: str) -> None:
    first = wallet.topup(user_id, "GC", "40.00")
    time.sleep(0.01)
    wallet.topup(user_id, "GC", "2.00")

    at_first = wallet.balance(user_id, "GC", as_of=first.created_at)
    before_any = wallet.balance(user_id, "GC", as_of=first.created_at - timedelta(seconds=1))

    assert at_first.balance == Decimal("40.00")
    assert at_first.as_of is not None
    assert at_first.held is None
    assert before_any.balance == Decimal("0.00")
    assert wallet.balance(user_id, "GC").balance == Decimal("42.00")


def test_refund_whole_and_in_part(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "GC", "100.00")
    purchase = wallet.purchase(user_id, "GC", "30.00")

    part = wallet.refund(purchase.id, Decimal("10.00"), "Late delivery")
    rest = wallet.refund(purchase.id)

    assert (part.transaction_type, part.refund_of, part.amount) == (
        "refund",
        purchase.id,
        Decimal("10.00"),
    )
    assert rest.amount == Decimal("20.00")
    assert rest.balance_after == Decimal("100.00")
    assert wallet.get_transaction(purchase.id).refunded_amount == Decimal("30.00")


def test_get_transaction_reads_back_what_was_posted(wallet: WalletClient, user_id: str) -> None:
    posted = wallet.topup(user_id, "LP", "7.70")

    assert wallet.get_transaction(posted.id) == posted


def test_history_pages_and_iterator(wallet: WalletClient, user_id: str) -> None:
    posted = [wallet.topup(user_id, "GC", f"{n}.00") for n in range(1, 6)]
    wallet.bonus(user_id, "DI", "1.00")

    first = wallet.history(user_id, limit=2, asset_code="GC")
    every = list(wallet.iter_history(user_id, page_size=2, asset_code="GC"))
    bonuses = wallet.history(user_id, transaction_type="bonus")

    assert [t.id for t in first.items] == [posted[4].id, posted[3].id]
    assert first.next_cursor is not None
    assert first.user_id == user_id
    assert [t.id for t in every] == [t.id for t in reversed(posted)]
    assert [t.amount for t in every] == [Decimal(f"{n}.00") for n in range(5, 0, -1)]
    assert [(t.asset_code, t.amount) for t in bonuses.items] == [("DI", Decimal("1.00"))]
    assert bonuses.next_cursor is None


def test_batch_applies_every_item_in_order(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "DI", "10.00")

    batch = wallet.batch(
        [
            BatchItem.purchase(user_id, "DI", "10.00", "Trade 10 Diamonds"),
            BatchItem.topup(user_id, "GC", Decimal("1000.00"), "for 1,000 Gold Coins"),
            BatchItem.bonus(user_id, "LP", 5),
        ]
    )

    assert [(t.transaction_type, t.amount) for t in batch.transactions] == [
        ("purchase", Decimal("10.00")),
        ("topup", Decimal("1000.00")),
        ("bonus", Decimal("5.00")),
    ]
    # Other tests on the shared server add assets of their own: this user holds none of them.
    balances = {b.asset_code: b.balance for b in wallet.balances(user_id) if b.balance}
    assert balances == {"GC": Decimal("1000.00"), "LP": Decimal("5.00")}


def test_batch_refund_item(wallet: WalletClient, user_id: str) -> None:
    topup = wallet.topup(user_id, "GC", "50.00")

    batch = wallet.batch([BatchItem.refund(topup.id, "20.00")])

    assert batch.transactions[0].refund_of == topup.id
    assert wallet.balance(user_id, "GC").balance == Decimal("30.00")


def test_holds_place_get_list_capture_release(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "GC", "100.00")

    kept = wallet.place_hold(user_id, "GC", "25.00", description="Order 7f3a", expires_in_s=900)
    dropped = wallet.place_hold(user_id, "GC", Decimal("5.50"))
    balance = wallet.balance(user_id, "GC")
    pending = wallet.list_holds(user_id, status="pending")

    assert (kept.status, kept.amount, kept.captured_amount) == (
        "pending",
        Decimal("25.00"),
        Decimal("0.00"),
    )
    assert kept.expires_at - kept.created_at == timedelta(seconds=900)
    assert (balance.balance, balance.held) == (Decimal("69.50"), Decimal("30.50"))
    assert [hold.id for hold in pending.items] == [dropped.id, kept.id]
    assert wallet.get_hold(kept.id) == kept

    captured = wallet.capture_hold(kept.id, Decimal("20.00"))
    released = wallet.release_hold(dropped.id)

    assert (captured.status, captured.captured_amount) == ("captured", Decimal("20.00"))
    assert len(captured.transactions) == 3
    assert released.status == "released"
    after = wallet.balance(user_id, "GC")
    assert (after.balance, after.held) == (Decimal("80.00"), Decimal("0.00"))
    assert wallet.list_holds(user_id, status="pending").items == ()


def test_a_callers_idempotency_key_replays(wallet: WalletClient, user_id: str) -> None:
    first = wallet.topup(user_id, "GC", "10.00", idempotency_key=f"order-{user_id}")
    again = wallet.topup(user_id, "GC", Decimal("10"), idempotency_key=f"order-{user_id}")

    assert first.idempotency_key == f"order-{user_id}"
    assert (again.id, again.replayed) == (first.id, True)
    assert wallet.balance(user_id, "GC").balance == Decimal("10.00")


def test_every_write_gets_its_own_automatic_key(wallet: WalletClient, user_id: str) -> None:
    first = wallet.topup(user_id, "GC", "1.00")
    second = wallet.topup(user_id, "GC", "1.00")

    assert first.idempotency_key != second.idempotency_key
    assert wallet.balance(user_id, "GC").balance == Decimal("2.00")


def test_admin_supply_add_asset_and_verify(wallet: WalletClient, user_id: str) -> None:
    # An asset code of this test alone (two to ten capital letters), from a fresh UUID.
    code = "".join(chr(ord("A") + int(digit, 16)) for digit in uuid.uuid4().hex[:10])

    asset = wallet.add_asset(code, "Test tokens", 3, Decimal("1000.000"))
    wallet.topup(user_id, code, Decimal("1.250"))
    supply = wallet.asset_supply(code)
    report = wallet.verify()

    assert asset == Asset(code, "Test tokens", 3)
    assert code in {a.code for a in wallet.assets()}
    assert (supply.supply, supply.treasury, supply.users, supply.pending_holds) == (
        Decimal("1000.000"),
        Decimal("998.750"),
        Decimal("1.250"),
        Decimal("0.000"),
    )
    assert supply.adds_up
    assert report.ok
    assert report.problems == ()


def test_metrics_is_prometheus_text_that_counts_writes(wallet: WalletClient, user_id: str) -> None:
    wallet.topup(user_id, "LP", Decimal("1.00"))

    text = wallet.metrics()

    assert "# TYPE wallet_transactions_total counter" in text
    counted = [
        line
        for line in text.splitlines()
        if line.startswith("wallet_transactions_total{")
        and 'transaction_type="topup"' in line
        and 'asset_code="LP"' in line
    ]
    assert len(counted) == 1, text
    assert float(counted[0].rsplit(" ", 1)[1]) >= 1


def test_a_float_amount_is_refused_before_sending(wallet: WalletClient, user_id: str) -> None:
    with pytest.raises(TypeError, match="float"):
        wallet.topup(user_id, "GC", 0.1)  # type: ignore[arg-type]


def test_a_naive_as_of_is_refused_before_sending(wallet: WalletClient, user_id: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        wallet.balance(user_id, "GC", as_of=datetime.now(UTC).replace(tzinfo=None))
