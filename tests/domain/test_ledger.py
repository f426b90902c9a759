"""The ledger's rules, called directly: the entries a transfer makes, the refusals, the flows of
the API and the planning of refunds. Pure functions: no database, no HTTP.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.domain.errors import InsufficientFunds, NotRefundable, RefundExceedsOriginal
from wallet.domain.ledger import (
    HOLDS,
    ISSUANCE,
    TREASURY,
    AccountRef,
    Entry,
    OwnerType,
    PostedEntry,
    PostedTransaction,
    TransactionType,
    Transfer,
    plan_refund,
    post,
    refund_accounts,
    transfer_for,
)

SCALE = 2
ALICE = AccountRef.user("alice", "GC")
BOB = AccountRef.user("bob", "GC")
TREASURY_GC = AccountRef.system(TREASURY, "GC")
ISSUANCE_GC = AccountRef.system(ISSUANCE, "GC")
HOLDS_GC = AccountRef.system(HOLDS, "GC")


def original(
    kind: str, amount_minor: int, user_id: str | None = "alice", refunded_minor: int = 0
) -> PostedTransaction:
    """A posted transaction as a refund finds it (its entries do not matter to the planning)."""
    return PostedTransaction(
        id=f"t-{kind}",
        seq=1,
        transaction_type=kind,
        user_id=user_id,
        asset_code="GC",
        amount_minor=amount_minor,
        description=None,
        idempotency_key=None,
        created_at_us=0,
        entries=(),
        refunded_minor=refunded_minor,
    )


# --- post -------------------------------------------------------------------------------------


def test_post_makes_a_debit_and_a_credit_from_the_current_balances() -> None:
    balances = {ALICE: 10_000, TREASURY_GC: 500}

    debit, credit = post(Transfer(ALICE, TREASURY_GC, 2_550), balances, SCALE)

    assert debit == Entry(ALICE, -2_550, 10_000, 7_450)
    assert credit == Entry(TREASURY_GC, 2_550, 500, 3_050)
    assert debit.amount_minor + credit.amount_minor == 0
    assert balances == {ALICE: 10_000, TREASURY_GC: 500}, "post leaves the caller's view alone"


def test_an_account_not_in_the_balances_starts_at_zero() -> None:
    debit, credit = post(Transfer(TREASURY_GC, BOB, 1), {TREASURY_GC: 1}, SCALE)

    assert debit == Entry(TREASURY_GC, -1, 1, 0)
    assert credit == Entry(BOB, 1, 0, 1)


def test_a_debit_may_take_the_balance_to_zero_and_not_one_minor_unit_below() -> None:
    assert post(Transfer(ALICE, TREASURY_GC, 500), {ALICE: 500}, SCALE)[0].balance_after == 0

    with pytest.raises(InsufficientFunds) as refused:
        post(Transfer(ALICE, TREASURY_GC, 501), {ALICE: 500}, SCALE)

    assert refused.value.code == "insufficient_funds"
    assert refused.value.detail == "alice has 5.00 GC, 5.01 needed"


@pytest.mark.parametrize("account", [TREASURY_GC, HOLDS_GC, AccountRef.user("issuance", "GC")])
def test_no_account_but_the_issuance_account_goes_below_zero(account: AccountRef) -> None:
    assert not account.may_go_negative
    with pytest.raises(InsufficientFunds):
        post(Transfer(account, ALICE, 1), {account: 0}, SCALE)


def test_the_issuance_account_goes_below_zero_to_create_the_supply() -> None:
    assert ISSUANCE_GC.may_go_negative

    debit, credit = post(Transfer(ISSUANCE_GC, TREASURY_GC, 10**12), {}, SCALE)

    assert debit == Entry(ISSUANCE_GC, -(10**12), 0, -(10**12))
    assert credit == Entry(TREASURY_GC, 10**12, 0, 10**12)


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        (Transfer(TREASURY_GC, ALICE, 0), "positive amount"),
        (Transfer(TREASURY_GC, ALICE, -5), "positive amount"),
        (Transfer(ALICE, ALICE, 5), "between two accounts"),
        (Transfer(TREASURY_GC, AccountRef.user("alice", "DI"), 5), "in one asset"),
    ],
)
def test_a_malformed_transfer_is_a_programmer_error(transfer: Transfer, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        post(transfer, {TREASURY_GC: 100}, SCALE)


# --- the flows of the API -------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TransactionType.TOPUP, TransactionType.BONUS])
def test_topups_and_bonuses_move_funds_from_the_treasury_to_the_user(
    kind: TransactionType,
) -> None:
    assert transfer_for(kind, "alice", "GC", 700) == Transfer(TREASURY_GC, ALICE, 700)


def test_a_purchase_moves_funds_from_the_user_to_the_treasury() -> None:
    assert transfer_for(TransactionType.PURCHASE, "alice", "GC", 700) == Transfer(
        ALICE, TREASURY_GC, 700
    )


@pytest.mark.parametrize(
    "kind", [TransactionType.REFUND, TransactionType.HOLD, TransactionType.ISSUANCE]
)
def test_other_kinds_have_no_user_flow(kind: TransactionType) -> None:
    with pytest.raises(AssertionError, match="no user flow"):
        transfer_for(kind, "alice", "GC", 700)


# --- refunds --------------------------------------------------------------------------------


def test_a_purchase_refund_gives_the_user_their_funds_back_from_the_treasury() -> None:
    assert plan_refund(original("purchase", 4_000), None, 0, SCALE) == Transfer(
        TREASURY_GC, ALICE, 4_000
    )


@pytest.mark.parametrize("kind", ["topup", "bonus"])
def test_a_topup_or_bonus_refund_takes_the_funds_back(kind: str) -> None:
    assert plan_refund(original(kind, 1_000), 250, 0, SCALE) == Transfer(ALICE, TREASURY_GC, 250)


def test_a_refund_without_an_amount_takes_what_is_not_refunded_yet() -> None:
    assert plan_refund(original("purchase", 3_000), None, 1_050, SCALE).amount_minor == 1_950


def test_partial_refunds_add_up_to_the_original_and_no_more() -> None:
    bought = original("purchase", 3_000)

    assert plan_refund(bought, 1_950, 1_050, SCALE).amount_minor == 1_950
    with pytest.raises(RefundExceedsOriginal):
        plan_refund(bought, 1_951, 1_050, SCALE)
    with pytest.raises(RefundExceedsOriginal) as too_much:
        plan_refund(bought, 2_000, 1_050, SCALE)
    assert (
        too_much.value.detail == "transaction t-purchase has 19.50 GC left to refund, 20.00 asked"
    )
    with pytest.raises(RefundExceedsOriginal, match="refunded in full already"):
        plan_refund(bought, None, 3_000, SCALE)
    with pytest.raises(RefundExceedsOriginal, match="refunded in full already"):
        plan_refund(bought, 1, 3_000, SCALE)


@pytest.mark.parametrize("kind", ["refund", "issuance", "hold", "capture", "release"])
def test_refunds_the_supply_and_holds_are_not_refundable(kind: str) -> None:
    with pytest.raises(NotRefundable) as refused:
        plan_refund(original(kind, 1_000), None, 0, SCALE)
    assert refused.value.detail == f"a {kind} transaction cannot be refunded"


def test_a_transaction_without_a_user_is_not_refundable() -> None:
    with pytest.raises(NotRefundable):
        plan_refund(original("purchase", 1_000, user_id=None), None, 0, SCALE)
    assert refund_accounts(original("purchase", 1_000, user_id=None)) == ()


def test_a_refund_moves_funds_between_the_user_and_the_treasury_only() -> None:
    assert refund_accounts(original("purchase", 1_000)) == (ALICE, TREASURY_GC)


# --- the ledger's records -------------------------------------------------------------------


def test_a_posted_entry_names_its_account_again() -> None:
    entry = Entry(ALICE, -300, 1_000, 700)

    posted = PostedEntry.of(entry)

    assert posted == PostedEntry("user", "alice", -300, 1_000, 700)
    assert posted.account("GC") == ALICE
    assert posted.account("GC").owner_type is OwnerType.USER


def test_a_transaction_reports_its_users_balance_after() -> None:
    entries = (
        PostedEntry("system", "treasury", -500, 10_000, 9_500),
        PostedEntry("user", "alice", 500, 100, 600),
    )
    topup = original("topup", 500)._replace(entries=entries)

    assert topup.user_balance_after == 600
    assert original("issuance", 500, user_id=None).user_balance_after is None


# --- a property: any sequence of postings keeps the books --------------------------------------

USERS = ("alice", "bob", "carol")
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from([TransactionType.TOPUP, TransactionType.BONUS, TransactionType.PURCHASE]),
        st.sampled_from(USERS),
        st.integers(min_value=1, max_value=10_000),
    ),
    max_size=60,
)
SUPPLY_MINOR = 50_000


@given(OPERATIONS)
def test_any_sequence_of_credits_and_debits_keeps_the_books(
    operations: list[tuple[TransactionType, str, int]],
) -> None:
    """Whatever is posted or refused: every transaction's entries sum to zero and chain from the
    balance before; no balance but issuance is below zero; the books sum to zero; a balance is
    the sum of its entries; and a purchase is refused exactly when the user has too little."""
    balances: dict[AccountRef, int] = {}
    entries: list[Entry] = []

    def apply(transfer: Transfer) -> bool:
        try:
            made = post(transfer, balances, SCALE)
        except InsufficientFunds:
            return False
        assert sum(e.amount_minor for e in made) == 0
        for entry in made:
            assert entry.balance_before == balances.get(entry.account, 0)
            assert entry.balance_after == entry.balance_before + entry.amount_minor
            balances[entry.account] = entry.balance_after
        entries.extend(made)
        return True

    assert apply(Transfer(ISSUANCE_GC, TREASURY_GC, SUPPLY_MINOR))
    for kind, user_id, amount in operations:
        user = AccountRef.user(user_id, "GC")
        debited = TREASURY_GC if kind is not TransactionType.PURCHASE else user
        before = dict(balances)
        applied = apply(transfer_for(kind, user_id, "GC", amount))
        assert applied == (before.get(debited, 0) >= amount), (kind, user_id, amount, before)
        if not applied:
            assert balances == before, "a refusal changes nothing"

    assert all(b >= 0 for a, b in balances.items() if a != ISSUANCE_GC), balances
    assert balances[ISSUANCE_GC] == -SUPPLY_MINOR
    assert sum(balances.values()) == 0
    summed: Counter[AccountRef] = Counter()
    for entry in entries:
        summed[entry.account] += entry.amount_minor
    assert {a: b for a, b in balances.items() if b} == {a: b for a, b in summed.items() if b}
