"""Reading an account's open lots (API.md, "Credits that expire").

A lot is open while something is left of it (``remaining_minor > 0``); the partial index
``lots_open_by_account (account_id, expires_at_us, id)`` holds only open lots, so the reads here
are one range of it, soonest expiry first, whatever number of lots the account ever had.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from .database import Session


@dataclass(frozen=True, slots=True)
class OpenLot:
    id: str
    transaction_id: str
    amount_minor: int
    remaining_minor: int
    expires_at_us: int


_OPEN = "account_id = ? AND remaining_minor > 0"


def soonest_open_lots(session: Session, account_id: int, limit: int) -> list[OpenLot]:
    """The account's ``limit`` open lots that expire soonest, soonest first."""
    return _lots(session, _OPEN, (account_id,), limit)


def open_lots_after(
    session: Session, account_id: int, after: tuple[int, str] | None, limit: int
) -> list[OpenLot]:
    """The account's open lots after ``after`` (an expiry and a lot id, the last one a reader
    saw), soonest first, at most ``limit``."""
    if after is None:
        return _lots(session, _OPEN, (account_id,), limit)
    return _lots(session, f"{_OPEN} AND (expires_at_us, id) > (?, ?)", (account_id, *after), limit)


def _lots(session: Session, where: str, params: Sequence[object], limit: int) -> list[OpenLot]:
    rows = session.all(
        "SELECT id, transaction_id, amount_minor, remaining_minor, expires_at_us FROM lots"
        f" WHERE {where} ORDER BY expires_at_us, id LIMIT ?",
        (*params, limit),
    )
    return [OpenLot(i, t, int(a), int(r), int(e)) for i, t, a, r, e in rows]
