"""The hold state machine, called directly: which settlements a hold allows in each state and at
each instant around its expiry, and the transfers that settle it. Pure: no database, no HTTP.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.domain.errors import HoldExpired, HoldNotPending
from wallet.domain.holds import Hold, HoldAction, HoldStatus, place_transfer, settle
from wallet.domain.ledger import HOLDS, TREASURY, AccountRef, Transfer, post

SCALE = 2
PLACED_AT_US = 1_700_000_000_000_000
EXPIRES_AT_US = PLACED_AT_US + 600 * 1_000_000
BEFORE_EXPIRY_US = EXPIRES_AT_US - 1
ALICE = AccountRef.user("alice", "GC")
HOLDS_GC = AccountRef.system(HOLDS, "GC")
TREASURY_GC = AccountRef.system(TREASURY, "GC")
SETTLEMENTS = [HoldAction.CAPTURE, HoldAction.RELEASE, HoldAction.EXPIRE]


def pending(amount_minor: int = 2_500, status: HoldStatus = HoldStatus.PENDING) -> Hold:
    return Hold(
        id="h-1",
        user_id="alice",
        asset_code="GC",
        amount_minor=amount_minor,
        status=status,
        description="Order 7f3a",
        idempotency_key="k-1",
        expires_at_us=EXPIRES_AT_US,
        created_at_us=PLACED_AT_US,
        hold_transaction_id="t-hold",
    )


def test_placing_moves_the_amount_from_the_user_to_the_holds_account() -> None:
    assert place_transfer("alice", "GC", 2_500) == Transfer(ALICE, HOLDS_GC, 2_500)


def test_a_hold_names_its_accounts_and_transactions() -> None:
    hold = pending()
    assert (hold.user, hold.holds) == (ALICE, HOLDS_GC)
    assert hold.transaction_ids == ["t-hold"]
    settled = replace(hold, capture_transaction_id="t-capture", release_transaction_id="t-release")
    assert settled.transaction_ids == ["t-hold", "t-capture", "t-release"]


def test_a_full_capture_pays_the_treasury_and_releases_nothing() -> None:
    hold = pending()

    settled, capture, release = settle(hold, HoldAction.CAPTURE, None, BEFORE_EXPIRY_US, SCALE)

    assert (settled.status, settled.captured_minor) == (HoldStatus.CAPTURED, 2_500)
    assert settled.settled_at_us == BEFORE_EXPIRY_US
    assert capture == Transfer(HOLDS_GC, TREASURY_GC, 2_500)
    assert release is None
    assert hold.status is HoldStatus.PENDING, "the hold given is left as it was"


def test_a_partial_capture_gives_the_rest_back_to_the_user() -> None:
    settled, capture, release = settle(pending(), HoldAction.CAPTURE, 1_000, PLACED_AT_US, SCALE)

    assert (settled.status, settled.captured_minor) == (HoldStatus.CAPTURED, 1_000)
    assert capture == Transfer(HOLDS_GC, TREASURY_GC, 1_000)
    assert release == Transfer(HOLDS_GC, ALICE, 1_500)


@pytest.mark.parametrize("captured", [0, -1, 2_501])
def test_a_capture_takes_at_least_one_minor_unit_and_at_most_the_hold(captured: int) -> None:
    with pytest.raises(AssertionError, match=r"at most the 25\.00 held"):
        settle(pending(), HoldAction.CAPTURE, captured, PLACED_AT_US, SCALE)


def test_a_release_gives_everything_back_to_the_user() -> None:
    settled, capture, release = settle(pending(), HoldAction.RELEASE, None, PLACED_AT_US, SCALE)

    assert (settled.status, settled.captured_minor) == (HoldStatus.RELEASED, 0)
    assert capture is None
    assert release == Transfer(HOLDS_GC, ALICE, 2_500)


def test_placing_is_not_a_settlement() -> None:
    with pytest.raises(AssertionError, match="not a settlement"):
        settle(pending(), HoldAction.PLACE, None, PLACED_AT_US, SCALE)


# --- expiry: the instant ``expires_at`` belongs to the expired side -----------------------------


def test_a_hold_can_be_captured_until_the_microsecond_before_it_expires() -> None:
    settled, _, _ = settle(pending(), HoldAction.CAPTURE, None, BEFORE_EXPIRY_US, SCALE)
    assert settled.status is HoldStatus.CAPTURED

    with pytest.raises(HoldExpired) as refused:
        settle(pending(), HoldAction.CAPTURE, None, EXPIRES_AT_US, SCALE)
    assert refused.value.code == "hold_expired"
    assert refused.value.detail == "hold h-1 expired and can no longer be captured"


def test_the_sweeper_expires_a_hold_from_its_expiry_on_and_not_before() -> None:
    with pytest.raises(HoldNotPending, match="has not expired yet"):
        settle(pending(), HoldAction.EXPIRE, None, BEFORE_EXPIRY_US, SCALE)

    settled, capture, release = settle(pending(), HoldAction.EXPIRE, None, EXPIRES_AT_US, SCALE)

    assert (settled.status, settled.settled_at_us) == (HoldStatus.EXPIRED, EXPIRES_AT_US)
    assert capture is None
    assert release == Transfer(HOLDS_GC, ALICE, 2_500)


def test_a_pending_hold_past_its_expiry_may_still_be_released() -> None:
    settled, _, release = settle(pending(), HoldAction.RELEASE, None, EXPIRES_AT_US + 1, SCALE)

    assert settled.status is HoldStatus.RELEASED
    assert release == Transfer(HOLDS_GC, ALICE, 2_500)


# --- a hold leaves pending once, for good -------------------------------------------------------


@pytest.mark.parametrize("status", [HoldStatus.CAPTURED, HoldStatus.RELEASED])
@pytest.mark.parametrize("action", SETTLEMENTS)
def test_a_settled_hold_is_not_pending_for_any_settlement(
    status: HoldStatus, action: HoldAction
) -> None:
    with pytest.raises(HoldNotPending) as refused:
        settle(pending(status=status), action, None, BEFORE_EXPIRY_US, SCALE)
    assert refused.value.detail == f"hold h-1 is {status.value}, not pending"


def test_an_expired_hold_refuses_a_capture_as_expired_the_rest_as_not_pending() -> None:
    expired = pending(status=HoldStatus.EXPIRED)

    # The answer to a late capture must not depend on whether the sweeper came first.
    with pytest.raises(HoldExpired):
        settle(expired, HoldAction.CAPTURE, None, EXPIRES_AT_US, SCALE)
    for action in (HoldAction.RELEASE, HoldAction.EXPIRE):
        with pytest.raises(HoldNotPending, match="is expired, not pending"):
            settle(expired, action, None, EXPIRES_AT_US, SCALE)


# --- a property: a hold's life keeps the books --------------------------------------------------


@given(
    amount=st.integers(min_value=1, max_value=10**12),
    spare=st.integers(min_value=0, max_value=10**6),
    data=st.data(),
)
def test_a_hold_placed_and_settled_moves_exactly_its_amount(
    amount: int, spare: int, data: st.DataObject
) -> None:
    """Placed, then captured (any part), released or expired: the holds account is back to
    zero, the treasury got exactly what was captured and the user the rest."""
    action = data.draw(st.sampled_from(SETTLEMENTS))
    captured = data.draw(st.integers(min_value=1, max_value=amount))
    now_us = EXPIRES_AT_US if action is HoldAction.EXPIRE else PLACED_AT_US
    balances = {ALICE: amount + spare, TREASURY_GC: 0}

    def apply(transfer: Transfer | None) -> None:
        if transfer is not None:
            for entry in post(transfer, balances, SCALE):
                balances[entry.account] = entry.balance_after

    apply(place_transfer("alice", "GC", amount))
    assert balances == {ALICE: spare, TREASURY_GC: 0, HOLDS_GC: amount}
    wanted = captured if action is HoldAction.CAPTURE else None
    settled, capture, release = settle(pending(amount), action, wanted, now_us, SCALE)
    apply(capture)
    apply(release)

    taken = captured if action is HoldAction.CAPTURE else 0
    assert settled.captured_minor == taken
    assert balances == {ALICE: spare + amount - taken, TREASURY_GC: taken, HOLDS_GC: 0}
