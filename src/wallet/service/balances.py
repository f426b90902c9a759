"""Balances: a user's balances now, with what pending holds set aside, or at a past instant;
each says whether its account is frozen now (one primary-key range of ``freezes`` per read)."""

from __future__ import annotations

from datetime import datetime

from wallet.domain.errors import UserNotFound
from wallet.domain.ledger import AccountRef
from wallet.domain.money import format_minor
from wallet.storage import Database
from wallet.storage import freezes as freeze_store
from wallet.storage import holds as hold_store
from wallet.storage import ledger as store

from .assets import AssetCatalog
from .clock import format_us, parse_instant_us
from .freezes import is_frozen


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
        if all(balance is None for _, balance in rows):
            raise UserNotFound(f"user {user_id} has never been credited")
        return [
            self._view(user_id, code, balance or 0, held.get(code, 0), is_frozen(frozen, code))
            for code, balance in rows
        ]

    def get(
        self, user_id: str, asset_code: str, as_of: datetime | None = None
    ) -> dict[str, object]:
        """A user's balance now (with what pending holds set aside), or just after the last
        entry at or before ``as_of``. Whether the account is frozen is its state now, even with
        ``as_of``: it tells what the account may do, not what it held.
        """
        asset = self._assets.get(asset_code)
        account = AccountRef.user(user_id, asset.code)
        at_us = None if as_of is None else parse_instant_us(as_of)
        held: int | None = None
        with self._database.reading() as session:
            if at_us is None:
                balance = store.account_balance(session, account)
                held = hold_store.held_amounts(session, user_id).get(asset.code, 0)
            else:
                balance = store.account_balance_at(session, account, at_us)
            frozen = freeze_store.frozen_assets_of_user(session, user_id)
            if balance is None and not store.user_exists(session, user_id):
                raise UserNotFound(f"user {user_id} has never been credited")
        view = self._view(user_id, asset.code, balance or 0, held, is_frozen(frozen, asset.code))
        if at_us is not None:
            view["as_of"] = format_us(at_us)
        return view

    def _view(
        self,
        user_id: str,
        asset_code: str,
        balance_minor: int,
        held_minor: int | None,
        frozen: bool,
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
        return view
