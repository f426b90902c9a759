"""The unit of work's view of the ledger while a group of commands is applied to it.

A Book starts from what the unit of work locked (accounts, refunded originals, holds) and is
updated as each command is applied, so that each command sees the ones before it. Nothing is
written until every command of the group is decided; a batch that fails puts the book back to
its mark, so none of its items is written.
"""

from dataclasses import dataclass, field, replace

import orjson

from wallet.domain.errors import UserNotFound
from wallet.domain.holds import Hold
from wallet.domain.ledger import (
    AccountRef,
    PostedEntry,
    PostedTransaction,
    TransactionType,
    Transfer,
    post,
)
from wallet.storage.events import NewEvent

from .clock import new_transaction_id
from .freezes import FrozenAccounts
from .limits import Allowances
from .lots import LotBook
from .monitors import NO_MONITORS, THRESHOLD_CROSSED, MonitorIndex
from .render import transaction_view

TRANSACTION_CREATED = "transaction.created"

# The kinds that debit a user, who must have been credited before (else user_not_found).
DEBITS_USER = frozenset({TransactionType.PURCHASE, TransactionType.HOLD})


def check_user_known(kind: TransactionType, user_id: str | None, known_users: set[str]) -> None:
    if kind in DEBITS_USER and user_id not in known_users:
        raise UserNotFound(f"user {user_id} has never been credited")


@dataclass(slots=True)
class Book:
    balances: dict[AccountRef, int]
    known_users: set[str]
    originals: dict[str, PostedTransaction]
    refunded: dict[str, int]
    account_ids: dict[AccountRef, int]
    # Accounts this unit of work opened: those it ends up not using are closed again.
    opened: set[AccountRef]
    holds: dict[str, Hold] = field(default_factory=dict)
    # Daily limits of the users this unit of work debits or credits, None when none applies.
    allowances: Allowances | None = None
    posted: list[PostedTransaction] = field(default_factory=list)
    # Holds placed in this unit of work (as placed), and ids of holds settled in it.
    placed: list[Hold] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    # The events of what was recorded, in order, to write with it (the outbox).
    events: list[NewEvent] = field(default_factory=list)
    # Each transaction and hold recorded, by id, as the API shows it, rendered once: its answer
    # and its event.
    views: dict[str, bytes] = field(default_factory=dict)
    # The freezes in force of the users this unit of work's requests move (freezes.py).
    frozen: FrozenAccounts = field(default_factory=dict)
    # The balance monitors of the accounts this unit of work may move (service/monitors.py).
    monitors: MonitorIndex = NO_MONITORS
    # The lots of the accounts it moves, read as needed (service/lots.py).
    lots: LotBook = field(default_factory=lambda: LotBook(None, {}, {}, {}))

    def mark(self) -> "Book":
        """A copy of the state a batch's postings change, to go back to if the batch fails."""
        return replace(
            self,
            balances=dict(self.balances),
            known_users=set(self.known_users),
            refunded=dict(self.refunded),
            posted=list(self.posted),
            events=list(self.events),
            allowances=None if self.allowances is None else self.allowances.copy(),
            lots=self.lots.mark(),
        )

    def restore(self, mark: "Book") -> None:
        self.balances = mark.balances
        self.known_users = mark.known_users
        self.refunded = mark.refunded
        self.posted = mark.posted
        self.events = mark.events
        self.allowances = mark.allowances
        self.lots = mark.lots

    def emit(self, kind: str, data: bytes) -> None:
        """Keep an event to write with this unit of work."""
        self.events.append(NewEvent(new_transaction_id(), kind, data))

    def record(
        self,
        transfer: Transfer,
        kind: TransactionType,
        user_id: str | None,
        scale: int,
        now_us: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
        refund_of: str | None = None,
        metadata: str | None = None,
    ) -> PostedTransaction:
        """Post a transfer against the book's balances and daily limits (raising
        InsufficientFunds or LimitExceeded, changing nothing) and keep the transaction to write,
        with its event and one for each balance monitor one of its entries crosses.
        """
        entries = post(transfer, self.balances, scale)
        if self.allowances is not None:
            self.allowances.charge(
                kind,
                user_id,
                transfer.debit.asset_code,
                transfer.amount_minor,
                scale,
                None if refund_of is None else self.originals.get(refund_of),
            )
        for entry in entries:
            self.balances[entry.account] = entry.balance_after
        if user_id is not None:
            self.known_users.add(user_id)
        transaction = PostedTransaction(
            id=new_transaction_id(),
            seq=0,
            transaction_type=kind.value,
            user_id=user_id,
            asset_code=transfer.debit.asset_code,
            amount_minor=transfer.amount_minor,
            description=description,
            idempotency_key=idempotency_key,
            created_at_us=now_us,
            entries=tuple(PostedEntry.of(entry) for entry in entries),
            refund_of=refund_of,
            metadata=metadata,
        )
        self.posted.append(transaction)
        view = orjson.dumps(transaction_view(transaction, scale))
        self.views[transaction.id] = view
        self.emit(TRANSACTION_CREATED, view)
        if self.monitors:
            for crossing in self.monitors.crossings(entries, scale):
                self.emit(THRESHOLD_CROSSED, crossing)
        return transaction
