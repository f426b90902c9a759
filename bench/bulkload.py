"""Build a ledger of millions of entries, fast, in the state the service itself would have left.

    python bench/bulkload.py sqlite:////tmp/wallet-10m.db                      # 10,000,000 entries
    python bench/bulkload.py postgresql://postgres@127.0.0.1:5432/bench_bulk --entries 2000000

For a fresh database (it refuses one that holds transactions already):

1. migrates it with the service's own code (the real schema), and seeds it with the service's own
   seed (``WalletService.start``), its clock set to the start of the history;
2. computes a history of ``--entries`` entries (two per transaction) for the bench users
   bench_00001 … (``--users``, as bench/populate.py names them): first every user's opening
   top-up of 100.00 GC (populate.py's), then the mix of bench/wrk/post_transaction.lua, 45 %
   top-ups, 15 % bonuses and 40 % purchases in GC (70 %), DI (20 %) or LP (10 %) with its amounts
   and descriptions; a purchase the user cannot afford is refused and leaves no trace, as in the
   service. Each transaction moves funds between the user's account and the asset's treasury,
   debit entry first, with the running balances of both accounts; ids are UUIDs version 7 of the
   transaction's instant (wallet.service.clock's format), instants increase over ``--days`` up to
   now, and a ``--keyed-share`` of the transactions carry an idempotency key, stored with the
   fingerprint and the response body the service would have stored (its own code computes both);
   a ``--metadata-share`` (a third) carry metadata, ``{"order_id": "bulk-order-N", "store":
   "ios|android|web"}`` (N counts them from 1), stored as the service stores it: the object with
   its keys sorted in ``transactions.metadata``, one ``transaction_metadata`` row per member under
   the transaction's seq, and in a keyed transaction's fingerprint and response body;
3. writes it in large batches in one unit of work: ``executemany`` on SQLite (journal and syncs
   off for the load, WAL again at the end), ``COPY`` on PostgreSQL (then ``ANALYZE``), in the
   order the service would have written it, while a child process computes the next batches.
   The per-row triggers of the tables it writes are dropped for the load and created again
   afterwards from their own definitions, read from the database before the drop
   (``sqlite_master``, ``pg_get_triggerdef``); on PostgreSQL so are their foreign keys
   (``pg_get_constraintdef``), which then check every row in one join per key instead of a
   query per row. The indexes, primary keys, UNIQUE constraints, and SQLite's foreign keys, stay
   on. Accounts are opened at zero at their first credit, and get their
   final balance and last entry at the end;
4. runs the service's ledger audit (``verify_ledger``, as ``wallet verify``), checks what the
   audit does not (each account's ``last_entry_id``, that ``transaction_metadata`` holds exactly
   the members of the transactions' metadata, the triggers and indexes, on PostgreSQL the
   identity sequences), prints the result and exits 1 if anything is wrong.

The indexes are kept during the load on purpose: built afterwards (``--rebuild-indexes``, twice
as fast) they come out packed full, unlike the indexes of a ledger that grew by inserts, and the
first writes on such a database split a page in every index they touch. Measured at 10 M entries
on SQLite: 190 KiB written and 130 KiB read per write (WAL and checkpoints) against 59 and 68 KiB
on the same data loaded with its indexes in place.

SQLite: a load that fails half-way leaves a file to throw away (no journal during the load).
PostgreSQL: the load is one transaction, so a failed load leaves the database as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import queue
import random
import sqlite3
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

# Like main.py: the wallet package from src/, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import orjson
import psycopg

from populate import opening_topup, user_id
from wallet.config import Backend, Settings
from wallet.domain.ledger import (
    TREASURY,
    OwnerType,
    PostedEntry,
    PostedTransaction,
    TransactionType,
)
from wallet.service import clock
from wallet.service.commands import PostingCommand, metadata_json
from wallet.service.posting import CREATED
from wallet.service.render import transaction_view
from wallet.service.verify import verify_ledger
from wallet.service.wallet import WalletService
from wallet.storage import open_database
from wallet.storage.database import postgresql_conninfo, sqlite_path

ENTRIES_DEFAULT = 10_000_000
USERS_DEFAULT = 10_000
TRANSACTIONS_PER_BATCH = 50_000
SQLITE_CACHE_KIB = 1024 * 1024  # the loader's own page cache: the indexes' hot pages fit

# The mix of bench/wrk/post_transaction.lua: kinds and assets with their shares, amounts in minor
# units (inclusive), descriptions.
KINDS = (("topup", 0.45), ("bonus", 0.15), ("purchase", 0.40))
ASSETS = (("GC", 0.70), ("DI", 0.20), ("LP", 0.10))
AMOUNTS = {"topup": (100, 10_000), "bonus": (1, 500), "purchase": (100, 8_000)}
DESCRIPTIONS = {
    "topup": ("Purchased Gold Coins pack", "Store top-up", "Starter pack"),
    "bonus": ("Daily login bonus", "Referral bonus", "Season reward"),
    "purchase": ("Bought in-game item", "Unlocked level pack", "Cosmetic skin"),
}
KEYED_SHARE_DEFAULT = 0.20  # as the wrk workload: a fifth of the requests carry a key
# A third of the transactions carry the caller's references, as the metadata variant of the wrk
# workload's requests do: an order id of their own, and the store that sold it.
METADATA_SHARE_DEFAULT = 1 / 3
STORES = ("ios", "android", "web")
KEY_OWNER = ""  # the open caller's key id (wallet.service.keys.OPEN_CALLER), as in the bench
DAYS_DEFAULT = 365

# The tables the load writes, whose per-row triggers are dropped for it.
LEDGER_TABLES = (
    "accounts",
    "transactions",
    "transaction_metadata",
    "entries",
    "idempotency_keys",
)

ENTRY_COLUMNS = (
    "id",
    "transaction_id",
    "account_id",
    "amount_minor",
    "balance_before",
    "balance_after",
    "created_at_us",
)
TRANSACTION_COLUMNS = (
    "seq",
    "id",
    "transaction_type",
    "user_id",
    "asset_code",
    "amount_minor",
    "description",
    "idempotency_key",
    "created_at_us",
    "metadata",
)
METADATA_COLUMNS = ("key", "value", "seq")
ACCOUNT_COLUMNS = ("id", "owner_type", "owner_id", "asset_code", "balance_minor", "created_at_us")
KEY_COLUMNS = (
    "scope",
    "idempotency_key",
    "fingerprint",
    "outcome",
    "response_body",
    "transaction_id",
    "created_at_us",
)

Row = tuple[Any, ...]
USER, SYSTEM = OwnerType.USER.value, OwnerType.SYSTEM.value


# --- the history --------------------------------------------------------------------------------


def transaction_id_at(at_us: int, random_bits: int) -> str:
    """A UUID version 7 for the instant ``at_us``, as wallet.service.clock.new_transaction_id
    makes one for the present: 48 bits of milliseconds, the version, 74 random bits, the RFC 4122
    variant. ``random_bits`` holds the 74 random bits."""
    value = (
        ((at_us // 1000) & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | (random_bits >> 62) << 64
        | 0x2 << 62
        | (random_bits & ((1 << 62) - 1))
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(slots=True)
class Account:
    """What the loader tracks of an account: its id, balance, last entry and first use."""

    id: int
    owner_type: str
    owner_id: str
    asset_code: str
    balance_minor: int
    last_entry_id: int | None
    created_at_us: int
    touched: bool = False


@dataclass(slots=True)
class Batch:
    """Rows to write, in an order the foreign keys accept: accounts, transactions, their
    metadata, entries, keys."""

    accounts: list[Row] = field(default_factory=list)
    transactions: list[Row] = field(default_factory=list)
    metadata: list[Row] = field(default_factory=list)
    entries: list[Row] = field(default_factory=list)
    keys: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    transactions: int
    users: int
    start_us: int
    end_us: int
    keyed_share: float
    metadata_share: float
    seed: int


@dataclass(slots=True)
class Tally:
    by_kind: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    keyed: int = 0
    with_metadata: int = 0


class Ledger:
    """The ledger's state as the history is computed: every account, and the next ids.

    Only what ``wallet.domain.ledger.post`` does for a user flow, without its objects: the debit
    entry, then the credit entry, each from its account's current balance; a debit that would
    take a user below zero refuses the transaction.
    """

    def __init__(
        self, accounts: Sequence[Account], scales: dict[str, int], next_ids: tuple[int, int, int]
    ) -> None:
        self.accounts = {(a.owner_type, a.owner_id, a.asset_code): a for a in accounts}
        self.scales = scales
        self.next_account_id, self.next_entry_id, self.next_seq = next_ids
        self.treasuries = {code: self.accounts[(SYSTEM, TREASURY, code)] for code in scales}

    def open_account(self, user: str, asset_code: str, at_us: int, batch: Batch) -> Account:
        account = Account(self.next_account_id, USER, user, asset_code, 0, None, at_us)
        self.next_account_id += 1
        self.accounts[(USER, user, asset_code)] = account
        batch.accounts.append(
            (account.id, account.owner_type, user, asset_code, 0, account.created_at_us)
        )
        return account

    def post(
        self,
        kind: str,
        user: str,
        asset_code: str,
        amount: int,
        description: str,
        key: str | None,
        metadata: dict[str, str] | None,
        at_us: int,
        transaction_id: str,
        batch: Batch,
    ) -> bool:
        """Post one user flow; False (and nothing written) if the ledger refuses it."""
        account = self.accounts.get((USER, user, asset_code))
        treasury = self.treasuries[asset_code]
        if kind == "purchase":
            if account is None or account.balance_minor < amount:
                return False  # insufficient funds (or an unknown user): refused, no trace
            debit, credit = account, treasury
        else:
            if account is None:  # a credited account opens on first use
                account = self.open_account(user, asset_code, at_us, batch)
            debit, credit = treasury, account
        entry_id = self.next_entry_id
        self.next_entry_id += 2
        debit_before, credit_before = debit.balance_minor, credit.balance_minor
        debit.balance_minor, credit.balance_minor = debit_before - amount, credit_before + amount
        debit.last_entry_id, credit.last_entry_id = entry_id, entry_id + 1
        debit.touched = credit.touched = True
        batch.entries.append(
            (entry_id, transaction_id, debit.id, -amount, debit_before, debit.balance_minor, at_us)
        )
        batch.entries.append(
            (entry_id + 1, transaction_id, credit.id, amount, credit_before,
             credit.balance_minor, at_us)
        )  # fmt: skip
        seq = self.next_seq
        self.next_seq += 1
        # As the service stores them (storage.ledger.insert_transactions): the object as
        # commands.metadata_json writes it, and one row per member under the transaction's seq.
        stored_metadata = metadata_json(metadata)
        batch.transactions.append(
            (seq, transaction_id, kind, user, asset_code, amount, description, key, at_us,
             stored_metadata)
        )  # fmt: skip
        if metadata:
            batch.metadata.extend((name, value, seq) for name, value in metadata.items())
        if key is not None:
            batch.keys.append(
                self._stored_outcome(
                    kind, user, asset_code, amount, description, key, stored_metadata, at_us,
                    transaction_id,
                    (PostedEntry(debit.owner_type, debit.owner_id, -amount, debit_before,
                                 debit.balance_minor),
                     PostedEntry(credit.owner_type, credit.owner_id, amount, credit_before,
                                 credit.balance_minor)),
                )
            )  # fmt: skip
        return True

    def _stored_outcome(
        self,
        kind: str,
        user: str,
        asset_code: str,
        amount: int,
        description: str,
        key: str,
        metadata: str | None,
        at_us: int,
        transaction_id: str,
        entries: tuple[PostedEntry, PostedEntry],
    ) -> Row:
        """The idempotency_keys row of a keyed transaction: the service's own fingerprint and
        response body (wallet.service.posting._to_stored)."""
        command = PostingCommand(
            transaction_type=TransactionType(kind),
            user_id=user,
            asset_code=asset_code,
            amount_minor=amount,
            description=description,
            idempotency_key=key,
            key_owner=KEY_OWNER,
            metadata=metadata,
        )
        transaction = PostedTransaction(
            id=transaction_id,
            seq=0,
            transaction_type=kind,
            user_id=user,
            asset_code=asset_code,
            amount_minor=amount,
            description=description,
            idempotency_key=key,
            created_at_us=at_us,
            entries=entries,
            metadata=metadata,
        )
        body = orjson.dumps(transaction_view(transaction, self.scales[asset_code])).decode()
        return (KEY_OWNER, key, command.fingerprint, CREATED, body, transaction_id, at_us)

    def touched_accounts(self) -> list[Account]:
        return [account for account in self.accounts.values() if account.touched]


def history(ledger: Ledger, plan: Plan, tally: Tally) -> Iterator[Batch]:
    """The plan's transactions, in batches of TRANSACTIONS_PER_BATCH, in the order of time."""
    rng = random.Random(plan.seed)
    # The metadata's own generator: the history (kinds, users, amounts, keys) is the same with
    # or without metadata, for a seed.
    references = random.Random(f"metadata {plan.seed}")
    users = [user_id(number) for number in range(1, plan.users + 1)]
    # Each transaction gets its own slot of ``step`` microseconds and a random instant in it, so
    # instants strictly increase and the last one is before ``end_us``.
    step = (plan.end_us - plan.start_us) // (plan.transactions + 1)
    if step < 1:
        raise SystemExit("--days is too short for that many transactions")
    slots = itertools.count(1)
    kinds, assets = _cumulative(KINDS), _cumulative(ASSETS)
    batch = Batch()
    posted = 0
    while posted < plan.transactions:
        at_us = plan.start_us + next(slots) * step + int(rng.random() * step)
        transaction_id = transaction_id_at(at_us, rng.getrandbits(74))
        if posted < plan.users:
            # bench/populate.py's opening top-up, user by user.
            opening = opening_topup(posted + 1)
            assert opening.user_id is not None
            assert opening.amount_minor is not None
            kind, user, asset_code = (
                opening.transaction_type.value,
                opening.user_id,
                opening.asset_code,
            )
            amount, description, key = opening.amount_minor, opening.description or "", None
            metadata = None
        else:
            kind = _pick(kinds, rng.random())
            user = users[int(rng.random() * plan.users)]
            asset_code = _pick(assets, rng.random())
            low, high = AMOUNTS[kind]
            amount = low + int(rng.random() * (high - low + 1))
            options = DESCRIPTIONS[kind]
            description = options[int(rng.random() * len(options))]
            key = f"bulk-{ledger.next_seq}" if rng.random() < plan.keyed_share else None
            metadata = None
            if references.random() < plan.metadata_share:
                store = STORES[int(references.random() * len(STORES))]
                metadata = {"order_id": order_id(tally.with_metadata + 1), "store": store}
        if not ledger.post(
            kind, user, asset_code, amount, description, key, metadata, at_us, transaction_id,
            batch,
        ):  # fmt: skip
            tally.refused += 1
            continue
        posted += 1
        tally.by_kind[kind] = tally.by_kind.get(kind, 0) + 1
        tally.keyed += key is not None
        tally.with_metadata += metadata is not None
        if len(batch.transactions) >= TRANSACTIONS_PER_BATCH:
            yield batch
            batch = Batch()
    if batch.transactions:
        yield batch


def order_id(number: int) -> str:
    """The order id of the ``number``-th transaction with metadata (from 1): every one of
    ``bulk-order-1`` … ``bulk-order-N`` names exactly one transaction, so that a reader can pick
    one at random knowing N (bench/wrk/get_transactions_metadata.lua)."""
    return f"bulk-order-{number}"


def _cumulative(weighted: Sequence[tuple[str, float]]) -> list[tuple[float, str]]:
    total, bounds = 0.0, []
    for name, weight in weighted:
        total += weight
        bounds.append((total, name))
    return bounds


def _pick(bounds: Sequence[tuple[float, str]], r: float) -> str:
    for bound, name in bounds:
        if r <= bound:
            return name
    return bounds[-1][1]


@dataclass(frozen=True)
class Computed:
    """The last word of the process that computes the history: the accounts it moved (with their
    final balances and last entries), and its tally."""

    accounts: list[Account]
    tally: Tally


class HistoryProcess:
    """The history's batches, computed by a child process while this one writes them (the two
    halves of the work take about as long); then its Computed."""

    def __init__(self, ledger: Ledger, plan: Plan) -> None:
        self.ledger = ledger
        self.plan = plan
        self.computed: Computed | None = None

    def batches(self) -> Iterator[Batch]:
        context = multiprocessing.get_context("fork")
        channel: multiprocessing.Queue[Batch | Computed | str] = context.Queue(maxsize=4)
        child = context.Process(
            target=_compute,
            args=(self.ledger, self.plan, channel),
            name="bulkload-history",
            daemon=True,
        )
        child.start()
        try:
            while self.computed is None:
                try:
                    item = channel.get(timeout=1)
                except queue.Empty:
                    if not child.is_alive():
                        died = f"the history's process died (exit code {child.exitcode})"
                        raise RuntimeError(died) from None
                    continue
                if isinstance(item, str):
                    raise RuntimeError(f"computing the history failed:\n{item}")
                if isinstance(item, Computed):
                    self.computed = item
                else:
                    yield item
        finally:
            if child.is_alive():
                child.terminate()
            child.join()


def _compute(
    ledger: Ledger, plan: Plan, channel: multiprocessing.Queue[Batch | Computed | str]
) -> None:
    """In the child process: compute the history, hand it over batch by batch, then the rest."""
    try:
        tally = Tally()
        for batch in history(ledger, plan, tally):
            channel.put(batch)
        channel.put(Computed(ledger.touched_accounts(), tally))
    except BaseException:
        channel.put(traceback.format_exc())
        raise


# --- seeding ------------------------------------------------------------------------------------


@contextlib.contextmanager
def clock_at(start_us: int) -> Iterator[None]:
    """Let wallet.service.clock tell the time as from ``start_us``, one microsecond more at every
    reading, so that the seed's rows are dated before the history that follows them (their ids
    and instants then increase with the entries' ids, as in a ledger that grew over time)."""
    ticks = itertools.count()
    fake = SimpleNamespace(time_ns=lambda: (start_us + next(ticks)) * 1000)
    with mock.patch.object(clock, "time", fake):
        yield


def migrate_and_seed(settings: Settings, seed_at_us: int) -> None:
    """The service's own start-up (migrations, seed) on a database that must hold no transaction
    yet; the seed dated ``seed_at_us``."""
    database = open_database(settings)
    try:
        database.migrate()
        with database.reading() as session:
            row = session.one("SELECT count(*) FROM transactions")
        if row is not None and row[0]:
            raise SystemExit(f"the database holds {row[0]} transactions: give a fresh one")
    finally:
        database.close()
    service = WalletService(settings.model_copy(update={"seed": True}))
    with clock_at(seed_at_us):
        service.start()
    service.stop()


def read_ledger(settings: Settings) -> tuple[Ledger, int]:
    """The seeded ledger's accounts, assets and next ids; and the last instant written."""
    database = open_database(settings)
    try:
        with database.reading() as session:
            scales = {code: int(scale) for code, scale in session.all(
                "SELECT code, scale FROM assets ORDER BY code")}  # fmt: skip
            accounts = [
                Account(int(i), t, o, a, int(b), None if e is None else int(e), int(c))
                for i, t, o, a, b, e, c in session.all(
                    "SELECT id, owner_type, owner_id, asset_code, balance_minor, last_entry_id,"
                    " created_at_us FROM accounts ORDER BY id"
                )
            ]
            row = session.one(
                "SELECT (SELECT coalesce(max(id), 0) FROM accounts),"
                " (SELECT coalesce(max(id), 0) FROM entries),"
                " (SELECT coalesce(max(seq), 0) FROM transactions),"
                " (SELECT coalesce(max(created_at_us), 0) FROM transactions)"
            )
    finally:
        database.close()
    assert row is not None
    missing = [code for code, _ in ASSETS if code not in scales]
    if missing:
        raise SystemExit(f"the seed did not create the assets {missing}")
    next_ids = (int(row[0]) + 1, int(row[1]) + 1, int(row[2]) + 1)
    return Ledger(accounts, scales, next_ids), int(row[3])


# --- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class SchemaObject:
    """A trigger, an index or a foreign key as the database describes it, to drop and create
    again (``definition`` is the statement that creates it)."""

    kind: str  # "trigger", "index" or (PostgreSQL) "foreign key"
    table: str
    name: str
    definition: str


class Loader(ABC):
    """One unit of work that writes the batches, with the per-row triggers of the tables it
    writes dropped meanwhile (on PostgreSQL their foreign keys too), and with
    ``rebuild_indexes`` their secondary indexes; primary keys and UNIQUE constraints stay."""

    def __init__(self, rebuild_indexes: bool) -> None:
        self.rebuild_indexes = rebuild_indexes
        self.before: list[SchemaObject] = []
        self.dropped: list[SchemaObject] = []

    @abstractmethod
    def schema_objects(self) -> list[SchemaObject]:
        """The triggers and secondary indexes of LEDGER_TABLES, in the order of their creation."""

    def to_drop(self) -> list[SchemaObject]:
        """Note the schema as it is, and choose what to drop for the load."""
        self.before = self.schema_objects()
        self.dropped = [o for o in self.before if o.kind != "index" or self.rebuild_indexes]
        return self.dropped

    @abstractmethod
    def begin(self) -> None:
        """Start the unit of work and drop what ``to_drop`` chooses (keeping the definitions)."""

    @abstractmethod
    def write(self, batch: Batch) -> None: ...

    @abstractmethod
    def finish(self, accounts: Sequence[Account]) -> None:
        """Give the accounts their final balances and last entries, create the schema objects
        again from their definitions, and commit."""

    @abstractmethod
    def last_entry_mismatches(self) -> int:
        """How many accounts do not name their last entry in ``last_entry_id``."""

    @abstractmethod
    def metadata_mismatches(self) -> tuple[int, int]:
        """How many members of the transactions' metadata have no row of their own in
        ``transaction_metadata`` (under their transaction's seq), and how many rows that table
        has beyond the members: with both zero, the table is exactly the members."""

    def checks(self) -> list[str]:
        """What the ledger audit does not check; a description of each problem found."""
        problems = []
        # Compared in order of name: the triggers created again come last in creation order.
        if sorted(self.schema_objects()) != sorted(self.before):
            problems.append("the triggers and indexes are not those the schema had before")
        mismatches = self.last_entry_mismatches()
        if mismatches:
            problems.append(f"{mismatches} accounts do not name their last entry")
        missing, extra = self.metadata_mismatches()
        if missing or extra:
            problems.append(
                f"transaction_metadata lacks {missing} members of the transactions' metadata"
                f" and has {extra} rows more than them"
            )
        return problems

    @abstractmethod
    def close(self) -> None: ...


class SQLiteLoader(Loader):
    def __init__(self, path: str, rebuild_indexes: bool) -> None:
        super().__init__(rebuild_indexes)
        self.connection = sqlite3.connect(path, isolation_level=None)
        # The only connection: the journal can go (a failed load leaves a file to throw away).
        mode = self.connection.execute("PRAGMA journal_mode = OFF").fetchone()[0]
        if mode != "off":
            raise RuntimeError(f"cannot turn the journal off (still {mode}): is the file in use?")
        self.connection.execute("PRAGMA synchronous = OFF")
        self.connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        self.connection.execute("PRAGMA foreign_keys = ON")
        self.connection.execute("PRAGMA threads = 2")  # CREATE INDEX may sort on two CPUs

    def schema_objects(self) -> list[SchemaObject]:
        # Indexes with SQL of their own: not those SQLite makes for a PRIMARY KEY or UNIQUE.
        placeholders = ", ".join("?" * len(LEDGER_TABLES))
        rows = self.connection.execute(
            "SELECT type, tbl_name, name, sql FROM sqlite_master"
            f" WHERE type IN ('trigger', 'index') AND sql IS NOT NULL"
            f" AND tbl_name IN ({placeholders}) ORDER BY rowid",
            LEDGER_TABLES,
        ).fetchall()
        return [SchemaObject(*row) for row in rows]

    def begin(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")
        for item in self.to_drop():
            self.connection.execute(f'DROP {item.kind.upper()} "{item.name}"')

    def write(self, batch: Batch) -> None:
        for table, columns, rows in (
            ("accounts", ACCOUNT_COLUMNS, batch.accounts),
            ("transactions", TRANSACTION_COLUMNS, batch.transactions),
            ("transaction_metadata", METADATA_COLUMNS, batch.metadata),
            ("entries", ENTRY_COLUMNS, batch.entries),
            ("idempotency_keys", KEY_COLUMNS, batch.keys),
        ):
            if rows:
                self.connection.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' * len(columns))})",
                    rows,
                )

    def finish(self, accounts: Sequence[Account]) -> None:
        self.connection.executemany(
            "UPDATE accounts SET balance_minor = ?, last_entry_id = ? WHERE id = ?",
            [(a.balance_minor, a.last_entry_id, a.id) for a in accounts],
        )
        for item in self.dropped:
            self.connection.execute(item.definition)
        # Deferred foreign keys (entries -> transactions) are checked here.
        self.connection.execute("COMMIT")
        mode = self.connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"cannot set the journal back to WAL (still {mode})")

    def last_entry_mismatches(self) -> int:
        row = self.connection.execute(
            "SELECT count(*) FROM accounts acc"
            " WHERE acc.last_entry_id IS NOT (SELECT max(e.id) FROM entries e"
            " WHERE e.account_id = acc.id)"
        ).fetchone()
        return int(row[0])

    def metadata_mismatches(self) -> tuple[int, int]:
        row = self.connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM"
            " transaction_metadata m WHERE m.key = j.key AND m.value = j.value AND m.seq = t.seq)),"
            " (SELECT count(*) FROM transaction_metadata)"
            " FROM transactions t, json_each(t.metadata) j WHERE t.metadata IS NOT NULL"
        ).fetchone()
        members, missing, rows = (int(value) for value in row)
        return missing, rows - (members - missing)

    def close(self) -> None:
        self.connection.close()


class PostgreSQLLoader(Loader):
    # Identity columns whose sequences must move past the ids the load gave explicitly.
    IDENTITIES = (("accounts", "id"), ("entries", "id"), ("transactions", "seq"))

    def __init__(self, conninfo: str, rebuild_indexes: bool) -> None:
        super().__init__(rebuild_indexes)
        self.connection = psycopg.connect(conninfo, autocommit=False)

    def schema_objects(self) -> list[SchemaObject]:
        # Indexes that back no constraint (primary keys and UNIQUE stay), and the foreign keys:
        # checked row by row during a COPY (a query per row and key), but in one join per key
        # when they are added again.
        rows = self.connection.execute(
            "SELECT kind, relname, name, definition FROM ("
            " SELECT 'foreign key' AS kind, c.relname, k.conname AS name,"
            "  format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', c.relname, k.conname,"
            "   pg_get_constraintdef(k.oid)) AS definition, k.oid"
            "  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
            "  WHERE k.contype = 'f' AND pg_table_is_visible(c.oid) AND c.relname = ANY(%s)"
            " UNION ALL"
            " SELECT 'trigger', c.relname, t.tgname, pg_get_triggerdef(t.oid), t.oid"
            "  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            "  WHERE NOT t.tgisinternal AND pg_table_is_visible(c.oid) AND c.relname = ANY(%s)"
            " UNION ALL"
            " SELECT 'index', c.relname, i.relname, pg_get_indexdef(x.indexrelid), i.oid"
            "  FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid"
            "  JOIN pg_class i ON i.oid = x.indexrelid"
            "  WHERE pg_table_is_visible(c.oid) AND c.relname = ANY(%s)"
            "  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)"
            ") o ORDER BY kind, oid",
            (list(LEDGER_TABLES),) * 3,
        ).fetchall()
        return [SchemaObject(*row) for row in rows]

    def begin(self) -> None:
        for item in self.to_drop():
            if item.kind == "trigger":
                self.connection.execute(f'DROP TRIGGER "{item.name}" ON "{item.table}"')
            elif item.kind == "foreign key":
                self.connection.execute(f'ALTER TABLE "{item.table}" DROP CONSTRAINT "{item.name}"')
            else:
                self.connection.execute(f'DROP INDEX "{item.name}"')
        self.connection.execute("SET LOCAL maintenance_work_mem = '256MB'")

    def write(self, batch: Batch) -> None:
        with self.connection.cursor() as cursor:
            for table, columns, rows in (
                ("accounts", ACCOUNT_COLUMNS, batch.accounts),
                ("transactions", TRANSACTION_COLUMNS, batch.transactions),
                ("transaction_metadata", METADATA_COLUMNS, batch.metadata),
                ("entries", ENTRY_COLUMNS, batch.entries),
                ("idempotency_keys", KEY_COLUMNS, batch.keys),
            ):
                if not rows:
                    continue
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

    def finish(self, accounts: Sequence[Account]) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE loaded_accounts"
                " (id BIGINT PRIMARY KEY, balance_minor BIGINT, last_entry_id BIGINT)"
                " ON COMMIT DROP"
            )
            with cursor.copy("COPY loaded_accounts FROM STDIN") as copy:
                for account in accounts:
                    copy.write_row((account.id, account.balance_minor, account.last_entry_id))
            cursor.execute(
                "UPDATE accounts acc SET balance_minor = l.balance_minor,"
                " last_entry_id = l.last_entry_id FROM loaded_accounts l WHERE acc.id = l.id"
            )
            for table, column in self.IDENTITIES:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f" (SELECT max({column}) FROM {table}))"
                )
            for item in self.dropped:
                cursor.execute(item.definition)
        self.connection.commit()
        self.connection.autocommit = True
        # What autovacuum would do soon after: statistics, so the planner knows the tables' size.
        self.connection.execute("ANALYZE")

    def last_entry_mismatches(self) -> int:
        row = self.connection.execute(
            "SELECT count(*) FROM accounts acc WHERE acc.last_entry_id IS DISTINCT FROM"
            " (SELECT max(e.id) FROM entries e WHERE e.account_id = acc.id)"
        ).fetchone()
        return 0 if row is None else int(row[0])

    def metadata_mismatches(self) -> tuple[int, int]:
        row = self.connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM"
            " transaction_metadata m WHERE m.key = j.key AND m.value = j.value AND m.seq = t.seq)),"
            " (SELECT count(*) FROM transaction_metadata)"
            " FROM transactions t, json_each_text(t.metadata::json) j"
            " WHERE t.metadata IS NOT NULL"
        ).fetchone()
        assert row is not None
        members, missing, rows = (int(value) for value in row)
        return missing, rows - (members - missing)

    def checks(self) -> list[str]:
        problems = super().checks()
        for table, column in self.IDENTITIES:
            row = self.connection.execute(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, %s)::regclass)"
                f" >= (SELECT max({column}) FROM {table})",
                (table, column),
            ).fetchone()
            if row is None or not row[0]:
                problems.append(f"the sequence of {table}.{column} is behind its rows")
        return problems

    def close(self) -> None:
        self.connection.close()


# --- main ---------------------------------------------------------------------------------------


def load(args: argparse.Namespace) -> int:
    settings = Settings(database_url=args.database_url, seed=True)
    started = time.monotonic()
    end_us = clock.now_us()
    start_us = end_us - args.days * 86_400_000_000
    migrate_and_seed(settings, start_us)
    ledger, seeded_until_us = read_ledger(settings)
    if seeded_until_us >= start_us + 1_000_000:
        raise SystemExit("the seed was not dated at the start of the history (clock_at)")
    plan = Plan(
        transactions=args.entries // 2,
        users=args.users,
        start_us=start_us + 1_000_000,
        end_us=end_us,
        keyed_share=args.keyed_share,
        metadata_share=args.metadata_share,
        seed=args.seed,
    )
    loader: Loader
    if settings.backend is Backend.SQLITE:
        loader = SQLiteLoader(sqlite_path(settings.database_url), args.rebuild_indexes)
    else:
        loader = PostgreSQLLoader(postgresql_conninfo(settings.database_url), args.rebuild_indexes)
    rows = written = 0
    try:
        loader.begin()
        computing = HistoryProcess(ledger, plan)
        for batch in computing.batches():
            loader.write(batch)
            written += len(batch.transactions)
            rows += len(batch.accounts) + len(batch.transactions) + len(batch.metadata)
            rows += len(batch.entries) + len(batch.keys)
            if args.progress:
                elapsed = time.monotonic() - started
                print(f"  {written:,} transactions, {elapsed:.0f} s", flush=True)
        written_s = time.monotonic() - started
        computed = computing.computed
        assert computed is not None
        loader.finish(computed.accounts)
        loaded_s = time.monotonic() - started
        entries = 2 * plan.transactions
        tally = computed.tally
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(tally.by_kind.items()))
        print(
            f"loaded {entries:,} entries ({plan.transactions:,} transactions: {kinds};"
            f" {tally.keyed:,} with an idempotency key, {tally.with_metadata:,} with metadata"
            f" (order ids bulk-order-1 … bulk-order-{tally.with_metadata});"
            f" {tally.refused:,} purchases refused,"
            f" not written) for {plan.users:,} users over {args.days} days,"
            f" {rows:,} rows in all, into {settings.backend.value} in {loaded_s:.1f} s:"
            f" {entries / loaded_s:,.0f} entries/s, {rows / loaded_s:,.0f} rows/s"
            f" (migrated, seeded, computed and written in {written_s:.1f} s; indexes, triggers"
            f" and commit {loaded_s - written_s:.1f} s)",
            flush=True,
        )
        problems = loader.checks()
    finally:
        loader.close()
    checked_at = time.monotonic()
    database = open_database(settings)
    try:
        report = verify_ledger(database)
    finally:
        database.close()
    print(f"{report.verdict()} (wallet verify, {time.monotonic() - checked_at:.1f} s)")
    for problem in problems:
        print(f"  - loader check: {problem}")
    print(f"total {time.monotonic() - started:.1f} s")
    return 0 if report.ok and not problems else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url", help="sqlite:////path/file.db or postgresql://…/name")
    parser.add_argument(
        "--entries",
        type=int,
        default=ENTRIES_DEFAULT,
        help="entries of history to write, two per transaction (the seed's come on top)",
    )
    parser.add_argument("--users", type=int, default=USERS_DEFAULT, help="bench users")
    parser.add_argument(
        "--keyed-share",
        type=float,
        default=KEYED_SHARE_DEFAULT,
        help="share of the transactions (after the opening top-ups) with an idempotency key",
    )
    parser.add_argument(
        "--metadata-share",
        type=float,
        default=METADATA_SHARE_DEFAULT,
        help="share of the transactions (after the opening top-ups) with metadata: an order id"
        " of their own and a store (0: none)",
    )
    parser.add_argument("--days", type=int, default=DAYS_DEFAULT, help="span of the history")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random history")
    parser.add_argument(
        "--rebuild-indexes",
        action="store_true",
        help="drop the secondary indexes for the load and build them afterwards: about twice as"
        " fast, but the indexes come out packed full, so the first writes on the database split"
        " their pages (not the state the service leaves: do not measure writes on it)",
    )
    parser.add_argument("--progress", action="store_true", help="print a line per batch")
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be at least 1")
    if args.entries < 2 * args.users:
        parser.error("--entries must leave room for every user's opening top-up (2 per user)")
    if not 0 <= args.keyed_share <= 1:
        parser.error("--keyed-share is a share, between 0 and 1")
    if not 0 <= args.metadata_share <= 1:
        parser.error("--metadata-share is a share, between 0 and 1")
    if args.days < 1:
        parser.error("--days must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return load(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
