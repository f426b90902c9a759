"""Freezes (API.md, "Player protection"): an operator stops one user's account, in one asset or in
all of them, at once.

- ``Freezes`` holds the operator's use cases: freeze and unfreeze, each one unit of work of its
  own that changes ``freezes`` (what is in force), appends to ``freeze_log`` (who, when, why) and
  appends its event (``account.frozen`` / ``account.unfrozen``) last; and the user's freezes and
  log. Freezing what is frozen, or unfreezing what is not, changes nothing and logs nothing.
- ``users_moved`` and ``check_not_frozen`` are the rule in the writer's unit of work:
  ``posting.open_book`` reads the freezes of every user a request moves (``users_moved``) with
  the rest of its protection (service/protection.py), and a request-made movement of a frozen
  account (top-up, bonus, purchase, refund, hold placement and capture) raises AccountFrozen,
  which is stored with the command's idempotency key like any refusal. The service's own
  movements (hold expiry) and releases, which give money back, are never checked. Nothing is
  cached: a freeze committed by any process holds for every unit of work that begins after it.

An all-assets freeze and an asset's freeze are separate rows: an account is frozen while either
is in force, and each is lifted by its own unfreeze.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from wallet.domain.errors import AccountFrozen, AssetNotFound, UserNotFound, ValidationFailed
from wallet.domain.holds import HoldAction
from wallet.domain.ledger import PostedTransaction
from wallet.limits import FREEZE_REASON_LENGTH_MAX
from wallet.storage import Database, Session
from wallet.storage import events as event_store
from wallet.storage import freezes as store
from wallet.storage import ledger as ledger_store
from wallet.storage.events import NewEvent
from wallet.storage.freezes import ALL_ASSETS, FreezeLogEntry, StoredFreeze

from .clock import Clock, format_us, new_transaction_id
from .commands import HoldCommand, PostingCommand
from .cursors import decode_cursor, encode_cursor

if TYPE_CHECKING:
    # Only a type here: assets.py imports the posting path, which imports this module.
    from .assets import AssetCatalog

FROZEN = "account.frozen"
UNFROZEN = "account.unfrozen"
# The actor recorded for a change made from the command line, and through a service that runs
# open (no API key exists: local development).
CLI_ACTOR = "cli"
OPEN_ACTOR = "open"
# What the log and the event say of an unfreeze given without a reason (the log keeps one).
NO_REASON = "no reason given"

# What the unit of work knows of freezes: the frozen asset codes ('*': all) of each user it
# moves that has any.
FrozenAccounts = Mapping[str, frozenset[str]]


def users_moved(
    postings: Sequence[PostingCommand],
    holding: Sequence[HoldCommand],
    originals: Mapping[str, PostedTransaction],
) -> list[str]:
    """Every user whose account a request of this unit of work moves (a refund moves its
    original's user), whose freezes it reads (service/protection.py)."""
    users: set[str] = set()
    for command in postings:
        if command.refund_of is not None:
            original = originals.get(command.refund_of)
            if original is not None and original.user_id is not None:
                users.add(original.user_id)
        elif command.user_id is not None:
            users.add(command.user_id)
    users.update(c.user_id for c in holding if c.action in (HoldAction.PLACE, HoldAction.CAPTURE))
    return sorted(users)


def check_not_frozen(frozen: FrozenAccounts, user_id: str | None, asset_code: str) -> None:
    """Raise AccountFrozen when the user's account in ``asset_code`` is frozen."""
    if user_id is not None and is_frozen(frozen.get(user_id, frozenset()), asset_code):
        raise AccountFrozen(f"{user_id}'s {asset_code} account is frozen")


def is_frozen(codes: frozenset[str], asset_code: str) -> bool:
    """Whether freezes of these asset codes ('*': all) freeze an account in ``asset_code``."""
    return ALL_ASSETS in codes or asset_code in codes


def freeze_view(freeze: StoredFreeze) -> dict[str, Any]:
    return {
        "user_id": freeze.user_id,
        "asset_code": _asset_or_none(freeze.asset_code),
        "reason": freeze.reason,
        "frozen_by": freeze.frozen_by,
        "frozen_at": format_us(freeze.frozen_at_us),
    }


def log_entry_view(entry: FreezeLogEntry) -> dict[str, Any]:
    return {
        "action": entry.action,
        "asset_code": _asset_or_none(entry.asset_code),
        "reason": entry.reason,
        "actor": entry.actor,
        "at": format_us(entry.at_us),
    }


class Freezes:
    """The operator's use cases: each one unit of work (or one read)."""

    def __init__(self, database: Database, assets: AssetCatalog, clock: Clock) -> None:
        self._database = database
        self._assets = assets
        self._clock = clock

    def freeze(
        self, user_id: str, asset_code: str | None, reason: str, actor: str
    ) -> tuple[StoredFreeze, bool]:
        """Freeze a user's account in ``asset_code`` (None: all of them). The freeze in force
        afterwards, and whether this call put it in force (False: one was in force already, and
        nothing changed). Raises UserNotFound, ValidationFailed."""
        code = self._asset_key(asset_code)
        _check_reason(reason)
        now_us = self._clock.now_us()
        freeze = StoredFreeze(user_id, code, reason, actor, now_us)
        with self._database.unit_of_work() as session:
            _check_user(session, user_id)
            if not store.insert_freeze(session, freeze):
                existing = store.get_freeze(session, user_id, code)
                assert existing is not None, "the conflict's row is there until this commits"
                return existing, False
            store.append_log(session, user_id, code, "freeze", reason, actor, now_us)
            _append_event(session, FROZEN, user_id, asset_code, reason, now_us)
        return freeze, True

    def unfreeze(
        self, user_id: str, asset_code: str | None, reason: str | None, actor: str
    ) -> StoredFreeze | None:
        """Lift the freeze of a user's account in ``asset_code`` (None: the all-assets freeze;
        an asset's own freeze stays). The freeze lifted; None when none was in force (nothing
        changed). Raises UserNotFound, ValidationFailed."""
        code = self._asset_key(asset_code)
        reason = NO_REASON if reason is None else reason
        _check_reason(reason)
        now_us = self._clock.now_us()
        with self._database.unit_of_work() as session:
            _check_user(session, user_id)
            lifted = store.delete_freeze(session, user_id, code)
            if lifted is None:
                return None
            store.append_log(session, user_id, code, "unfreeze", reason, actor, now_us)
            _append_event(session, UNFROZEN, user_id, asset_code, reason, now_us)
        return lifted

    def of_user(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """The user's freezes in force (newest first) and a page of its log (newest first).
        Raises UserNotFound."""
        before = None if cursor is None else int(decode_cursor(cursor))
        with self._database.reading() as session:
            in_force = store.freezes_of_user(session, user_id)
            log = store.log_of_user(session, user_id, limit, before)
            if not in_force and not log and not ledger_store.user_exists(session, user_id):
                raise UserNotFound(f"user {user_id} has never been credited")
        return {
            "user_id": user_id,
            "in_force": [freeze_view(freeze) for freeze in in_force],
            "log": [log_entry_view(entry) for entry in log],
            "next_cursor": encode_cursor(log[-1].seq) if len(log) == limit else None,
        }

    def _asset_key(self, asset_code: str | None) -> str:
        if asset_code is None:
            return ALL_ASSETS
        try:
            return self._assets.get(asset_code).code
        except AssetNotFound as error:
            raise ValidationFailed.at("asset_code", error.detail) from None


def _check_reason(reason: str) -> None:
    if not 1 <= len(reason) <= FREEZE_REASON_LENGTH_MAX or "\x00" in reason:
        raise ValidationFailed.at(
            "reason", f"reason is 1 to {FREEZE_REASON_LENGTH_MAX} characters, without NUL"
        )


def _check_user(session: Session, user_id: str) -> None:
    if not ledger_store.user_exists(session, user_id):
        raise UserNotFound(f"user {user_id} has never been credited")


def _append_event(
    session: Session, kind: str, user_id: str, asset_code: str | None, reason: str, now_us: int
) -> None:
    """Last in the unit of work: the lock it takes orders the events by commit."""
    data = orjson.dumps({"user_id": user_id, "asset_code": asset_code, "reason": reason})
    event_store.append_events(session, [NewEvent(new_transaction_id(), kind, data)], now_us)


def _asset_or_none(code: str) -> str | None:
    return None if code == ALL_ASSETS else code
