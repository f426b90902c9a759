"""The ledger audit's SQL: set-based queries that find where the books do not balance.

Every query runs inside ``database.read_snapshot``, one read-only unit of work that sees a single
instant of the ledger (SQLite: a deferred BEGIN, whose first read fixes the WAL snapshot;
PostgreSQL: REPEATABLE READ), so a write committed while the audit runs can never look like a
discrepancy.

The database does the work: sums by GROUP BY, the chain of balances by a LAG window over each
account's entries in id order. Python receives only the counts and the rows that are wrong, at
most ``limit`` of them per query, so an audit of millions of entries costs a few scans, not
millions of rows in memory.
"""

from dataclasses import dataclass

from wallet.config import Backend
from wallet.domain.ledger import ISSUANCE, OwnerType

from .database import Session

# The one account allowed below zero, as SQL over an accounts row aliased ``acc``.
_IS_ISSUANCE = f"(acc.owner_type = '{OwnerType.SYSTEM.value}' AND acc.owner_id = '{ISSUANCE}')"


@dataclass(frozen=True, slots=True)
class Counts:
    accounts: int
    transactions: int


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """An account's stored balance, and the sum of its entries where the check needs it."""

    owner_type: str
    owner_id: str
    asset_code: str
    balance_minor: int
    entries_sum_minor: int | None = None


@dataclass(frozen=True, slots=True)
class EntryLink:
    """An entry whose arithmetic is wrong or that does not start where its predecessor ended.

    ``previous_balance_after`` is None for an account's first entry, which must start from zero.
    """

    entry_id: int
    transaction_id: str
    owner_type: str
    owner_id: str
    asset_code: str
    amount_minor: int
    balance_before: int
    balance_after: int
    previous_balance_after: int | None


@dataclass(frozen=True, slots=True)
class TransactionSum:
    """A transaction whose entries do not sum to zero, or that has fewer than two."""

    transaction_id: str
    asset_code: str
    entry_count: int
    entries_sum_minor: int


@dataclass(frozen=True, slots=True)
class AssetSupply:
    asset_code: str
    supply_minor: int
    held_minor: int
    issuance_minor: int


@dataclass(frozen=True, slots=True)
class OrphanEntry:
    entry_id: int
    transaction_id: str


def counts(session: Session) -> Counts:
    row = session.one("SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM transactions)")
    assert row is not None
    return Counts(accounts=int(row[0]), transactions=int(row[1]))


def balances_off_their_entries(session: Session, limit: int) -> list[AccountBalance]:
    rows = session.all(
        "SELECT acc.owner_type, acc.owner_id, acc.asset_code, acc.balance_minor,"
        " coalesce(e.total, 0)"
        " FROM accounts acc LEFT JOIN"
        " (SELECT account_id, sum(amount_minor) AS total FROM entries GROUP BY account_id) e"
        " ON e.account_id = acc.id"
        " WHERE acc.balance_minor <> coalesce(e.total, 0)"
        " ORDER BY acc.id LIMIT ?",
        (limit,),
    )
    return [AccountBalance(t, o, a, int(b), int(s)) for t, o, a, b, s in rows]


def broken_entry_links(session: Session, limit: int) -> list[EntryLink]:
    rows = session.all(
        "SELECT c.id, c.transaction_id, acc.owner_type, acc.owner_id, acc.asset_code,"
        " c.amount_minor, c.balance_before, c.balance_after, c.previous_after"
        " FROM (SELECT e.id, e.transaction_id, e.account_id, e.amount_minor, e.balance_before,"
        "   e.balance_after,"
        "   LAG(e.balance_after) OVER (PARTITION BY e.account_id ORDER BY e.id) AS previous_after"
        "   FROM entries e) c"
        " JOIN accounts acc ON acc.id = c.account_id"
        " WHERE c.balance_after <> c.balance_before + c.amount_minor"
        " OR c.balance_before <> coalesce(c.previous_after, 0)"
        " ORDER BY c.id LIMIT ?",
        (limit,),
    )
    return [
        EntryLink(
            entry_id=int(row[0]),
            transaction_id=row[1],
            owner_type=row[2],
            owner_id=row[3],
            asset_code=row[4],
            amount_minor=int(row[5]),
            balance_before=int(row[6]),
            balance_after=int(row[7]),
            previous_balance_after=None if row[8] is None else int(row[8]),
        )
        for row in rows
    ]


def unbalanced_transactions(session: Session, limit: int) -> list[TransactionSum]:
    rows = session.all(
        "SELECT t.id, t.asset_code, count(e.id), coalesce(sum(e.amount_minor), 0)"
        " FROM transactions t LEFT JOIN entries e ON e.transaction_id = t.id"
        " GROUP BY t.seq, t.id, t.asset_code"
        " HAVING count(e.id) < 2 OR coalesce(sum(e.amount_minor), 0) <> 0"
        " ORDER BY t.seq LIMIT ?",
        (limit,),
    )
    return [TransactionSum(i, a, int(n), int(s)) for i, a, n, s in rows]


def negative_accounts(session: Session, limit: int) -> list[AccountBalance]:
    """Accounts below zero, the issuance accounts excepted."""
    rows = session.all(
        "SELECT acc.owner_type, acc.owner_id, acc.asset_code, acc.balance_minor"
        f" FROM accounts acc WHERE acc.balance_minor < 0 AND NOT {_IS_ISSUANCE}"
        " ORDER BY acc.id LIMIT ?",
        (limit,),
    )
    return [AccountBalance(t, o, a, int(b)) for t, o, a, b in rows]


def asset_supplies(session: Session) -> list[AssetSupply]:
    """Per asset: its supply, the sum of its accounts but issuance, and its issuance account."""
    rows = session.all(
        "SELECT a.code, a.supply_minor,"
        f" coalesce(sum(CASE WHEN {_IS_ISSUANCE} THEN 0 ELSE acc.balance_minor END), 0),"
        f" coalesce(sum(CASE WHEN {_IS_ISSUANCE} THEN acc.balance_minor ELSE 0 END), 0)"
        " FROM assets a LEFT JOIN accounts acc ON acc.asset_code = a.code"
        " GROUP BY a.code, a.supply_minor ORDER BY a.code"
    )
    return [AssetSupply(c, int(s), int(h), int(i)) for c, s, h, i in rows]


def orphan_entries(session: Session, limit: int) -> list[OrphanEntry]:
    rows = session.all(
        "SELECT e.id, e.transaction_id FROM entries e"
        " LEFT JOIN transactions t ON t.id = e.transaction_id"
        " WHERE t.id IS NULL ORDER BY e.id LIMIT ?",
        (limit,),
    )
    return [OrphanEntry(int(i), t) for i, t in rows]


@dataclass(frozen=True, slots=True)
class MetadataMismatch:
    """A member of a transaction's metadata missing from the index the searches read, or a row
    of that index that its transaction's metadata does not hold."""

    transaction_id: str | None
    seq: int
    key: str
    value: str
    in_transaction: bool


def metadata_mismatches(session: Session, limit: int) -> list[MetadataMismatch]:
    """Where ``transaction_metadata`` and the transactions' metadata disagree: the index must
    hold exactly one row per member, or a search by reference would miss (or invent) one."""
    if session.backend is Backend.POSTGRESQL:
        members = "jsonb_each_text(t.metadata::jsonb) AS j"
    else:
        members = "json_each(t.metadata) AS j"
    rows = session.all(
        "SELECT t.id, t.seq, j.key, j.value, 1 FROM transactions t CROSS JOIN " + members
        + " WHERE t.metadata IS NOT NULL AND NOT EXISTS (SELECT 1 FROM transaction_metadata m"
        " WHERE m.key = j.key AND m.value = j.value AND m.seq = t.seq)"
        " UNION ALL"
        " SELECT t.id, m.seq, m.key, m.value, 0 FROM transaction_metadata m"
        " LEFT JOIN transactions t ON t.seq = m.seq"
        " WHERE t.seq IS NULL OR NOT EXISTS (SELECT 1 FROM " + members.replace(" AS j", " AS j2")
        + " WHERE j2.key = m.key AND j2.value = m.value)"
        " ORDER BY 2 LIMIT ?",
        (limit,),
    )  # fmt: skip
    return [MetadataMismatch(i, int(s), k, v, bool(found)) for i, s, k, v, found in rows]


@dataclass(frozen=True)
class EventMismatch:
    what: str  # "missing", "orphan", "doubled", "gap"
    subject: str  # a transaction id, or a position range


def event_mismatches(session: Session, limit: int) -> list[EventMismatch]:
    """Where the outbox and the ledger disagree: a transaction (made since the first event kept)
    without its ``transaction.created`` event, such an event without its transaction or twice,
    and positions with a gap or beyond the last one given out."""
    if session.backend is Backend.POSTGRESQL:
        named = "(e.data::jsonb ->> 'id')"
    else:
        named = "json_extract(e.data, '$.id')"
    created = f"SELECT {named} FROM events e WHERE e.type = 'transaction.created'"
    rows = session.all(
        "SELECT 'missing', t.id FROM transactions t"
        " WHERE t.created_at_us >= (SELECT min(created_at_us) FROM events)"
        f" AND t.id NOT IN ({created})"
        " UNION ALL"
        f" SELECT 'orphan', {named} FROM events e WHERE e.type = 'transaction.created'"
        " AND " + named + " NOT IN (SELECT id FROM transactions)"
        " UNION ALL"
        f" SELECT 'doubled', {named} FROM events e WHERE e.type = 'transaction.created'"
        f" GROUP BY {named} HAVING count(*) > 1"
        " ORDER BY 2 LIMIT ?",
        (limit,),
    )  # fmt: skip
    found = [EventMismatch(what, str(subject)) for what, subject in rows]
    span = session.one(
        "SELECT count(*), min(position), max(position),"
        " (SELECT last_position FROM event_positions) FROM events"
    )
    assert span is not None
    count, first, last, given = span
    if count and (last - first + 1 != count or last != given):
        found.append(EventMismatch("gap", f"{count} events at {first}..{last} of {given}"))
    return found[:limit]


# --- lots (service/lots.py) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountLots:
    """An account whose lots_open_minor is not the sum of its open lots, or is above its
    balance, or whose lots_made is not the number of its lots (at 0 its writes skip its lots)."""

    owner_type: str
    owner_id: str
    asset_code: str
    balance_minor: int
    lots_open_minor: int
    open_lots_minor: int
    lots_made: int
    lots: int


def accounts_off_their_lots(session: Session, limit: int) -> list[AccountLots]:
    rows = session.all(
        "SELECT acc.owner_type, acc.owner_id, acc.asset_code, acc.balance_minor,"
        " acc.lots_open_minor, coalesce(l.total, 0), acc.lots_made, coalesce(l.made, 0)"
        " FROM accounts acc LEFT JOIN"
        " (SELECT account_id, sum(remaining_minor) AS total, count(*) AS made FROM lots"
        "  GROUP BY account_id) l ON l.account_id = acc.id"
        " WHERE acc.lots_open_minor <> coalesce(l.total, 0)"
        " OR coalesce(l.total, 0) > acc.balance_minor AND coalesce(l.total, 0) > 0"
        " OR acc.lots_made <> coalesce(l.made, 0)"
        " ORDER BY acc.id LIMIT ?",
        (limit,),
    )
    return [
        AccountLots(t, o, a, int(b), int(r), int(s), int(m), int(n))
        for t, o, a, b, r, s, m, n in rows
    ]


@dataclass(frozen=True, slots=True)
class LotOff:
    """A lot whose ``remaining`` is not its amount less what its draws kept, or that is not its
    credit's (a top-up or bonus of the same amount, to the lot's account)."""

    lot_id: str
    transaction_id: str
    amount_minor: int
    remaining_minor: int
    kept_minor: int
    credit_matches: bool


def lots_off_their_draws(session: Session, limit: int) -> list[LotOff]:
    rows = session.all(
        "SELECT l.id, l.transaction_id, l.amount_minor, l.remaining_minor, coalesce(d.kept, 0),"
        " CASE WHEN t.transaction_type IN ('topup', 'bonus') AND t.amount_minor = l.amount_minor"
        "  AND e.id IS NOT NULL THEN 1 ELSE 0 END AS credit_matches"
        " FROM lots l"
        " LEFT JOIN (SELECT lot_id, sum(amount_minor - returned_minor) AS kept FROM lot_draws"
        "  GROUP BY lot_id) d ON d.lot_id = l.id"
        " LEFT JOIN transactions t ON t.id = l.transaction_id"
        " LEFT JOIN entries e ON e.transaction_id = l.transaction_id"
        "  AND e.account_id = l.account_id AND e.amount_minor = l.amount_minor"
        " WHERE l.remaining_minor <> l.amount_minor - coalesce(d.kept, 0)"
        " OR t.id IS NULL OR t.transaction_type NOT IN ('topup', 'bonus')"
        " OR t.amount_minor <> l.amount_minor OR e.id IS NULL"
        " ORDER BY l.id LIMIT ?",
        (limit,),
    )
    return [LotOff(i, t, int(a), int(r), int(k), bool(m)) for i, t, a, r, k, m in rows]


@dataclass(frozen=True, slots=True)
class ExpiryOff:
    """An ``expiry`` transaction that is not one or more draws, together of the amount its
    user's entry took, from lots of that user's account that were due when it was made, never
    given back."""

    transaction_id: str
    draws: int
    drawn_minor: int
    returned_minor: int
    entry_minor: int
    lots_elsewhere: int
    lots_not_due: int


# Per draw of an expiry: 1 when the lot is another account's than the one the expiry debited;
# 1 when the lot's expiry was after the expiry transaction was made (its unit of work's instant).
_ELSEWHERE = "CASE WHEN l.id IS NULL OR l.account_id = ue.account_id THEN 0 ELSE 1 END"
_NOT_DUE = "CASE WHEN l.expires_at_us > t.created_at_us THEN 1 ELSE 0 END"


def expiries_off_their_lots(session: Session, limit: int) -> list[ExpiryOff]:
    # An expiry has one debiting entry (more is reported), so the join does not repeat its draws.
    rows = session.all(
        "SELECT t.id, count(d.lot_id), coalesce(sum(d.amount_minor), 0),"
        " coalesce(sum(d.returned_minor), 0), coalesce(min(-ue.amount_minor), 0),"
        f" coalesce(sum({_ELSEWHERE}), 0), coalesce(sum({_NOT_DUE}), 0)"
        " FROM transactions t"
        " LEFT JOIN entries ue ON ue.transaction_id = t.id AND ue.amount_minor < 0"
        " LEFT JOIN lot_draws d ON d.transaction_id = t.id"
        " LEFT JOIN lots l ON l.id = d.lot_id"
        " WHERE t.transaction_type = 'expiry'"
        " GROUP BY t.seq, t.id"
        " HAVING count(d.lot_id) = 0 OR count(DISTINCT ue.id) <> 1"
        " OR coalesce(sum(d.amount_minor), 0) <> coalesce(min(-ue.amount_minor), 0)"
        " OR coalesce(sum(d.returned_minor), 0) <> 0"
        f" OR coalesce(sum({_ELSEWHERE}), 0) <> 0 OR coalesce(sum({_NOT_DUE}), 0) <> 0"
        " ORDER BY t.seq LIMIT ?",
        (limit,),
    )
    return [
        ExpiryOff(i, int(n), int(a), int(r), int(e), int(x), int(d)) for i, n, a, r, e, x, d in rows
    ]
