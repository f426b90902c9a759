"""What a write asks of the ledger, fully validated before it reaches the writer, and its answer.

A command carries minor units, a known asset and a fingerprint of its payload: the writer never
sees a malformed request, so nothing that fails validation can take a place in a commit. Its
answer is an Outcome (a stored body, or the ledger's refusal), or an InternalError when the
command failed for a reason that is not the caller's.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from wallet.domain.errors import WalletError
from wallet.domain.holds import HoldAction
from wallet.domain.ledger import TransactionType


@dataclass(frozen=True, slots=True)
class PostingCommand:
    transaction_type: TransactionType
    user_id: str | None
    asset_code: str
    # None only for a refund of whatever is not refunded yet, decided in the unit of work.
    amount_minor: int | None
    description: str | None = None
    idempotency_key: str | None = None
    refund_of: str | None = None
    # Whose idempotency key it is: the id of the API key that sent it (keys of different
    # callers never collide).
    key_owner: str = ""
    # The caller's references as a JSON object with sorted keys (metadata_json), None when none.
    metadata: str | None = None
    # A top-up or bonus: the instant its lot expires, as the request asked (API.md's
    # ``expires_at``), None when it did not.
    expires_at_us: int | None = None
    # A top-up or bonus of an asset whose credits expire: its policy's days when the command was
    # made (service/lots.py). Not part of the payload: the asset's policy, not the caller's.
    expires_after_days: int | None = field(default=None, compare=False)
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        parts = [
            self.transaction_type.value,
            self.user_id or "",
            self.asset_code,
            "" if self.amount_minor is None else str(self.amount_minor),
            self.description or "",
        ]
        # Appended only when present, so the fingerprints of keys stored before refunds existed
        # stay what they were.
        if self.refund_of is not None:
            parts.append(self.refund_of)
        if self.metadata is not None:
            parts.append(self.metadata)
        if self.expires_at_us is not None:
            parts.append(f"expires_at={self.expires_at_us}")
        payload = "\x1f".join(parts)
        object.__setattr__(self, "fingerprint", hashlib.sha256(payload.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class BatchCommand:
    """Several postings applied in order in one unit of work, all or none: one queued command."""

    items: tuple[PostingCommand, ...]
    idempotency_key: str | None = None
    key_owner: str = ""
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        assert self.items, "a batch has at least one item"
        payload = "\x1e".join(item.fingerprint for item in self.items)
        object.__setattr__(self, "fingerprint", hashlib.sha256(payload.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class HoldCommand:
    """Place, capture, release or expire a hold. For all but placing, ``hold_id`` names the hold,
    and its user and asset (which never change) were read before, so the accounts to lock are
    known when the unit of work begins.
    """

    action: HoldAction
    user_id: str
    asset_code: str
    # Placing: the amount to hold. Capturing: the amount to take, None for all of it.
    amount_minor: int | None = None
    hold_id: str | None = None
    expires_in_s: int = 0
    description: str | None = None
    idempotency_key: str | None = None
    key_owner: str = ""
    # Placing: the caller's references, as in PostingCommand.
    metadata: str | None = None
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        parts = [
            "hold",
            self.action.value,
            self.hold_id or "",
            self.user_id,
            self.asset_code,
            "" if self.amount_minor is None else str(self.amount_minor),
            str(self.expires_in_s),
            self.description or "",
        ]
        # Appended only when present, as in PostingCommand.
        if self.metadata is not None:
            parts.append(self.metadata)
        payload = "\x1f".join(parts)
        object.__setattr__(self, "fingerprint", hashlib.sha256(payload.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class ExpiryCommand:
    """Expire what is left of an account's lots whose expiry has passed: the service's own
    write (the expiry sweep, service/expiry.py). It names the account, so the accounts to lock
    are known when the unit of work begins; which lots are due, and what is left of them, is
    read inside it, under the account's lock, so two sweeps never expire a lot twice.
    """

    user_id: str
    asset_code: str
    # No key: exactly once comes from the lots themselves, which change only under the lock.
    idempotency_key: None = None
    key_owner: str = ""
    fingerprint: str = ""


Command = PostingCommand | BatchCommand | HoldCommand | ExpiryCommand


def metadata_json(metadata: Mapping[str, str] | None) -> str | None:
    """The caller's references as they are fingerprinted, stored and shown: a JSON object with
    its keys sorted (so the same members in another order are the same payload), None when
    there are none (so an empty object and none are the same payload too).
    """
    if not metadata:
        return None
    return orjson.dumps(dict(metadata), option=orjson.OPT_SORT_KEYS).decode()


def postings_of(command: Command) -> tuple[PostingCommand, ...]:
    if isinstance(command, BatchCommand):
        return command.items
    if isinstance(command, HoldCommand | ExpiryCommand):
        return ()
    return (command,)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one command: a transaction's JSON body, or an error."""

    body: bytes
    transaction_id: str | None = None
    error: WalletError | None = None
    replayed: bool = False
    # An expiry's: how many lots its transaction expired (the sweep counts lots), and whether it
    # took as many as one transaction may, so that more of the account's may be due.
    lots_expired: int = 0
    lots_capped: bool = False


class InternalError(Exception):
    """A command failed for a reason that is not the caller's: a bug, reported as 500."""
