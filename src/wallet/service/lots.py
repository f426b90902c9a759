"""Credits that expire (API.md, "Credits that expire"): lots, and the order in which debits take
from them and give-backs return to them. The unit of work's part; the sweep that expires due
lots is service/expiry.py.

The rules:

- A credit (a top-up or a bonus) makes a lot when its request has ``expires_at`` (which wins) or
  its asset has ``expires_after_days`` (the lot expires that many days after the unit of work's
  instant). A request's ``expires_at`` is checked against the service's clock when the request
  is prepared (in the future, at most LOT_EXPIRES_AT_YEARS_MAX years ahead); if the unit of work
  runs after it (a request that waited in the queue across its expiry), the lot is made expiring
  one microsecond after its credit, and the next sweep expires it.
- A debit (a purchase, a hold's placement) takes from the account's open lots by (expiry, id),
  soonest first, and from the credit without expiry (the balance beyond the open lots) last. A
  lot past its expiry that the sweep has not reached yet is still part of the balance, and is
  taken first. A debit reads only the lots it takes from (a range of the index by account and
  expiry, read a page at a time).
- A give-back (a hold's release or expiry, the part of a hold a partial capture leaves, a
  purchase refund, whole or partial) undoes the debit in reverse: first the part of it that came
  from credit without expiry, then its lots, the one that expires latest first, so that what
  stays spent is what expires soonest. A lot given back to after its expiry is open again with
  its expiry past: the next sweep expires it.
- A chargeback (the refund of a top-up or bonus) takes from that credit's own lot first, then in
  the debit order.
- An expiry takes what is left of an account's due lots (those whose expiry has passed): they
  are the first of its debit order, so it is a debit of their sum, up to LOT_EXPIRY_LOTS_MAX
  lots at a time (service/expiring.py; the sweep is service/expiry.py).

Each debit's draws (lot, amount, and how much went back since) are kept in ``lot_draws``;
``accounts.lots_open_minor`` is the sum of what is left of the account's open lots, and
``accounts.lots_made`` how many lots the account has had. Both are read with the account's row
(one statement for all the accounts of a unit of work), so an account that never had a lot pays
for this feature nothing but two columns: its debits read no lot (``lots_open_minor`` is 0), and
its refunds and releases read no draws (``lots_made`` is 0).

Invariant, checked before every commit (``LotBook.check``) and by ``verify``: for every account,
``lots_open_minor`` is the sum of what is left of its open lots, and at most its balance.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wallet.domain.errors import ValidationFailed
from wallet.domain.ledger import AccountRef
from wallet.limits import LOT_EXPIRES_AT_YEARS_MAX, LOT_PAGE_SIZE
from wallet.storage import Session
from wallet.storage import lots as lot_store
from wallet.storage.lots import StoredDraw, StoredLot

from .clock import format_us, new_transaction_id

_MICROS_PER_DAY = 86_400 * 1_000_000


def check_expires_at(expires_at_us: int, now_us: int) -> None:
    """A request's ``expires_at``: in the future, at most LOT_EXPIRES_AT_YEARS_MAX years ahead
    (ValidationFailed otherwise)."""
    if expires_at_us <= now_us:
        raise ValidationFailed.at("expires_at", "expires_at must be in the future")
    if expires_at_us > _years_later_us(now_us, LOT_EXPIRES_AT_YEARS_MAX):
        raise ValidationFailed.at(
            "expires_at", f"expires_at must be at most {LOT_EXPIRES_AT_YEARS_MAX} years ahead"
        )


def _years_later_us(now_us: int, years: int) -> int:
    moment = datetime.fromisoformat(format_us(now_us).replace("Z", "+00:00"))
    try:
        later = moment.replace(year=moment.year + years)
    except ValueError:  # 29 February, and no 29 February that year
        later = moment.replace(year=moment.year + years, day=28)
    later = later.astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    delta = later - epoch
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def lot_expiry_us(
    expires_at_us: int | None, expires_after_days: int | None, now_us: int
) -> int | None:
    """When the lot of a credit made at ``now_us`` expires; None when the credit makes no lot."""
    if expires_at_us is not None:
        return max(expires_at_us, now_us + 1)
    if expires_after_days is not None:
        return now_us + expires_after_days * _MICROS_PER_DAY
    return None


def _order(lot: StoredLot) -> tuple[int, str]:
    return (lot.expires_at_us, lot.id)


@dataclass(slots=True)
class LotBook:
    """What a unit of work knows of the lots of the accounts it locked, and what it did to them.

    Lots are read lazily, after the accounts' locks, and only for accounts with something in
    them; the state is plain dicts of immutable rows, so a batch's mark is a few dict copies.
    """

    session: Session | None
    account_ids: Mapping[AccountRef, int]
    # lots_open_minor and lots_made of each locked account, as read, then as changed here.
    open_minor: dict[AccountRef, int]
    made: dict[AccountRef, int]
    # The lots known to this unit of work, by account, as they are now.
    lots: dict[AccountRef, dict[str, StoredLot]] = field(default_factory=dict)
    # Per account: every open lot of the database up to this (expiry, id) is in ``lots`` (None:
    # none read yet), and whether there are no more.
    cursors: dict[AccountRef, tuple[tuple[int, str] | None, bool]] = field(default_factory=dict)
    # The draws known to this unit of work, by debit then lot, as they are now; a debit in it
    # has all its draws there.
    draws: dict[str, dict[str, StoredDraw]] = field(default_factory=dict)
    # What was read from the database: what to compare with to know what to write.
    read_lots: dict[str, StoredLot] = field(default_factory=dict)
    read_draws: dict[tuple[str, str], StoredDraw] = field(default_factory=dict)
    # The open balances as read, to check the changes add up (check()).
    open_read: dict[AccountRef, int] = field(default_factory=dict)
    made_read: dict[AccountRef, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        session: Session,
        account_ids: Mapping[AccountRef, int],
        open_minor: dict[AccountRef, int],
        made: dict[AccountRef, int],
    ) -> LotBook:
        return cls(
            session,
            account_ids,
            open_minor,
            made,
            open_read=dict(open_minor),
            made_read=dict(made),
        )

    # --- a batch's mark ----------------------------------------------------------------------

    def mark(self) -> LotBook:
        return LotBook(
            self.session,
            self.account_ids,
            dict(self.open_minor),
            dict(self.made),
            lots={account: dict(lots) for account, lots in self.lots.items()},
            cursors=dict(self.cursors),
            draws={tid: dict(draws) for tid, draws in self.draws.items()},
            read_lots=self.read_lots,
            read_draws=self.read_draws,
            open_read=self.open_read,
            made_read=self.made_read,
        )

    # --- credits, debits, give-backs -----------------------------------------------------------

    def credit(
        self,
        account: AccountRef,
        transaction_id: str,
        amount_minor: int,
        expires_at_us: int,
        now_us: int,
    ) -> StoredLot:
        """A credit that expires: a new lot."""
        lot = StoredLot(
            new_transaction_id(),
            self.account_ids[account],
            transaction_id,
            amount_minor,
            amount_minor,
            expires_at_us,
            now_us,
        )
        self.lots.setdefault(account, {})[lot.id] = lot
        self.open_minor[account] = self.open_minor.get(account, 0) + amount_minor
        self.made[account] = self.made.get(account, 0) + 1
        return lot

    def debit(
        self,
        account: AccountRef,
        transaction_id: str,
        amount_minor: int,
        *,
        first_lot_of: str | None = None,
    ) -> int:
        """Take ``amount_minor`` debited from ``account`` by ``transaction_id`` out of its lots,
        in the debit order (after the lot that the credit ``first_lot_of`` made, if given and
        open); what they do not cover comes from credit without expiry. Returns how much came
        from lots.
        """
        open_minor = self.open_minor.get(account, 0)
        need = min(amount_minor, open_minor)
        if need == 0:
            return 0
        taken = need
        first: StoredLot | None = None
        if first_lot_of is not None:
            first = self._lot_of_transaction(account, first_lot_of)
        if first is not None and first.remaining_minor > 0:
            need -= self._take(account, transaction_id, first, need)
        while need > 0:
            ready = self._ready(account)
            if not ready:
                raise AssertionError(f"the open lots of {account} add up to less than recorded")
            for lot in ready:
                need -= self._take(account, transaction_id, lot, need)
                if need == 0:
                    break
        self.open_minor[account] = open_minor - taken
        return taken

    def give_back(
        self,
        account: AccountRef,
        debit_id: str,
        debit_minor: int,
        given_back_minor: int,
        amount_minor: int,
    ) -> None:
        """Give ``amount_minor`` back to ``account`` of the debit ``debit_id`` (of
        ``debit_minor``, of which ``given_back_minor`` was given back before): first the part of
        it that came from credit without expiry, then its lots, latest expiry first.
        """
        draws = self._draws_of(account, debit_id)
        if not draws:
            return
        drawn = sum(d.amount_minor for d in draws.values())
        returned = sum(d.returned_minor for d in draws.values())
        plain_left = (debit_minor - drawn) - (given_back_minor - returned)
        assert plain_left >= 0, f"{debit_id} gave back more than it took from credit"
        rest = amount_minor - min(amount_minor, plain_left)
        if rest == 0:
            return
        mine = self.lots[account]
        for lot in sorted((mine[lot_id] for lot_id in draws), key=_order, reverse=True):
            draw = draws[lot.id]
            back = min(rest, draw.amount_minor - draw.returned_minor)
            if back == 0:
                continue
            draws[lot.id] = draw._replace(returned_minor=draw.returned_minor + back)
            mine[lot.id] = lot._replace(remaining_minor=lot.remaining_minor + back)
            self.open_minor[account] = self.open_minor.get(account, 0) + back
            rest -= back
            if rest == 0:
                return
        raise AssertionError(f"{debit_id} gives back more than it took")

    def due(self, account: AccountRef, now_us: int, lots_max: int) -> list[StoredLot]:
        """The account's open lots whose expiry is at or before ``now_us``, as they are now
        (read under the account's lock), at most ``lots_max`` of them: the first of its debit
        order, so a debit of their sum takes exactly these (expiring.py). Reads pages of the
        database until a lot not yet due, ``lots_max`` due ones, or the last open lot.
        """
        if self.open_minor.get(account, 0) == 0:
            return []
        while True:
            after, exhausted = self.cursors.get(account, (None, False))
            known = self._known(account)
            due = list(itertools.takewhile(lambda lot: lot.expires_at_us <= now_us, known))
            if len(due) >= lots_max or len(due) < len(known) or exhausted:
                return due[:lots_max]
            self._read_page(account, after)

    # --- before the commit ---------------------------------------------------------------------

    def check(self, balances: Mapping[AccountRef, int]) -> None:
        """The writer's check before commit: each account's lots_open_minor changed by what its
        open lots changed by, and is at most its balance (verify checks the sums themselves)."""
        changes: dict[AccountRef, int] = {}
        for account, lots in self.lots.items():
            for lot in lots.values():
                before = self.read_lots.get(lot.id)
                delta = lot.remaining_minor - (0 if before is None else before.remaining_minor)
                if delta:
                    changes[account] = changes.get(account, 0) + delta
        for account, open_minor in self.open_minor.items():
            expected = self.open_read.get(account, 0) + changes.get(account, 0)
            assert open_minor == expected, (
                f"the open lots of {account} add up to {expected}, recorded {open_minor}"
            )
            assert 0 <= open_minor <= balances.get(account, 0), (
                f"the open lots of {account} ({open_minor}) exceed its balance"
            )

    def write(self, session: Session, balances: Mapping[AccountRef, int]) -> None:
        """Check, then write what this unit of work did to lots (nothing when it touched
        none)."""
        if not self.open_minor:
            return
        self.check(balances)
        new_lots: list[StoredLot] = []
        changed_lots: list[tuple[str, int]] = []
        for lots in self.lots.values():
            for lot in lots.values():
                before = self.read_lots.get(lot.id)
                if before is None:
                    new_lots.append(lot)
                elif before.remaining_minor != lot.remaining_minor:
                    changed_lots.append((lot.id, lot.remaining_minor))
        new_draws: list[StoredDraw] = []
        changed_draws: list[StoredDraw] = []
        for draws in self.draws.values():
            for draw in draws.values():
                stored = self.read_draws.get((draw.transaction_id, draw.lot_id))
                if stored is None:
                    new_draws.append(draw)
                elif stored.returned_minor != draw.returned_minor:
                    changed_draws.append(draw)
        accounts = [
            (
                self.account_ids[account],
                open_minor,
                self.made.get(account, 0) - self.made_read.get(account, 0),
            )
            for account, open_minor in self.open_minor.items()
            if open_minor != self.open_read.get(account, 0)
            or self.made.get(account, 0) != self.made_read.get(account, 0)
        ]
        lot_store.write_lots(session, new_lots, changed_lots, new_draws, changed_draws, accounts)

    # --- reading, lazily ---------------------------------------------------------------------

    def prefetch(self, accounts: Iterable[AccountRef]) -> None:
        """Read the first page of open lots of those of ``accounts`` that have any, together (a
        unit of work's debits cost one round trip, not one each)."""
        by_id = {
            self.account_ids[account]: account
            for account in set(accounts)
            if self.open_minor.get(account, 0) > 0 and account not in self.cursors
        }
        if not by_id:
            return
        assert self.session is not None
        pages: dict[int, list[StoredLot]] = {account_id: [] for account_id in by_id}
        for lot in lot_store.first_pages(self.session, sorted(by_id), LOT_PAGE_SIZE):
            pages[lot.account_id].append(lot)
        for account_id, page in pages.items():
            page.sort(key=_order)
            self._add_page(by_id[account_id], page, None, LOT_PAGE_SIZE)

    def _take(self, account: AccountRef, transaction_id: str, lot: StoredLot, need: int) -> int:
        mine = self.lots[account]
        lot = mine[lot.id]
        take = min(need, lot.remaining_minor)
        if take == 0:
            return 0
        mine[lot.id] = lot._replace(remaining_minor=lot.remaining_minor - take)
        draws = self.draws.setdefault(transaction_id, {})
        draw = draws.get(lot.id)
        if draw is None:
            draws[lot.id] = StoredDraw(transaction_id, lot.id, take, 0)
        else:
            draws[lot.id] = draw._replace(amount_minor=draw.amount_minor + take)
        return take

    def _ready(self, account: AccountRef) -> list[StoredLot]:
        """The account's open lots that may be taken next, in the debit order: those known up to
        the cursor (reading the next page of the database when none is)."""
        while True:
            after, exhausted = self.cursors.get(account, (None, False))
            ready = self._known(account)
            if ready or exhausted:
                return ready
            self._read_page(account, after)

    def _known(self, account: AccountRef) -> list[StoredLot]:
        """The account's open lots known up to the cursor (every open lot of the database up
        to there), in the debit order."""
        after, exhausted = self.cursors.get(account, (None, False))
        return sorted(
            (
                lot
                for lot in self.lots.get(account, {}).values()
                if lot.remaining_minor > 0
                and (exhausted or (after is not None and _order(lot) <= after))
            ),
            key=_order,
        )

    def _read_page(self, account: AccountRef, after: tuple[int, str] | None) -> None:
        assert self.session is not None
        # Pages grow as a debit goes deeper, so a debit over many lots reads few pages.
        known = len(self.lots.get(account, ()))
        limit = max(LOT_PAGE_SIZE, known)
        page = lot_store.open_lots_page(self.session, self.account_ids[account], after, limit)
        self._add_page(account, page, after, limit)

    def _add_page(
        self,
        account: AccountRef,
        page: list[StoredLot],
        after: tuple[int, str] | None,
        limit: int,
    ) -> None:
        """Remember a page of the account's open lots, the ``limit`` at most after ``after`` in
        the debit order (the unit of work's own versions of them win), and move its cursor past
        the page: to the end of the account's lots when the page was not full."""
        mine = self.lots.setdefault(account, {})
        for lot in page:
            if lot.id not in mine:
                mine[lot.id] = lot
                self.read_lots[lot.id] = lot
        last = _order(page[-1]) if page else after
        self.cursors[account] = (last, len(page) < limit)

    def _remember(self, account: AccountRef, lot: StoredLot) -> StoredLot:
        """A lot read by id: the unit of work's version if it has one."""
        mine = self.lots.setdefault(account, {})
        known = mine.get(lot.id)
        if known is not None:
            return known
        mine[lot.id] = lot
        self.read_lots[lot.id] = lot
        return lot

    def _lot_of_transaction(self, account: AccountRef, transaction_id: str) -> StoredLot | None:
        for lot in self.lots.get(account, {}).values():
            if lot.transaction_id == transaction_id:
                return lot
        if not self.made.get(account, 0):
            return None
        assert self.session is not None
        stored = lot_store.lot_of_transaction(self.session, transaction_id)
        if stored is None or stored.account_id != self.account_ids[account]:
            return None
        return self._remember(account, stored)

    def _draws_of(self, account: AccountRef, debit_id: str) -> dict[str, StoredDraw]:
        """The draws of a debit of ``account``, read once (none when it never had a lot)."""
        draws = self.draws.get(debit_id)
        if draws is not None:
            return draws
        draws = {}
        if self.made.get(account, 0):
            assert self.session is not None
            for draw, lot in lot_store.draws_of(self.session, debit_id):
                self._remember(account, lot)
                draws[draw.lot_id] = draw
                self.read_draws[(debit_id, draw.lot_id)] = draw
        self.draws[debit_id] = draws
        return draws
