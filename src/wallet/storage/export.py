"""The ledger export's SQL: the entries of a time range, in pages, from one snapshot.

The range is half-open: an entry belongs to it when ``since_us <= created_at_us < until_us``, so
consecutive ranges (one day, then the next) export every entry exactly once.

Pages are found by keyset (``entries.id > last id seen ORDER BY id LIMIT page``), never by
OFFSET: each page costs the same however deep into the range it starts, and the caller holds one
page at a time. Every page and the count are read in ``database.read_snapshot``, one read-only
unit of work that sees a single instant of the ledger, so an entry committed during the export
neither appears in a later page nor makes the count wrong.
"""

from dataclasses import dataclass

from .database import Session


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """One entry with what a reader needs to understand it: its transaction, account, asset."""

    entry_id: int
    transaction_id: str
    transaction_type: str
    created_at_us: int
    owner_type: str
    owner_id: str
    asset_code: str
    scale: int
    amount_minor: int
    balance_before: int
    balance_after: int
    user_id: str | None
    description: str | None
    # The transaction's metadata as stored: a JSON object, None when none.
    metadata: str | None


def count_entries(session: Session, since_us: int, until_us: int) -> int:
    row = session.one(
        "SELECT count(*) FROM entries WHERE created_at_us >= ? AND created_at_us < ?",
        (since_us, until_us),
    )
    assert row is not None
    return int(row[0])


def entries_page(
    session: Session, since_us: int, until_us: int, after_id: int, limit: int
) -> list[EntryRecord]:
    """At most ``limit`` entries of the range with an id above ``after_id``, in id order."""
    rows = session.all(
        "SELECT e.id, e.transaction_id, t.transaction_type, e.created_at_us, acc.owner_type,"
        " acc.owner_id, acc.asset_code, a.scale, e.amount_minor, e.balance_before,"
        " e.balance_after, t.user_id, t.description, t.metadata"
        " FROM entries e"
        " JOIN transactions t ON t.id = e.transaction_id"
        " JOIN accounts acc ON acc.id = e.account_id"
        " JOIN assets a ON a.code = acc.asset_code"
        " WHERE e.id > ? AND e.created_at_us >= ? AND e.created_at_us < ?"
        " ORDER BY e.id LIMIT ?",
        (after_id, since_us, until_us, limit),
    )
    return [
        EntryRecord(
            entry_id=int(row[0]),
            transaction_id=row[1],
            transaction_type=row[2],
            created_at_us=int(row[3]),
            owner_type=row[4],
            owner_id=row[5],
            asset_code=row[6],
            scale=int(row[7]),
            amount_minor=int(row[8]),
            balance_before=int(row[9]),
            balance_after=int(row[10]),
            user_id=row[11],
            description=row[12],
            metadata=row[13],
        )
        for row in rows
    ]
