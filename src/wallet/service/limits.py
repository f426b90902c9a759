"""Daily limits: what one user may spend or receive of an asset per UTC day (API.md, "Player
protection"), set by an operator (``Limits``) and enforced in the writer's unit of work
(``allowances_of``, from the limits service/protection.py read, then ``Allowances.charge`` as
the Book records each transaction).

The rules:

- An asset's limit (``user_id`` ``*``) applies to every user; a user's own row replaces it
  whole (a null there is "no limit" for that user). Null means no limit.
- Top-ups and bonuses count as received; purchases and hold placements as spent. Refunds,
  captures and releases count as neither, except that a refund of a purchase made the same UTC
  day gives its amount back to that day's spending (so a refunded mistake frees the allowance).
- The day is the UTC day of the service's clock at the unit of work's instant.

Exactness: today's usage is summed from the ledger's own entries (storage/limits.py), read after
the unit of work holds the user's account (on PostgreSQL its row lock, taken before anything is
read; on SQLite the database's write lock), so what it reads cannot change before the commit,
whichever process writes. It counts whatever happened today, also before a limit was set. The
commands of one unit of work see each other through the Allowances, like balances.

Cost: a unit of work whose commands touch no limit pays a look-up of the primary key of
``daily_limits``, a part of the statement that reads its protection (service/protection.py;
none at all when it has only settlements and refunds); only when a limit applies is the day's
usage read, once for all its users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from wallet.domain.errors import LimitExceeded, ValidationFailed
from wallet.domain.holds import HoldAction
from wallet.domain.ledger import AccountRef, PostedTransaction, TransactionType
from wallet.domain.money import format_minor, to_minor
from wallet.limits import DAY_USAGE_ACCOUNTS_MAX, LIMIT_CURSOR_LENGTH_MAX
from wallet.storage import Database, Session
from wallet.storage import limits as store
from wallet.storage.limits import EVERY_USER, StoredLimit

from .clock import Clock, format_us
from .commands import HoldCommand, PostingCommand
from .cursors import Page, decode_cursor, encode_cursor

DAY_US = 86_400_000_000
SPENDING = frozenset({TransactionType.PURCHASE, TransactionType.HOLD})
RECEIVING = frozenset({TransactionType.TOPUP, TransactionType.BONUS})
_CURSOR_KIND = "limit"

if TYPE_CHECKING:
    # Only a type: assets.py imports the write path (posting.py), which imports this module.
    from .assets import AssetCatalog


class Limit(NamedTuple):
    debit_minor: int | None
    credit_minor: int | None


def day_start_us(now_us: int) -> int:
    """The first microsecond of the UTC day of ``now_us``."""
    return now_us - now_us % DAY_US


@dataclass(slots=True)
class Allowances:
    """The limits of the (user, asset) pairs of one unit of work that have one, and what each
    has spent and received today, as the commands applied so far left it."""

    day_start_us: int
    limits: dict[tuple[str, str], Limit]
    # (spent, received) today, in minor units.
    used: dict[tuple[str, str], tuple[int, int]]

    def copy(self) -> Allowances:
        return replace(self, used=dict(self.used))

    def charge(
        self,
        kind: TransactionType,
        user_id: str | None,
        asset_code: str,
        amount_minor: int,
        scale: int,
        original: PostedTransaction | None = None,
    ) -> None:
        """Count a transaction about to be recorded; raise LimitExceeded, counting nothing, if
        it would pass a limit."""
        if user_id is None:
            return
        key = (user_id, asset_code)
        limit = self.limits.get(key)
        if limit is None:
            return
        spent, received = self.used[key]
        if kind in SPENDING:
            _check(limit.debit_minor, spent, amount_minor, "spend", key, scale)
            self.used[key] = (spent + amount_minor, received)
        elif kind in RECEIVING:
            _check(limit.credit_minor, received, amount_minor, "receive", key, scale)
            self.used[key] = (spent, received + amount_minor)
        elif (
            kind is TransactionType.REFUND
            and original is not None
            and original.transaction_type == TransactionType.PURCHASE.value
            and original.created_at_us >= self.day_start_us
        ):
            self.used[key] = (spent - amount_minor, received)


def _check(
    limit_minor: int | None,
    used_minor: int,
    amount_minor: int,
    verb: str,
    key: tuple[str, str],
    scale: int,
) -> None:
    if limit_minor is None or used_minor + amount_minor <= limit_minor:
        return
    user_id, asset_code = key
    left = format_minor(max(0, limit_minor - used_minor), scale)
    raise LimitExceeded(
        f"{user_id} may {verb} {left} {asset_code} more today"
        f" (limit {format_minor(limit_minor, scale)})"
    )


class DayUsage:
    """What each account spent and received on a UTC day, as of its last entry read: a writer's
    memory, so that a unit of work reads only the entries made since (usage_after), not the
    whole day again. Exact whatever other processes write: an account's entries are written
    under its row lock, so whatever was committed after the last entry read has a higher id.
    Holds at most DAY_USAGE_ACCOUNTS_MAX accounts, then starts again empty."""

    def __init__(self) -> None:
        self._days: dict[int, tuple[int, int, int, int]] = {}

    def read(
        self, session: Session, account_ids: Sequence[int], start_us: int
    ) -> dict[int, tuple[int, int]]:
        """(spent, received) of each account on the day starting at ``start_us``."""
        since = {}
        for account_id in account_ids:
            known = self._days.get(account_id)
            since[account_id] = known if known is not None and known[0] == start_us else None
        read = store.usage_after(
            session,
            [(a, 0 if k is None else k[1]) for a, k in since.items()],
            start_us,
            start_us + DAY_US,
        )
        if len(self._days) + len(since) > DAY_USAGE_ACCOUNTS_MAX:
            self._days.clear()
        used = {}
        for account_id, known in since.items():
            _, last, spent, received = known or (start_us, 0, 0, 0)
            new_spent, new_received, new_last = read.get(account_id, (0, 0, last))
            used[account_id] = (spent + new_spent, received + new_received)
            self._days[account_id] = (start_us, max(last, new_last), *used[account_id])
        return used


def limited_pairs(
    postings: Sequence[PostingCommand], holding: Sequence[HoldCommand]
) -> set[tuple[str, str]]:
    """The (user, asset) pairs these commands may debit or credit, the ones a limit may bind."""
    return {
        (c.user_id, c.asset_code)
        for c in postings
        if c.user_id is not None
        and (c.transaction_type in SPENDING or c.transaction_type in RECEIVING)
    } | {(h.user_id, h.asset_code) for h in holding if h.action is HoldAction.PLACE}


def allowances_of(
    session: Session,
    pairs: set[tuple[str, str]],
    stored: Sequence[StoredLimit],
    account_ids: Mapping[AccountRef, int],
    now_us: int,
    day_usage: DayUsage | None = None,
) -> Allowances | None:
    """The allowances of ``pairs`` (``limited_pairs``), from the limits ``stored`` of their
    assets for everyone and for their users (read by service/protection.py); None when no limit
    applies to any of them. Only then is their usage of the day read (one statement). Called
    once the unit of work holds their accounts."""
    if not stored:
        return None
    by_key = {
        (row.asset_code, row.user_id): Limit(row.debit_per_day_minor, row.credit_per_day_minor)
        for row in stored
    }
    limits: dict[tuple[str, str], Limit] = {}
    for user_id, asset_code in pairs:
        limit = by_key.get((asset_code, user_id), by_key.get((asset_code, EVERY_USER)))
        if limit is not None and limit != (None, None):
            limits[(user_id, asset_code)] = limit
    if not limits:
        return None
    start = day_start_us(now_us)
    ids = {
        key: account_ids[account]
        for key in limits
        if (account := AccountRef.user(*key)) in account_ids
    }
    usage = (day_usage or DayUsage()).read(session, sorted(set(ids.values())), start)
    used = {key: usage.get(ids[key], (0, 0)) if key in ids else (0, 0) for key in limits}
    return Allowances(start, limits, used)


def limit_to_minor(amount: Decimal | None, scale: int, field: str) -> int | None:
    """A limit in minor units: None (no limit), 0 (nothing today), or an amount as the money
    grammar has it."""
    if amount is None:
        return None
    if amount == 0:
        exponent = amount.as_tuple().exponent
        assert isinstance(exponent, int)
        if exponent < -scale:
            raise ValidationFailed.at(field, f"amount has more than {scale} decimal places")
        return 0
    return to_minor(amount, scale, field)


def limit_view(limit: StoredLimit, scale: int) -> dict[str, Any]:
    """A limit as the API shows it; ``user_id`` null for the asset's limit for everyone."""
    return {
        "asset_code": limit.asset_code,
        "user_id": None if limit.user_id == EVERY_USER else limit.user_id,
        "debit_per_day": _amount(limit.debit_per_day_minor, scale),
        "credit_per_day": _amount(limit.credit_per_day_minor, scale),
        "updated_at": format_us(limit.updated_at_us),
    }


def _amount(minor: int | None, scale: int) -> str | None:
    return None if minor is None else format_minor(minor, scale)


class Limits:
    """The operator's use cases: set, remove and list limits, each one unit of work or read."""

    def __init__(self, database: Database, assets: AssetCatalog, clock: Clock) -> None:
        self._database = database
        self._assets = assets
        self._clock = clock

    def set(
        self,
        asset_code: str,
        user_id: str | None,
        debit_per_day: Decimal | None,
        credit_per_day: Decimal | None,
    ) -> dict[str, Any]:
        """Set an asset's limit (``user_id`` None) or a user's override of it; the limit as
        shown. Raises AssetNotFound, ValidationFailed."""
        asset = self._assets.get(asset_code)
        limit = StoredLimit(
            asset_code=asset.code,
            user_id=EVERY_USER if user_id is None else user_id,
            debit_per_day_minor=limit_to_minor(debit_per_day, asset.scale, "debit_per_day"),
            credit_per_day_minor=limit_to_minor(credit_per_day, asset.scale, "credit_per_day"),
            updated_at_us=self._clock.now_us(),
        )
        with self._database.unit_of_work() as session:
            store.put_limit(session, limit)
        return limit_view(limit, asset.scale)

    def remove(self, asset_code: str, user_id: str | None) -> bool:
        """Remove a user's override (the asset's limit applies to them again) or, with
        ``user_id`` None, the asset's limit; False when there was none."""
        asset = self._assets.get(asset_code)
        with self._database.unit_of_work() as session:
            return store.delete_limit(
                session, asset.code, EVERY_USER if user_id is None else user_id
            )

    def page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        asset_code: str | None = None,
        user_id: str | None = None,
    ) -> Page:
        """A page of limits, by asset, each asset's limit for everyone before its overrides."""
        after = None
        if cursor is not None:
            value = decode_cursor(cursor, _CURSOR_KIND, LIMIT_CURSOR_LENGTH_MAX)
            code, _, user = value.partition(":")
            after = (code, user)
        with self._database.reading() as session:
            found = store.list_limits(
                session, limit=limit + 1, after=after, asset_code=asset_code, user_id=user_id
            )
        rows = found[:limit]
        items = [limit_view(row, self._assets.scale_of(row.asset_code)) for row in rows]
        next_cursor = None
        if len(found) > limit:
            last = rows[-1]
            next_cursor = encode_cursor(f"{last.asset_code}:{last.user_id}", _CURSOR_KIND)
        return Page(items, next_cursor)
