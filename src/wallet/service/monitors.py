"""Balance monitors (API.md, "Player protection"): an operator's thresholds on users' balances,
and the ``balance.threshold_crossed`` event each crossing makes.

A monitor is edge-triggered and keeps no state per user. A crossing is read off one entry of a
user's account, as the Book records it: ``above`` T is crossed when the balance goes from at
most T to more than T (``before <= T < after``), ``below`` T when it goes from at least T to
less than T (``after < T <= before``). Crossing back is not a crossing of the same monitor, so
it emits nothing and re-arms it. Entries of one account are serialised by its row lock (each
entry's balance before is the one the entry before it left), so across any number of processes
every crossing is seen once and only once, and a refused batch's crossings go back with the
Book's events.

Cost: the unit of work reads the monitors of the assets and users it touches (``watched``) with
the rest of its protection (service/protection.py: one statement on PostgreSQL), whatever the
number of users, and an entry finds the monitors it crosses by bisecting their sorted
thresholds: O(log m) per entry, plus one event per crossing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from wallet.domain.errors import AssetNotFound, MonitorNotFound, ValidationFailed
from wallet.domain.ledger import AccountRef, Entry, OwnerType
from wallet.domain.money import format_minor, to_minor
from wallet.limits import MONITORS_MAX
from wallet.storage import Database
from wallet.storage import monitors as store
from wallet.storage.monitors import Monitor

from .clock import Clock, format_us, new_transaction_id
from .cursors import Page, decode_cursor, encode_cursor

THRESHOLD_CROSSED = "balance.threshold_crossed"
ABOVE = "above"
BELOW = "below"
CONDITIONS = (ABOVE, BELOW)
_CURSOR_KIND = "monitor"

if TYPE_CHECKING:
    # Only a type here: the catalogue's module reaches this one through posting and book.
    from .assets import AssetCatalog


@dataclass(slots=True)
class _Thresholds:
    """The monitors of one account (or of every user of one asset), by condition, sorted by
    threshold (then id, so that one entry's crossings come in a stable order)."""

    above: list[tuple[int, str, Monitor]] = field(default_factory=list)
    below: list[tuple[int, str, Monitor]] = field(default_factory=list)

    def crossed(self, before: int, after: int) -> Iterator[Monitor]:
        if after > before and self.above:
            # before <= T < after
            low = bisect.bisect_left(self.above, (before,))
            high = bisect.bisect_left(self.above, (after,))
            yield from (monitor for _, _, monitor in self.above[low:high])
        elif after < before and self.below:
            # after < T <= before
            low = bisect.bisect_left(self.below, (after + 1,))
            high = bisect.bisect_left(self.below, (before + 1,))
            yield from (monitor for _, _, monitor in self.below[low:high])


class MonitorIndex:
    """The monitors a unit of work needs, by the account they watch: ``(asset, user)`` for one
    user's, ``(asset, None)`` for every user's. Empty (and false) when there are none."""

    __slots__ = ("_by_key",)

    def __init__(self, monitors: Iterable[Monitor] = ()) -> None:
        self._by_key: dict[tuple[str, str | None], _Thresholds] = {}
        for monitor in monitors:
            thresholds = self._by_key.setdefault(
                (monitor.asset_code, monitor.user_id), _Thresholds()
            )
            side = thresholds.above if monitor.condition == ABOVE else thresholds.below
            side.append((monitor.threshold_minor, monitor.id, monitor))
        for thresholds in self._by_key.values():
            thresholds.above.sort(key=lambda item: item[:2])
            thresholds.below.sort(key=lambda item: item[:2])

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def crossings(self, entries: Iterable[Entry], scale: int) -> Iterator[bytes]:
        """The data of a ``balance.threshold_crossed`` event for each monitor an entry of a
        user's account crosses, in the entries' order."""
        for entry in entries:
            account = entry.account
            if account.owner_type is not OwnerType.USER:
                continue
            for key in ((account.asset_code, None), (account.asset_code, account.owner_id)):
                thresholds = self._by_key.get(key)
                if thresholds is None:
                    continue
                for monitor in thresholds.crossed(entry.balance_before, entry.balance_after):
                    yield _crossing(monitor, account.owner_id, entry.balance_after, scale)


NO_MONITORS = MonitorIndex()


def _crossing(monitor: Monitor, user_id: str, balance_minor: int, scale: int) -> bytes:
    return orjson.dumps(
        {
            "monitor_id": monitor.id,
            "user_id": user_id,
            "asset_code": monitor.asset_code,
            "balance": format_minor(balance_minor, scale),
            "condition": monitor.condition,
            "threshold": format_minor(monitor.threshold_minor, scale),
        }
    )


def watched(touched: Iterable[AccountRef]) -> tuple[list[str], list[str]]:
    """The assets and the users of the users' accounts among ``touched``, whose monitors the
    unit of work reads (service/protection.py); none when it moves no user's balance (an
    asset's issuance)."""
    assets: set[str] = set()
    users: set[str] = set()
    for account in touched:
        if account.owner_type is OwnerType.USER:
            assets.add(account.asset_code)
            users.add(account.owner_id)
    return sorted(assets), sorted(users)


def index_of(monitors: Sequence[Monitor]) -> MonitorIndex:
    return MonitorIndex(monitors) if monitors else NO_MONITORS


def monitor_view(monitor: Monitor, scale: int) -> dict[str, Any]:
    return {
        "id": monitor.id,
        "asset_code": monitor.asset_code,
        "user_id": monitor.user_id,
        "condition": monitor.condition,
        "threshold": format_minor(monitor.threshold_minor, scale),
        "created_at": format_us(monitor.created_at_us),
    }


class Monitors:
    """The operator's use cases: each one unit of work (or one read)."""

    def __init__(self, database: Database, assets: AssetCatalog, clock: Clock) -> None:
        self._database = database
        self._assets = assets
        self._clock = clock

    def create(
        self, asset_code: str, user_id: str | None, condition: str, threshold: Decimal
    ) -> Monitor:
        """A new monitor; it sees the entries of the units of work that begin after it."""
        if condition not in CONDITIONS:
            raise ValidationFailed.at("condition", "condition is 'above' or 'below'")
        try:
            scale = self._assets.get(asset_code).scale
        except AssetNotFound as error:
            raise ValidationFailed.at("asset_code", error.detail) from None
        monitor = Monitor(
            id=new_transaction_id(),
            asset_code=asset_code,
            user_id=user_id,
            condition=condition,
            threshold_minor=to_minor(threshold, scale, "threshold"),
            created_at_us=self._clock.now_us(),
        )
        with self._database.unit_of_work() as session:
            if store.count_monitors(session) >= MONITORS_MAX:
                raise ValidationFailed.at(
                    "asset_code", f"there are {MONITORS_MAX} balance monitors already"
                )
            store.insert_monitor(session, monitor)
        return monitor

    def page(self, limit: int, cursor: str | None = None) -> Page:
        """A page of monitors, oldest first."""
        after = None if cursor is None else decode_cursor(cursor, _CURSOR_KIND)
        with self._database.reading() as session:
            monitors = store.list_monitors(session, after, limit + 1)
        more = len(monitors) > limit
        monitors = monitors[:limit]
        return Page(
            items=[self.view(monitor) for monitor in monitors],
            next_cursor=encode_cursor(monitors[-1].id, _CURSOR_KIND) if more else None,
        )

    def get(self, monitor_id: str) -> Monitor:
        with self._database.reading() as session:
            monitor = store.get_monitor(session, monitor_id)
        if monitor is None:
            raise _not_found(monitor_id)
        return monitor

    def delete(self, monitor_id: str) -> None:
        """Remove a monitor: the units of work that begin after this one see it no more."""
        with self._database.unit_of_work() as session:
            if not store.delete_monitor(session, monitor_id):
                raise _not_found(monitor_id)

    def view(self, monitor: Monitor) -> dict[str, Any]:
        return monitor_view(monitor, self._assets.scale_of(monitor.asset_code))


def _not_found(monitor_id: str) -> MonitorNotFound:
    return MonitorNotFound(f"no balance monitor with id '{monitor_id}'")
