"""The unit of work's Book, called directly: recording a transfer moves its balances and keeps the
transaction to write, a refusal changes nothing, and a batch's mark puts it all back.
No database: a Book is the in-memory view that posting.open_book fills from one.
"""

from __future__ import annotations

import pytest

from wallet.domain.errors import InsufficientFunds, UserNotFound
from wallet.domain.ledger import TREASURY, AccountRef, PostedEntry, TransactionType, Transfer
from wallet.service.book import Book, check_user_known

SCALE = 2
NOW_US = 1_700_000_000_000_000
ALICE = AccountRef.user("alice", "GC")
TREASURY_GC = AccountRef.system(TREASURY, "GC")


def book(**balances: int) -> Book:
    """A Book over alice's GC account and the GC treasury, with ``balances`` by owner id."""
    return Book(
        balances={ALICE: balances.get("alice", 0), TREASURY_GC: balances.get("treasury", 0)},
        known_users={"alice"} if "alice" in balances else set(),
        originals={},
        refunded={},
        account_ids={ALICE: 1, TREASURY_GC: 2},
        opened=set(),
    )


def test_recording_a_transfer_moves_the_balances_and_keeps_the_transaction() -> None:
    ledger = book(alice=1_000, treasury=50_000)

    transaction = ledger.record(
        Transfer(ALICE, TREASURY_GC, 250),
        TransactionType.PURCHASE,
        "alice",
        SCALE,
        NOW_US,
        description="Sword",
        idempotency_key="k-1",
    )

    assert ledger.balances == {ALICE: 750, TREASURY_GC: 50_250}
    assert ledger.posted == [transaction]
    assert (transaction.transaction_type, transaction.user_id, transaction.asset_code) == (
        "purchase",
        "alice",
        "GC",
    )
    assert (transaction.amount_minor, transaction.created_at_us) == (250, NOW_US)
    assert (transaction.description, transaction.idempotency_key) == ("Sword", "k-1")
    assert transaction.refund_of is None
    assert transaction.entries == (
        PostedEntry("user", "alice", -250, 1_000, 750),
        PostedEntry("system", "treasury", 250, 50_000, 50_250),
    )
    assert transaction.user_balance_after == 750


def test_each_transaction_sees_the_ones_recorded_before_it() -> None:
    ledger = book(treasury=50_000)

    ledger.record(Transfer(TREASURY_GC, ALICE, 300), TransactionType.TOPUP, "alice", SCALE, NOW_US)
    spent = ledger.record(
        Transfer(ALICE, TREASURY_GC, 300), TransactionType.PURCHASE, "alice", SCALE, NOW_US
    )

    assert spent.entries[0] == PostedEntry("user", "alice", -300, 300, 0)
    assert ledger.balances[ALICE] == 0
    assert len({t.id for t in ledger.posted}) == 2


def test_a_credit_makes_its_user_known() -> None:
    ledger = book(treasury=50_000)
    with pytest.raises(UserNotFound):
        check_user_known(TransactionType.PURCHASE, "alice", ledger.known_users)

    ledger.record(Transfer(TREASURY_GC, ALICE, 1), TransactionType.BONUS, "alice", SCALE, NOW_US)

    check_user_known(TransactionType.PURCHASE, "alice", ledger.known_users)
    check_user_known(TransactionType.HOLD, "alice", ledger.known_users)


@pytest.mark.parametrize("kind", [TransactionType.PURCHASE, TransactionType.HOLD])
def test_a_user_never_credited_cannot_be_debited(kind: TransactionType) -> None:
    with pytest.raises(UserNotFound) as refused:
        check_user_known(kind, "ghost", {"alice"})
    assert refused.value.detail == "user ghost has never been credited"


@pytest.mark.parametrize("kind", [TransactionType.TOPUP, TransactionType.BONUS])
def test_a_credit_needs_no_known_user(kind: TransactionType) -> None:
    check_user_known(kind, "newcomer", set())


def test_a_refused_transfer_changes_nothing() -> None:
    ledger = book(alice=100, treasury=50_000)

    with pytest.raises(InsufficientFunds):
        ledger.record(
            Transfer(ALICE, TREASURY_GC, 101), TransactionType.PURCHASE, "alice", SCALE, NOW_US
        )

    assert ledger.balances == {ALICE: 100, TREASURY_GC: 50_000}
    assert ledger.posted == []


def test_restoring_a_mark_undoes_everything_recorded_since() -> None:
    ledger = book(alice=100, treasury=50_000)
    kept = ledger.record(
        Transfer(TREASURY_GC, ALICE, 10), TransactionType.TOPUP, "alice", SCALE, NOW_US
    )
    mark = ledger.mark()

    ledger.record(Transfer(TREASURY_GC, ALICE, 5), TransactionType.TOPUP, "bob", SCALE, NOW_US)
    ledger.refunded["t-original"] = 5
    ledger.restore(mark)

    assert ledger.balances == {ALICE: 110, TREASURY_GC: 49_990}
    assert ledger.posted == [kept]
    assert ledger.known_users == {"alice"}
    assert ledger.refunded == {}
