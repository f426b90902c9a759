"""An asset's daily activity: what the ledger moved per UTC day and transaction type.

The report covers the last ``days`` UTC days, today included, oldest first; every day and every
type is present, with zeros where nothing happened, so a chart needs no gap filling.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from wallet.domain.ledger import TransactionType
from wallet.domain.money import format_minor
from wallet.storage import reports

from .clock import now_us
from .wallet import WalletService

# Every type a user's transaction may have; issuance (the seeding of a supply) is not activity.
ACTIVITY_TYPES = tuple(t.value for t in TransactionType if t is not TransactionType.ISSUANCE)
_EPOCH_DAY = date(1970, 1, 1)


def asset_activity(
    service: WalletService, asset_code: str, days: int, at_us: int | None = None
) -> dict[str, Any]:
    asset = service.asset(asset_code)
    today = (at_us if at_us is not None else now_us()) // reports.US_PER_DAY
    first_day = today - days + 1
    with service.database.reading() as session:
        totals = reports.daily_activity(
            session,
            asset.code,
            first_day * reports.US_PER_DAY,
            (today + 1) * reports.US_PER_DAY,
        )
    found = {(t.day, t.transaction_type): t for t in totals}
    zero = format_minor(0, asset.scale)
    daily = []
    for day in range(first_day, today + 1):
        activity = {}
        for kind in ACTIVITY_TYPES:
            total = found.get((day, kind))
            activity[kind] = (
                {"count": total.count, "amount": format_minor(total.amount_minor, asset.scale)}
                if total is not None
                else {"count": 0, "amount": zero}
            )
        daily.append({"date": _iso_day(day), "activity": activity})
    return {
        "asset_code": asset.code,
        "days": days,
        "from": _iso_day(first_day),
        "to": _iso_day(today),
        "transaction_types": list(ACTIVITY_TYPES),
        "daily": daily,
    }


def _iso_day(day: int) -> str:
    return (_EPOCH_DAY + timedelta(days=day)).isoformat()
