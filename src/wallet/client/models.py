"""What the client returns and the one thing it takes besides plain arguments (a batch item).

Results are frozen dataclasses. Amounts are :class:`~decimal.Decimal` in major units, exactly as
the service wrote them (``"100.50"`` becomes ``Decimal("100.50")``); a float never holds one.
Timestamps are timezone-aware :class:`~datetime.datetime`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

# What a caller may pass as an amount: a Decimal, an int, or a decimal string. Never a float,
# which cannot hold 0.10 exactly; the client refuses one with a TypeError.
AmountInput = Decimal | int | str

# What a caller may pass as metadata: its own references (an order id, a receipt), strings to
# strings. The service bounds them (at most 20 members, keys of 1 to 40 characters of
# ``A-Z a-z 0-9 _ . -``, values of at most 500 characters) and answers a ValidationError otherwise.
MetadataInput = Mapping[str, str]

# The kinds a client may post, and filter a user's history by.
TransactionType = Literal["topup", "bonus", "purchase", "refund"]
# Every kind a transaction may have (those a hold makes too), a filter of :meth:`transactions`.
AnyTransactionType = Literal[
    "topup", "bonus", "purchase", "issuance", "refund", "hold", "capture", "release", "expiry"
]
HoldStatus = Literal["pending", "captured", "released", "expired"]
# The kinds of event, a filter of :meth:`events` (a newer service may send others).
EventType = Literal[
    "transaction.created",
    "hold.placed",
    "hold.captured",
    "hold.released",
    "hold.expired",
    "account.frozen",
    "account.unfrozen",
    "balance.threshold_crossed",
]


@dataclass(frozen=True)
class Asset:
    """A currency of the game: its code, name and scale (decimal places), and how many days
    its top-ups and bonuses last (None: they never expire)."""

    code: str
    name: str
    scale: int
    expires_after_days: int | None = None


@dataclass(frozen=True)
class Expiring:
    """What is left of one lot of a balance, and when it expires."""

    amount: Decimal
    expires_at: datetime


@dataclass(frozen=True)
class Balance:
    """A user's balance in one asset.

    ``balance`` is what the user can spend now; ``held`` the sum of their pending holds;
    ``expiring`` the lots that expire soonest (at most three, soonest first; empty when none).
    In a balance ``as_of`` a past instant, which answers the balance alone, both are None.
    """

    user_id: str
    asset_code: str
    balance: Decimal
    held: Decimal | None
    as_of: datetime | None
    expiring: tuple[Expiring, ...] | None = None


@dataclass(frozen=True)
class Lot:
    """A credit that expires: its amount, what is left of it, when the rest expires, and the
    top-up or bonus that made it."""

    id: str
    amount: Decimal
    remaining: Decimal
    expires_at: datetime
    transaction_id: str


@dataclass(frozen=True)
class LotPage:
    """One page of a user's open lots in an asset, soonest expiry first; ``next_cursor`` is
    None on the last page."""

    items: tuple[Lot, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Entry:
    """One account's signed change within a transaction, with its balance before and after."""

    account_type: Literal["user", "system"]
    account_id: str
    amount: Decimal
    balance_before: Decimal
    balance_after: Decimal


@dataclass(frozen=True)
class Transaction:
    """A business event of the ledger with its entries (which sum to zero).

    ``metadata`` holds the caller's references given when it was posted (``{}`` when none).
    ``replayed`` is True when the service answered an idempotent retry with the first answer
    (header ``Idempotent-Replayed: true``) rather than creating anything.
    """

    id: str
    transaction_type: str
    status: str
    user_id: str | None
    asset_code: str
    amount: Decimal
    description: str | None
    idempotency_key: str | None
    balance_after: Decimal | None
    refunded_amount: Decimal
    refund_of: str | None
    created_at: datetime
    entries: tuple[Entry, ...]
    metadata: dict[str, str]
    replayed: bool = False


@dataclass(frozen=True)
class Batch:
    """Transactions applied together, all or none, in the order given."""

    id: str
    transactions: tuple[Transaction, ...]
    replayed: bool = False


@dataclass(frozen=True)
class HistoryPage:
    """One page of a user's history, newest first; ``next_cursor`` is None on the last page."""

    user_id: str
    items: tuple[Transaction, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class TransactionPage:
    """One page of transactions across users, newest first; ``next_cursor`` is None on the last
    page.
    """

    items: tuple[Transaction, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Hold:
    """Funds set aside until captured, released or expired; ``transactions`` are its ledger ids,
    which carry the hold's ``metadata`` (``{}`` when none).
    """

    id: str
    user_id: str
    asset_code: str
    amount: Decimal
    captured_amount: Decimal
    status: HoldStatus
    description: str | None
    expires_at: datetime
    created_at: datetime
    transactions: tuple[str, ...]
    metadata: dict[str, str]
    replayed: bool = False


@dataclass(frozen=True)
class HoldPage:
    """One page of a user's holds, newest first; ``next_cursor`` is None on the last page."""

    items: tuple[Hold, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class AssetSupply:
    """Where an asset's supply is: the treasury, users' balances, pending holds, and what
    expired of lots (admin)."""

    asset_code: str
    supply: Decimal
    treasury: Decimal
    users: Decimal
    pending_holds: Decimal
    expired: Decimal
    adds_up: bool


@dataclass(frozen=True)
class VerifyReport:
    """The ledger audit (admin): every balance recomputed from entries, every sum checked."""

    ok: bool
    accounts_checked: int
    transactions_checked: int
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    """Something that changed in the ledger, at its ``position`` in the feed (positions only
    grow). ``data`` is the JSON of what changed as the service shows it (a transaction for
    ``transaction.created``, a hold for ``hold.*``), numbers with a fraction as Decimals.
    """

    id: str
    position: int
    type: str
    created_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class EventPage:
    """Events after a position, oldest first; read on with ``after=next_after``."""

    items: tuple[Event, ...]
    next_after: int


@dataclass(frozen=True)
class BatchItem:
    """One transaction of a batch; build it with :meth:`topup`, :meth:`purchase`, …"""

    transaction_type: TransactionType
    user_id: str | None = None
    asset_code: str | None = None
    amount: AmountInput | None = None
    description: str | None = None
    refund_of: str | None = None
    metadata: MetadataInput | None = None
    # A top-up or bonus: the timezone-aware instant after which what is left of it expires.
    expires_at: datetime | None = None

    @classmethod
    def topup(
        cls,
        user_id: str,
        asset_code: str,
        amount: AmountInput,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
        expires_at: datetime | None = None,
    ) -> BatchItem:
        """Credit a user from the treasury (bought credits); with ``expires_at``
        (timezone-aware), what is left of it expires then."""
        return cls(
            "topup",
            user_id,
            asset_code,
            amount,
            description,
            metadata=metadata,
            expires_at=expires_at,
        )

    @classmethod
    def bonus(
        cls,
        user_id: str,
        asset_code: str,
        amount: AmountInput,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
        expires_at: datetime | None = None,
    ) -> BatchItem:
        """Credit a user from the treasury (a gift); with ``expires_at`` (timezone-aware),
        what is left of it expires then."""
        return cls(
            "bonus",
            user_id,
            asset_code,
            amount,
            description,
            metadata=metadata,
            expires_at=expires_at,
        )

    @classmethod
    def purchase(
        cls,
        user_id: str,
        asset_code: str,
        amount: AmountInput,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
    ) -> BatchItem:
        """Debit a user to the treasury (spent credits)."""
        return cls("purchase", user_id, asset_code, amount, description, metadata=metadata)

    @classmethod
    def refund(
        cls,
        refund_of: str,
        amount: AmountInput | None = None,
        description: str | None = None,
        *,
        metadata: MetadataInput | None = None,
    ) -> BatchItem:
        """Reverse all (``amount`` None) or part of an earlier transaction; a refund carries its
        own ``metadata``, not the original's.
        """
        return cls(
            "refund",
            amount=amount,
            description=description,
            refund_of=refund_of,
            metadata=metadata,
        )
