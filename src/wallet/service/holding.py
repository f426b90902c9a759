"""Applying hold commands to a Book: placing a hold, and settling it by capture, release or
expiry, each with the ledger transactions that move its funds.
"""

from dataclasses import replace

import orjson

from wallet.domain.errors import HoldNotFound
from wallet.domain.holds import Hold, HoldAction, HoldStatus, place_transfer, settle
from wallet.domain.ledger import HOLDS, TREASURY, AccountRef, TransactionType

from .book import Book, check_user_known
from .clock import new_transaction_id
from .commands import HoldCommand
from .freezes import check_not_frozen
from .render import hold_view

# The event each state a hold enters is.
HOLD_EVENTS = {
    HoldStatus.PENDING: "hold.placed",
    HoldStatus.CAPTURED: "hold.captured",
    HoldStatus.RELEASED: "hold.released",
    HoldStatus.EXPIRED: "hold.expired",
}

_MICROS_PER_S = 1_000_000


def hold_accounts(user_id: str, asset_code: str) -> tuple[AccountRef, ...]:
    """The accounts a hold's life moves funds between: the user's, holds, the treasury."""
    return (
        AccountRef.user(user_id, asset_code),
        AccountRef.system(HOLDS, asset_code),
        AccountRef.system(TREASURY, asset_code),
    )


def hold_user(command: HoldCommand) -> AccountRef:
    return AccountRef.user(command.user_id, command.asset_code)


def apply_hold(book: Book, command: HoldCommand, scale: int, now_us: int) -> tuple[Hold, str]:
    """Apply a hold command; the hold afterwards and the id of the transaction it made. The hold
    as the API shows it is rendered once, for its event and the answer (``book.views``)."""
    if command.action is HoldAction.PLACE:
        hold, transaction_id = _place(book, command, scale, now_us)
    else:
        hold, transaction_id = _settle(book, command, scale, now_us)
    view = orjson.dumps(hold_view(hold, scale))
    book.views[hold.id] = view
    book.emit(HOLD_EVENTS[hold.status], view)
    return hold, transaction_id


def _settle(book: Book, command: HoldCommand, scale: int, now_us: int) -> tuple[Hold, str]:
    assert command.hold_id is not None
    hold = book.holds.get(command.hold_id)
    if hold is None:
        raise HoldNotFound(f"no hold with id {command.hold_id!r}")
    if command.action is HoldAction.CAPTURE:
        check_not_frozen(book.frozen, hold.user_id, hold.asset_code)
    settled, capture, release = settle(hold, command.action, command.amount_minor, now_us, scale)
    note = f"{command.action.value} of hold {hold.id}"
    capture_id = release_id = None
    if capture is not None:
        capture_id = book.record(
            capture,
            TransactionType.CAPTURE,
            hold.user_id,
            scale,
            now_us,
            description=note,
            idempotency_key=command.idempotency_key,
            metadata=hold.metadata,
        ).id
    if release is not None:
        release_id = book.record(
            release,
            TransactionType.RELEASE,
            hold.user_id,
            scale,
            now_us,
            description=note,
            idempotency_key=None if capture is not None else command.idempotency_key,
            metadata=hold.metadata,
        ).id
        # What goes back to the user goes back to the lots the hold took from (service/lots.py).
        book.lots.give_back(
            hold.user, hold.hold_transaction_id, hold.amount_minor, 0, release.amount_minor
        )
    settled = replace(settled, capture_transaction_id=capture_id, release_transaction_id=release_id)
    book.holds[hold.id] = settled
    book.settled.append(hold.id)
    transaction_id = capture_id or release_id
    assert transaction_id is not None
    return settled, transaction_id


def _place(book: Book, command: HoldCommand, scale: int, now_us: int) -> tuple[Hold, str]:
    assert command.amount_minor is not None
    check_not_frozen(book.frozen, command.user_id, command.asset_code)
    check_user_known(TransactionType.HOLD, command.user_id, book.known_users)
    transaction = book.record(
        place_transfer(command.user_id, command.asset_code, command.amount_minor),
        TransactionType.HOLD,
        command.user_id,
        scale,
        now_us,
        description=command.description,
        idempotency_key=command.idempotency_key,
        metadata=command.metadata,
    )
    book.lots.debit(hold_user(command), transaction.id, command.amount_minor)
    hold = Hold(
        id=new_transaction_id(),
        user_id=command.user_id,
        asset_code=command.asset_code,
        amount_minor=command.amount_minor,
        status=HoldStatus.PENDING,
        description=command.description,
        idempotency_key=command.idempotency_key,
        expires_at_us=now_us + command.expires_in_s * _MICROS_PER_S,
        created_at_us=now_us,
        hold_transaction_id=transaction.id,
        metadata=command.metadata,
    )
    book.holds[hold.id] = hold
    book.placed.append(hold)
    return hold, transaction.id
