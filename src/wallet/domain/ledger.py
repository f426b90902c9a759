"""The ledger's rules: which accounts a transaction moves funds between, and the entries it makes.

Invariants owned here, checked before anything is written:
- an entry's ``balance_after`` is its ``balance_before`` plus its signed amount;
- the entries of one transaction sum to zero;
- no account but an asset's ``issuance`` account goes below zero.
The storage schema checks the same invariants a second time.
"""

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from .errors import InsufficientFunds, NotRefundable, RefundExceedsOriginal
from .money import format_minor


class OwnerType(StrEnum):
    USER = "user"
    SYSTEM = "system"


# By stored value: a dict look-up costs a tenth of OwnerType(value), on the writer's hot path.
_OWNER_TYPES = {owner_type.value: owner_type for owner_type in OwnerType}


# The system accounts of each asset. The treasury holds the asset's supply that no user holds;
# issuance is where the supply came from, the one account whose balance is negative (minus the
# supply), so that every transaction, the seeding included, is a balanced double entry.
TREASURY = "treasury"
ISSUANCE = "issuance"
# Where pending holds keep the funds they set aside: its balance is the sum of the pending holds.
HOLDS = "holds"
# Where what is left of a lot goes when it expires (API.md, "Credits that expire"): its balance
# is the sum of what expired.
EXPIRED = "expired"


class TransactionType(StrEnum):
    TOPUP = "topup"
    BONUS = "bonus"
    PURCHASE = "purchase"
    ISSUANCE = "issuance"
    REFUND = "refund"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    # What is left of a lot, moving from its user to the asset's expired account (service/lots.py).
    EXPIRY = "expiry"


# The three flows of the API: (debited account, credited account), as owner kinds.
USER_TRANSACTION_TYPES = (TransactionType.TOPUP, TransactionType.BONUS, TransactionType.PURCHASE)
CREDITS_USER = frozenset({TransactionType.TOPUP, TransactionType.BONUS})
# The kinds a client may post to POST /transaction.
POSTABLE_TRANSACTION_TYPES = (*USER_TRANSACTION_TYPES, TransactionType.REFUND)


REFUNDABLE = frozenset({TransactionType.TOPUP, TransactionType.BONUS, TransactionType.PURCHASE})


class AccountRef(NamedTuple):
    """One balance of one owner in one asset.

    A named tuple, not a dataclass: it is a dict key on the writer's hot path (the unit of
    work's balances and account ids), and a tuple's hash and equality run in C, a frozen
    dataclass's in Python. Ordered and compared as (owner_type, owner_id, asset_code), so it
    also equals a plain tuple of the same three values: keep the two out of the same dict.
    """

    owner_type: OwnerType
    owner_id: str
    asset_code: str

    @classmethod
    def user(cls, user_id: str, asset_code: str) -> "AccountRef":
        return cls(OwnerType.USER, user_id, asset_code)

    @classmethod
    def system(cls, name: str, asset_code: str) -> "AccountRef":
        return _system_account(name, asset_code)

    @property
    def may_go_negative(self) -> bool:
        return self.owner_type is OwnerType.SYSTEM and self.owner_id == ISSUANCE


# A few system accounts per asset, referred to by every transaction: built once each (an
# AccountRef is immutable). Bounded: assets are few, and their system accounts fewer still.
@functools.lru_cache(maxsize=1024)
def _system_account(name: str, asset_code: str) -> AccountRef:
    return AccountRef(OwnerType.SYSTEM, name, asset_code)


class Transfer(NamedTuple):
    """Funds to move: ``amount_minor`` from ``debit`` to ``credit`` (one asset)."""

    debit: AccountRef
    credit: AccountRef
    amount_minor: int


class Entry(NamedTuple):
    """One account's signed change within a transaction, with the balance around it."""

    account: AccountRef
    amount_minor: int
    balance_before: int
    balance_after: int


def transfer_for(
    kind: TransactionType, user_id: str, asset_code: str, amount_minor: int
) -> Transfer:
    """The transfer that a top-up, bonus or purchase makes."""
    user = AccountRef.user(user_id, asset_code)
    treasury = AccountRef.system(TREASURY, asset_code)
    if kind in CREDITS_USER:
        return Transfer(debit=treasury, credit=user, amount_minor=amount_minor)
    if kind is TransactionType.PURCHASE:
        return Transfer(debit=user, credit=treasury, amount_minor=amount_minor)
    raise AssertionError(f"no user flow for {kind}")


def plan_refund(
    original: "PostedTransaction", amount_minor: int | None, refunded_minor: int, scale: int
) -> Transfer:
    """The transfer that refunds ``amount_minor`` (None: all not refunded yet) of ``original``.

    The original's flow, reversed: a purchase refund gives the user their funds back from the
    treasury; a top-up or bonus refund (a chargeback, a clawback) takes them back. Refunds, and
    the supply's issuance, are final. The refunds of a transaction never exceed its amount.
    """
    kind = original.transaction_type
    if kind not in REFUNDABLE or original.user_id is None:
        raise NotRefundable(f"a {kind} transaction cannot be refunded")
    remaining = original.amount_minor - refunded_minor
    amount = remaining if amount_minor is None else amount_minor
    if remaining <= 0:
        raise RefundExceedsOriginal(f"transaction {original.id} is refunded in full already")
    if amount > remaining:
        raise RefundExceedsOriginal(
            f"transaction {original.id} has {format_minor(remaining, scale)} "
            f"{original.asset_code} left to refund, {format_minor(amount, scale)} asked"
        )
    forward = transfer_for(TransactionType(kind), original.user_id, original.asset_code, amount)
    return Transfer(debit=forward.credit, credit=forward.debit, amount_minor=amount)


def refund_accounts(original: "PostedTransaction") -> tuple[AccountRef, ...]:
    """The accounts a refund of ``original`` may move funds between."""
    if original.user_id is None:
        return ()
    return (
        AccountRef.user(original.user_id, original.asset_code),
        AccountRef.system(TREASURY, original.asset_code),
    )


def post(transfer: Transfer, balances: Mapping[AccountRef, int], scale: int) -> tuple[Entry, Entry]:
    """Compute the two entries of a transfer against current balances.

    Raises InsufficientFunds when the debited account would go below zero. Pure: the caller
    applies the entries' ``balance_after`` to its view of the balances.
    """
    amount = transfer.amount_minor
    assert amount > 0, "a transfer moves a positive amount"
    assert transfer.debit != transfer.credit, "a transfer moves funds between two accounts"
    assert transfer.debit.asset_code == transfer.credit.asset_code, "a transfer is in one asset"
    debit_before = balances.get(transfer.debit, 0)
    credit_before = balances.get(transfer.credit, 0)
    if debit_before - amount < 0 and not transfer.debit.may_go_negative:
        asset = transfer.debit.asset_code
        raise InsufficientFunds(
            f"{transfer.debit.owner_id} has {format_minor(debit_before, scale)} {asset}, "
            f"{format_minor(amount, scale)} needed"
        )
    entries = (
        Entry(transfer.debit, -amount, debit_before, debit_before - amount),
        Entry(transfer.credit, amount, credit_before, credit_before + amount),
    )
    assert sum(e.amount_minor for e in entries) == 0, "entries of a transaction sum to zero"
    return entries


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    name: str
    scale: int
    supply_minor: int
    # Its credits expire this many days after they are made; None: never (service/lots.py).
    expires_after_days: int | None = None


class PostedEntry(NamedTuple):
    """An entry as the ledger keeps it."""

    owner_type: str
    owner_id: str
    amount_minor: int
    balance_before: int
    balance_after: int

    def account(self, asset_code: str) -> AccountRef:
        return AccountRef(_OWNER_TYPES[self.owner_type], self.owner_id, asset_code)

    @classmethod
    def of(cls, entry: Entry) -> "PostedEntry":
        account = entry.account
        return cls(
            account.owner_type.value,
            account.owner_id,
            entry.amount_minor,
            entry.balance_before,
            entry.balance_after,
        )


class PostedTransaction(NamedTuple):
    """A transaction as the ledger keeps it, with its entries."""

    id: str
    seq: int
    transaction_type: str
    user_id: str | None
    asset_code: str
    amount_minor: int
    description: str | None
    idempotency_key: str | None
    created_at_us: int
    entries: tuple[PostedEntry, ...]
    refund_of: str | None = None
    # The sum of this transaction's refunds when it was read.
    refunded_minor: int = 0
    # The caller's references: a JSON object with its keys sorted, None when there are none.
    metadata: str | None = None

    @property
    def user_balance_after(self) -> int | None:
        for entry in self.entries:
            if entry.owner_type == OwnerType.USER and entry.owner_id == self.user_id:
                return entry.balance_after
        return None
