"""Balances: a user's balances now, with what pending holds set aside and the lots that expire
soonest, or at a past instant; each says whether its account is frozen now (one primary-key
range of ``freezes`` per read). And an account's open lots, a page at a time.

An account's ``lots_open_minor`` (kept by the writer) tells whether it has open lots: an account
without any costs no read of ``lots``.
"""

from __future__ import annotations

import re
from datetime import datetime

from wallet.domain.errors import UserNotFound, ValidationFailed
from wallet.domain.ledger import AccountRef
from wallet.domain.money import format_minor
from wallet.limits import LOTS_EXPIRING_SHOWN
from wallet.storage import Database, Session
from wallet.storage import freezes as freeze_store
from wallet.storage import holds as hold_store
from wallet.storage import ledger as store
from wallet.storage import lots as lot_store
from wallet.storage.ledger import AccountState
from wallet.storage.lots import StoredLot

from .assets import AssetCatalog
from .clock import format_us, parse_instant_us
from .cursors import Page, decode_cursor, encode_cursor
from .freezes import is_frozen

_LOT_CURSOR = "lot"
# A lot cursor names an expiry (in µs, at most 18 digits: within a BIGINT, and lots expire at most
# ten years ahead), a dot and a lot id (at most 64 characters).
_LOT_CURSOR_LENGTH_MAX = 83
# A lot id as the service makes them (service/clock.new_transaction_id: a UUID, lowercase hex).
_LOT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Balances:
    def __init__(self, database: Database, assets: AssetCatalog) -> None:
        self._database = database
        self._assets = assets

    def of_user(self, user_id: str) -> list[dict[str, object]]:
        """One balance per asset, zeros included. Raises UserNotFound."""
        with self._database.reading() as session:
            rows = store.user_balances(session, user_id)
            held = hold_store.held_amounts(session, user_id)
            frozen = freeze_store.frozen_assets_of_user(session, user_id)
            expiring = {code: _soonest(session, account) for code, account in rows}
        if all(account is None for _, account in rows):
            raise UserNotFound(f"user {user_id} has never been credited")
        return [
            self._view(
                user_id,
                code,
                0 if account is None else account.balance_minor,
                held.get(code, 0),
                is_frozen(frozen, code),
                expiring[code],
            )
            for code, account in rows
        ]

    def get(
        self, user_id: str, asset_code: str, as_of: datetime | None = None
    ) -> dict[str, object]:
        """A user's balance now (with what pending holds set aside and the lots that expire
        soonest), or just after the last entry at or before ``as_of`` (the balance alone).
        Whether the account is frozen is its state now, even with ``as_of``: it tells what the
        account may do, not what it held.
        """
        asset = self._assets.get(asset_code)
        account = AccountRef.user(user_id, asset.code)
        at_us = None if as_of is None else parse_instant_us(as_of)
        held: int | None = None
        expiring: list[StoredLot] | None = None
        with self._database.reading() as session:
            if at_us is None:
                state = store.account_state(session, account)
                balance = None if state is None else state.balance_minor
                held = hold_store.held_amounts(session, user_id).get(asset.code, 0)
                expiring = _soonest(session, state)
            else:
                balance = store.account_balance_at(session, account, at_us)
            frozen = freeze_store.frozen_assets_of_user(session, user_id)
            if balance is None and not store.user_exists(session, user_id):
                raise UserNotFound(f"user {user_id} has never been credited")
        view = self._view(
            user_id, asset.code, balance or 0, held, is_frozen(frozen, asset.code), expiring
        )
        if at_us is not None:
            view["as_of"] = format_us(at_us)
        return view

    def lots(self, user_id: str, asset_code: str, limit: int, cursor: str | None) -> Page:
        """A page of the account's open lots, soonest expiry first (then by id). Raises
        AssetNotFound, UserNotFound; a user without an account in the asset has none.

        A lot emptied while a reader pages (spent, expired) drops out of the pages still to
        come; a lot made since with an expiry before the cursor's is not shown to that reader.
        """
        asset = self._assets.get(asset_code)
        after = None if cursor is None else _lot_position(cursor)
        with self._database.reading() as session:
            state = store.account_state(session, AccountRef.user(user_id, asset.code))
            if state is None:
                if not store.user_exists(session, user_id):
                    raise UserNotFound(f"user {user_id} has never been credited")
                return Page([], None)
            found = lot_store.open_lots_page(session, state.account_id, after, limit + 1)
        page = found[:limit]
        next_cursor = None
        if len(found) > limit:
            last = page[-1]
            next_cursor = encode_cursor(f"{last.expires_at_us}.{last.id}", _LOT_CURSOR)
        return Page([lot_view(lot, asset.scale) for lot in page], next_cursor)

    def _view(
        self,
        user_id: str,
        asset_code: str,
        balance_minor: int,
        held_minor: int | None,
        frozen: bool,
        expiring: list[StoredLot] | None,
    ) -> dict[str, object]:
        scale = self._assets.scale_of(asset_code)
        view: dict[str, object] = {
            "user_id": user_id,
            "asset_code": asset_code,
            "balance": format_minor(balance_minor, scale),
        }
        if held_minor is not None:
            view["held"] = format_minor(held_minor, scale)
        view["frozen"] = frozen
        if expiring is not None:
            view["expiring"] = [
                {
                    "amount": format_minor(lot.remaining_minor, scale),
                    "expires_at": format_us(lot.expires_at_us),
                }
                for lot in expiring
            ]
        return view


def lot_view(lot: StoredLot, scale: int) -> dict[str, object]:
    return {
        "id": lot.id,
        "amount": format_minor(lot.amount_minor, scale),
        "remaining": format_minor(lot.remaining_minor, scale),
        "expires_at": format_us(lot.expires_at_us),
        "transaction_id": lot.transaction_id,
    }


def _soonest(session: Session, account: AccountState | None) -> list[StoredLot]:
    """The account's open lots that expire soonest; no read when it has none open."""
    if account is None or account.lots_open_minor == 0:
        return []
    return lot_store.open_lots_page(session, account.account_id, None, LOTS_EXPIRING_SHOWN)


def _lot_position(cursor: str) -> tuple[int, str]:
    """The (expiry, lot id) a lot cursor names; one this service did not give out is a 422."""
    value = decode_cursor(cursor, _LOT_CURSOR, _LOT_CURSOR_LENGTH_MAX)
    expires, _, lot_id = value.partition(".")
    if not (
        _LOT_ID.fullmatch(lot_id) and expires.isascii() and expires.isdigit() and len(expires) <= 18
    ):
        raise ValidationFailed.at("cursor", "cursor is not one this service gave out", "query")
    return int(expires), lot_id
