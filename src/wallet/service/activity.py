"""An asset's daily activity: what the ledger moved per UTC day and transaction type.

The report covers the last ``days`` UTC days, today included, oldest first; every day and every
type is present, with zeros where nothing happened, so a chart needs no gap filling.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from wallet.domain.ledger import TransactionType
from wallet.domain.money import format_minor
from wallet.storage import Database, reports

from .assets import AssetCatalog
from .clock import Clock

# Every type a user's transaction may have; issuance (the seeding of a supply) is not activity.
ACTIVITY_TYPES = tuple(t.value for t in TransactionType if t is not TransactionType.ISSUANCE)
_EPOCH_DAY = date(1970, 1, 1)


class Activity:
    def __init__(self, database: Database, assets: AssetCatalog, clock: Clock) -> None:
        self._database = database
        self._assets = assets
        self._clock = clock

    def of_asset(self, asset_code: str, days: int) -> dict[str, Any]:
        """The last ``days`` UTC days of ``asset_code``, today (by the clock) included."""
        asset = self._assets.get(asset_code)
        today = self._clock.now_us() // reports.US_PER_DAY
        first_day = today - days + 1
        with self._database.reading() as session:
            totals = reports.daily_activity(
                session,
                asset.code,
                first_day * reports.US_PER_DAY,
                (today + 1) * reports.US_PER_DAY,
            )
        return _report(asset.code, asset.scale, days, first_day, today, totals)


def _report(
    asset_code: str,
    scale: int,
    days: int,
    first_day: int,
    today: int,
    totals: list[reports.DailyTotal],
) -> dict[str, Any]:
    found = {(t.day, t.transaction_type): t for t in totals}
    zero = format_minor(0, scale)
    daily = []
    for day in range(first_day, today + 1):
        activity = {}
        for kind in ACTIVITY_TYPES:
            total = found.get((day, kind))
            activity[kind] = (
                {"count": total.count, "amount": format_minor(total.amount_minor, scale)}
                if total is not None
                else {"count": 0, "amount": zero}
            )
        daily.append({"date": _iso_day(day), "activity": activity})
    return {
        "asset_code": asset_code,
        "days": days,
        "from": _iso_day(first_day),
        "to": _iso_day(today),
        "transaction_types": list(ACTIVITY_TYPES),
        "daily": daily,
    }


def _iso_day(day: int) -> str:
    return (_EPOCH_DAY + timedelta(days=day)).isoformat()
