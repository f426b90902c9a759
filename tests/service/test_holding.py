"""Hold commands applied to a Book, called directly: placing sets the funds aside in the holds
account, and capture, release and expiry settle the hold with the transactions that move them.
No database: a Book is the in-memory view that posting.open_book fills from one.
"""

from __future__ import annotations

import pytest

from wallet.domain.errors import HoldExpired, HoldNotFound, InsufficientFunds, UserNotFound
from wallet.domain.holds import HoldAction, HoldStatus
from wallet.domain.ledger import HOLDS, TREASURY, AccountRef, PostedEntry
from wallet.service.book import Book
from wallet.service.commands import HoldCommand
from wallet.service.holding import apply_hold, hold_accounts

SCALE = 2
NOW_US = 1_700_000_000_000_000
ALICE = AccountRef.user("alice", "GC")
HOLDS_GC = AccountRef.system(HOLDS, "GC")
TREASURY_GC = AccountRef.system(TREASURY, "GC")


def book(alice_minor: int = 10_000) -> Book:
    return Book(
        balances={ALICE: alice_minor, HOLDS_GC: 0, TREASURY_GC: 1_000_000},
        known_users={"alice"},
        originals={},
        refunded={},
        account_ids={ALICE: 1, HOLDS_GC: 2, TREASURY_GC: 3},
        opened=set(),
    )


def place(
    user_id: str = "alice", amount_minor: int = 2_500, key: str | None = "k-place"
) -> HoldCommand:
    return HoldCommand(
        HoldAction.PLACE,
        user_id,
        "GC",
        amount_minor=amount_minor,
        expires_in_s=600,
        description="Order 7f3a",
        idempotency_key=key,
    )


def settle(action: HoldAction, hold_id: str, amount_minor: int | None = None) -> HoldCommand:
    return HoldCommand(
        action, "alice", "GC", amount_minor=amount_minor, hold_id=hold_id, idempotency_key="k-2"
    )


def test_a_hold_moves_through_the_user_its_holds_account_and_the_treasury() -> None:
    assert hold_accounts("alice", "GC") == (ALICE, HOLDS_GC, TREASURY_GC)


def test_placing_sets_the_funds_aside_until_the_expiry() -> None:
    ledger = book()

    hold, transaction_id = apply_hold(ledger, place(), SCALE, NOW_US)

    assert (hold.status, hold.amount_minor, hold.user_id) == (HoldStatus.PENDING, 2_500, "alice")
    assert (hold.created_at_us, hold.expires_at_us) == (NOW_US, NOW_US + 600_000_000)
    assert (hold.description, hold.idempotency_key) == ("Order 7f3a", "k-place")
    assert ledger.balances[ALICE] == 7_500
    assert ledger.balances[HOLDS_GC] == 2_500
    [placing] = ledger.posted
    assert (placing.id, placing.transaction_type, placing.idempotency_key) == (
        transaction_id,
        "hold",
        "k-place",
    )
    assert hold.hold_transaction_id == transaction_id
    assert ledger.holds == {hold.id: hold}
    assert ledger.placed == [hold]


def test_a_hold_is_refused_to_an_unknown_user_and_beyond_the_balance() -> None:
    ledger = book(alice_minor=2_499)

    with pytest.raises(UserNotFound):
        apply_hold(ledger, place(user_id="ghost"), SCALE, NOW_US)
    with pytest.raises(InsufficientFunds, match=r"alice has 24\.99 GC, 25\.00 needed"):
        apply_hold(ledger, place(), SCALE, NOW_US)

    assert ledger.balances == book(alice_minor=2_499).balances
    assert (ledger.posted, ledger.holds, ledger.placed) == ([], {}, [])


def test_a_partial_capture_pays_the_treasury_and_releases_the_rest() -> None:
    ledger = book()
    hold, _ = apply_hold(ledger, place(), SCALE, NOW_US)

    settled, transaction_id = apply_hold(
        ledger, settle(HoldAction.CAPTURE, hold.id, 1_000), SCALE, NOW_US + 1
    )

    capture, release = ledger.posted[1:]
    assert (settled.status, settled.captured_minor) == (HoldStatus.CAPTURED, 1_000)
    assert (settled.capture_transaction_id, settled.release_transaction_id) == (
        capture.id,
        release.id,
    )
    assert transaction_id == capture.id
    assert capture.entries == (
        PostedEntry("system", "holds", -1_000, 2_500, 1_500),
        PostedEntry("system", "treasury", 1_000, 1_000_000, 1_001_000),
    )
    assert release.entries == (
        PostedEntry("system", "holds", -1_500, 1_500, 0),
        PostedEntry("user", "alice", 1_500, 7_500, 9_000),
    )
    # The capture answers for the key; the release that comes with it carries none, so that one
    # key names one transaction.
    assert (capture.idempotency_key, release.idempotency_key) == ("k-2", None)
    assert (capture.transaction_type, release.transaction_type) == ("capture", "release")
    assert ledger.holds[hold.id] == settled
    assert ledger.settled == [hold.id]


def test_a_release_gives_it_all_back_and_carries_the_key() -> None:
    ledger = book()
    hold, _ = apply_hold(ledger, place(), SCALE, NOW_US)

    settled, transaction_id = apply_hold(ledger, settle(HoldAction.RELEASE, hold.id), SCALE, NOW_US)

    [release] = ledger.posted[1:]
    assert settled.status is HoldStatus.RELEASED
    assert (settled.release_transaction_id, settled.capture_transaction_id) == (release.id, None)
    assert (transaction_id, release.idempotency_key) == (release.id, "k-2")
    assert ledger.balances == {ALICE: 10_000, HOLDS_GC: 0, TREASURY_GC: 1_000_000}


def test_the_expiry_releases_the_hold_once_it_is_due() -> None:
    ledger = book()
    hold, _ = apply_hold(ledger, place(), SCALE, NOW_US)

    with pytest.raises(HoldExpired):
        apply_hold(ledger, settle(HoldAction.CAPTURE, hold.id), SCALE, hold.expires_at_us)
    settled, _ = apply_hold(ledger, settle(HoldAction.EXPIRE, hold.id), SCALE, hold.expires_at_us)

    assert settled.status is HoldStatus.EXPIRED
    assert ledger.balances == {ALICE: 10_000, HOLDS_GC: 0, TREASURY_GC: 1_000_000}
    assert [t.transaction_type for t in ledger.posted] == ["hold", "release"]


def test_settling_an_unknown_hold_is_hold_not_found() -> None:
    with pytest.raises(HoldNotFound, match="no hold with id 'h-missing'"):
        apply_hold(book(), settle(HoldAction.RELEASE, "h-missing"), SCALE, NOW_US)
