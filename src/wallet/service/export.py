"""The ledger export for finance: every entry of a time range, as flat rows of text.

A row names its entry (its id, a number), its transaction (id, type, user, description), the
account it moved (owner type and id, asset), and the amount and balances as decimal strings with
exactly the asset's scale, so a spreadsheet never sees a float. The range is half-open,
``since`` included and ``until`` excluded, and the rows come in entry id order.

Rows are read a page at a time (EXPORT_PAGE_SIZE) from one snapshot of the ledger and yielded as
they are read, so an export of any size takes constant memory.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from wallet.domain.money import format_minor
from wallet.limits import EXPORT_IDLE_TIMEOUT_MS, EXPORT_PAGE_SIZE, EXPORT_STATEMENT_TIMEOUT_MS
from wallet.storage import Database, Session
from wallet.storage import export as store
from wallet.storage.database import read_snapshot

from .clock import format_us
from .render import metadata_view

# A row's values; ``metadata`` is the transaction's references as an object (a JSON line keeps
# it so; a CSV cell holds its JSON text).
ExportRow = dict[str, int | str | dict[str, str] | None]

# The columns of an exported row, in order: the CSV header and the keys of a JSON line.
EXPORT_FIELDS = (
    "entry_id",
    "transaction_id",
    "transaction_type",
    "created_at",
    "account_type",
    "account_id",
    "asset_code",
    "amount",
    "balance_before",
    "balance_after",
    "user_id",
    "description",
    "metadata",
)


class LedgerExport:
    """The entries of one range, read from one snapshot that stays open while this object does."""

    def __init__(self, session: Session, since_us: int, until_us: int) -> None:
        self._session = session
        self._since_us = since_us
        self._until_us = until_us

    def count(self) -> int:
        """How many rows ``rows`` yields (the same snapshot, so exactly that many)."""
        return store.count_entries(self._session, self._since_us, self._until_us)

    def rows(self) -> Iterator[ExportRow]:
        after_id = 0
        while True:
            page = store.entries_page(
                self._session, self._since_us, self._until_us, after_id, EXPORT_PAGE_SIZE
            )
            yield from (_row(record) for record in page)
            if len(page) < EXPORT_PAGE_SIZE:
                return
            after_id = page[-1].entry_id


@contextmanager
def export_ledger(database: Database, since_us: int, until_us: int) -> Iterator[LedgerExport]:
    """Open an export of the entries with ``since_us <= created_at_us < until_us``.

    Raises Unavailable, on opening or while rows are read, when the database cannot be read.
    """
    with (
        database.reading() as session,
        read_snapshot(session, EXPORT_STATEMENT_TIMEOUT_MS, EXPORT_IDLE_TIMEOUT_MS),
    ):
        yield LedgerExport(session, since_us, until_us)


def _row(record: store.EntryRecord) -> ExportRow:
    scale = record.scale
    return {
        "entry_id": record.entry_id,
        "transaction_id": record.transaction_id,
        "transaction_type": record.transaction_type,
        "created_at": format_us(record.created_at_us),
        "account_type": record.owner_type,
        "account_id": record.owner_id,
        "asset_code": record.asset_code,
        "amount": format_minor(record.amount_minor, scale),
        "balance_before": format_minor(record.balance_before, scale),
        "balance_after": format_minor(record.balance_after, scale),
        "user_id": record.user_id,
        "description": record.description,
        "metadata": metadata_view(record.metadata),
    }
