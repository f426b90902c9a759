"""Holds: the state machine of funds set aside now and settled later. Pure; no I/O.

A hold is placed ``pending`` and leaves that state once, for good: ``captured`` (all or part of
it goes to the treasury, the rest back to the user), ``released`` (all of it back to the user) or
``expired`` (released by the service once ``expires_at`` has passed). A pending hold past its
expiry can no longer be captured (hold_expired), even before the service has got round to
expiring it; it may still be released, since the funds go back to the user either way. The
schema enforces the same one-way machine (migration 0003).
"""

from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import HoldExpired, HoldNotPending
from .ledger import HOLDS, TREASURY, AccountRef, Transfer
from .money import format_minor


class HoldStatus(StrEnum):
    PENDING = "pending"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"


class HoldAction(StrEnum):
    PLACE = "place"
    CAPTURE = "capture"
    RELEASE = "release"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    user_id: str
    asset_code: str
    amount_minor: int
    status: HoldStatus
    description: str | None
    idempotency_key: str | None
    expires_at_us: int
    created_at_us: int
    hold_transaction_id: str
    captured_minor: int = 0
    settled_at_us: int | None = None
    capture_transaction_id: str | None = None
    release_transaction_id: str | None = None
    # The caller's references: a JSON object with its keys sorted, None when there are none. The
    # transactions the hold makes carry the same.
    metadata: str | None = None

    @property
    def user(self) -> AccountRef:
        return AccountRef.user(self.user_id, self.asset_code)

    @property
    def holds(self) -> AccountRef:
        return AccountRef.system(HOLDS, self.asset_code)

    @property
    def transaction_ids(self) -> list[str]:
        ids = [self.hold_transaction_id, self.capture_transaction_id, self.release_transaction_id]
        return [i for i in ids if i is not None]

    def expired_at(self, now_us: int) -> bool:
        return now_us >= self.expires_at_us


def place_transfer(user_id: str, asset_code: str, amount_minor: int) -> Transfer:
    return Transfer(
        debit=AccountRef.user(user_id, asset_code),
        credit=AccountRef.system(HOLDS, asset_code),
        amount_minor=amount_minor,
    )


def settle(
    hold: Hold, action: HoldAction, amount_minor: int | None, now_us: int, scale: int
) -> tuple[Hold, Transfer | None, Transfer | None]:
    """Move a pending hold out of pending: the hold afterwards, and the capture and release
    transfers that settle it (either may be None). Raises HoldNotPending or HoldExpired.

    The transaction ids of the result are left for the caller to fill in.
    """
    assert action is not HoldAction.PLACE, "placing is not a settlement"
    # A capture of a hold past its expiry is hold_expired whether or not the sweeper has
    # released it yet: the answer must not depend on the sweeper's timing.
    if action is HoldAction.CAPTURE and hold.status is HoldStatus.EXPIRED:
        raise HoldExpired(f"hold {hold.id} expired and can no longer be captured")
    if hold.status is not HoldStatus.PENDING:
        raise HoldNotPending(f"hold {hold.id} is {hold.status.value}, not pending")
    if action is HoldAction.CAPTURE and hold.expired_at(now_us):
        raise HoldExpired(f"hold {hold.id} expired and can no longer be captured")
    if action is HoldAction.EXPIRE and not hold.expired_at(now_us):
        raise HoldNotPending(f"hold {hold.id} has not expired yet")
    captured = 0
    if action is HoldAction.CAPTURE:
        captured = hold.amount_minor if amount_minor is None else amount_minor
        assert 0 < captured <= hold.amount_minor, (
            f"a capture takes at most the {format_minor(hold.amount_minor, scale)} held"
        )
    rest = hold.amount_minor - captured
    capture = Transfer(hold.holds, AccountRef.system(TREASURY, hold.asset_code), captured)
    release = Transfer(hold.holds, hold.user, rest)
    status = {
        HoldAction.CAPTURE: HoldStatus.CAPTURED,
        HoldAction.RELEASE: HoldStatus.RELEASED,
        HoldAction.EXPIRE: HoldStatus.EXPIRED,
    }[action]
    settled = replace(hold, status=status, captured_minor=captured, settled_at_us=now_us)
    return settled, capture if captured else None, release if rest else None
