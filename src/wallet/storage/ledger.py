"""The ledger's SQL: reading balances and transactions, and writing a unit of work's postings.

Every function takes a Session and runs plain SQL that both backends understand; where they
differ (row locks), the backend is asked. Nothing here decides business rules: the service has
already computed and checked the entries it hands over.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from wallet.config import Backend
from wallet.domain.ledger import AccountRef, Asset, PostedEntry, PostedTransaction

from .database import Row, Session

# --- assets -------------------------------------------------------------------------------------


def list_assets(session: Session) -> list[Asset]:
    rows = session.all(
        "SELECT code, name, scale, supply_minor, expires_after_days FROM assets ORDER BY code"
    )
    return [Asset(*row) for row in rows]


def insert_asset(session: Session, asset: Asset, now_us: int) -> bool:
    """Add an asset; False when it exists already."""
    row = session.one(
        "INSERT INTO assets (code, name, scale, supply_minor, expires_after_days, created_at_us)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING RETURNING code",
        (
            asset.code,
            asset.name,
            asset.scale,
            asset.supply_minor,
            asset.expires_after_days,
            now_us,
        ),
    )
    return row is not None


def set_asset_expiry(session: Session, code: str, expires_after_days: int | None) -> bool:
    """Change an asset's expiry policy; False when there is no such asset."""
    row = session.one(
        "UPDATE assets SET expires_after_days = ? WHERE code = ? RETURNING code",
        (expires_after_days, code),
    )
    return row is not None


def balances_by_holder(session: Session, asset_code: str) -> dict[str, int]:
    """The asset's balances summed by holder: 'user' for all users, else the system account."""
    rows = session.all(
        "SELECT CASE WHEN owner_type = 'user' THEN 'user' ELSE owner_id END AS holder,"
        " sum(balance_minor) FROM accounts WHERE asset_code = ? GROUP BY holder",
        (asset_code,),
    )
    return {str(holder): int(total) for holder, total in rows}


# --- balances -----------------------------------------------------------------------------------


class AccountState(NamedTuple):
    """An account's id, balance, and what is left of its open lots (0: it has none)."""

    account_id: int
    balance_minor: int
    lots_open_minor: int


def user_balances(session: Session, user_id: str) -> list[tuple[str, AccountState | None]]:
    """(asset code, account) for every asset, None where the user has no account in it."""
    rows = session.all(
        "SELECT a.code, acc.id, acc.balance_minor, acc.lots_open_minor FROM assets a"
        " LEFT JOIN accounts acc ON acc.asset_code = a.code"
        " AND acc.owner_type = 'user' AND acc.owner_id = ?"
        " ORDER BY a.code",
        (user_id,),
    )
    return [
        (code, None if account_id is None else AccountState(account_id, int(balance), int(lots)))
        for code, account_id, balance, lots in rows
    ]


def user_exists(session: Session, user_id: str) -> bool:
    row = session.one(
        "SELECT 1 FROM accounts WHERE owner_type = 'user' AND owner_id = ? LIMIT 1", (user_id,)
    )
    return row is not None


def existing_users(session: Session, user_ids: Sequence[str]) -> set[str]:
    """Those of ``user_ids`` that have at least one account (one statement for all)."""
    if not user_ids:
        return set()
    if session.backend is Backend.POSTGRESQL:
        rows = session.all(
            "SELECT DISTINCT owner_id FROM accounts"
            " WHERE owner_type = 'user' AND owner_id = ANY(?::text[])",
            (list(user_ids),),
        )
    else:
        rows = session.all(
            "SELECT DISTINCT acc.owner_id FROM json_each(?) AS w CROSS JOIN accounts acc"
            " ON acc.owner_type = 'user' AND acc.owner_id = w.value",
            (orjson.dumps(list(user_ids)).decode(),),
        )
    return {row[0] for row in rows}


def account_state(session: Session, account: AccountRef) -> AccountState | None:
    """The account's id, balance and open lots' total, in one primary-key look-up."""
    row = session.one(
        "SELECT id, balance_minor, lots_open_minor FROM accounts"
        " WHERE owner_type = ? AND owner_id = ? AND asset_code = ?",
        (account.owner_type.value, account.owner_id, account.asset_code),
    )
    return None if row is None else AccountState(int(row[0]), int(row[1]), int(row[2]))


def account_balance(session: Session, account: AccountRef) -> int | None:
    row = session.one(
        "SELECT balance_minor FROM accounts"
        " WHERE owner_type = ? AND owner_id = ? AND asset_code = ?",
        (account.owner_type.value, account.owner_id, account.asset_code),
    )
    return None if row is None else int(row[0])


def account_balance_at(session: Session, account: AccountRef, at_us: int) -> int | None:
    """The account's balance just after its last entry at or before ``at_us``; 0 before its
    first entry; None when the account does not exist. One lookup on entries_account_time.
    """
    row = session.one(
        "SELECT id FROM accounts WHERE owner_type = ? AND owner_id = ? AND asset_code = ?",
        (account.owner_type.value, account.owner_id, account.asset_code),
    )
    if row is None:
        return None
    entry = session.one(
        "SELECT balance_after FROM entries WHERE account_id = ? AND created_at_us <= ?"
        " ORDER BY created_at_us DESC, id DESC LIMIT 1",
        (row[0], at_us),
    )
    return 0 if entry is None else int(entry[0])


# --- transactions -------------------------------------------------------------------------------

_TRANSACTION_COLUMNS = (
    "id, seq, transaction_type, user_id, asset_code, amount_minor, description,"
    " idempotency_key, created_at_us, refund_of, metadata"
)


_COLUMNS_OF_T = ", ".join(f"t.{column.strip()}" for column in _TRANSACTION_COLUMNS.split(","))


def transaction_exists(session: Session, transaction_id: str) -> bool:
    return session.one("SELECT 1 FROM transactions WHERE id = ?", (transaction_id,)) is not None


def get_transaction(session: Session, transaction_id: str) -> PostedTransaction | None:
    row = session.one(
        f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE id = ?", (transaction_id,)
    )
    if row is None:
        return None
    return _with_entries(session, [row])[0]


def find_transactions(
    session: Session,
    *,
    limit: int,
    before_seq: int | None = None,
    user_id: str | None = None,
    asset_code: str | None = None,
    transaction_type: str | None = None,
    metadata: Sequence[tuple[str, str]] = (),
) -> list[PostedTransaction]:
    """A page of transactions, newest first, matching every filter given (see
    ``transactions_query``)."""
    sql, params = transactions_query(
        limit=limit,
        before_seq=before_seq,
        user_id=user_id,
        asset_code=asset_code,
        transaction_type=transaction_type,
        metadata=metadata,
    )
    return _with_entries(session, session.all(sql, params))


def transactions_query(
    *,
    limit: int,
    before_seq: int | None = None,
    user_id: str | None = None,
    asset_code: str | None = None,
    transaction_type: str | None = None,
    metadata: Sequence[tuple[str, str]] = (),
) -> tuple[str, list[object]]:
    """The statement of a page of transactions, newest first, and its parameters.

    With a metadata filter, the page is a range of ``transaction_metadata``'s primary key (key,
    value, seq), read backwards, and every other filter is checked on the rows it names (another
    metadata pair by its primary key): its cost follows the transactions with that reference,
    not the ledger. Without one, a user's page is a range of the index on (user_id, seq,
    asset_code, transaction_type), whose last two columns check those filters in the index; and
    a page across users reads the transactions backwards by seq. (tests/storage/test_plans.py
    checks the plans on both backends.)
    """
    params: list[object] = []
    conditions: list[str] = []
    if metadata:
        (first_key, first_value), others = metadata[0], metadata[1:]
        source = "transaction_metadata m JOIN transactions t ON t.seq = m.seq"
        order = "m.seq"
        conditions += ["m.key = ?", "m.value = ?"]
        params += [first_key, first_value]
        for key, value in others:
            conditions.append(
                "EXISTS (SELECT 1 FROM transaction_metadata o"
                " WHERE o.key = ? AND o.value = ? AND o.seq = m.seq)"
            )
            params += [key, value]
    else:
        source, order = "transactions t", "t.seq"
    for column, wanted in (
        ("t.user_id", user_id),
        ("t.asset_code", asset_code),
        ("t.transaction_type", transaction_type),
    ):
        if wanted is not None:
            conditions.append(f"{column} = ?")
            params.append(wanted)
    if before_seq is not None:
        conditions.append(f"{order} < ?")
        params.append(before_seq)
    params.append(limit)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {_COLUMNS_OF_T} FROM {source}{where} ORDER BY {order} DESC LIMIT ?"
    return sql, params


def _transaction_of(
    row: Row, entries: tuple[PostedEntry, ...], refunded_minor: int
) -> PostedTransaction:
    """A row of _TRANSACTION_COLUMNS, with its entries and how much of it was refunded."""
    return PostedTransaction(
        id=row[0],
        seq=row[1],
        transaction_type=row[2],
        user_id=row[3],
        asset_code=row[4],
        amount_minor=row[5],
        description=row[6],
        idempotency_key=row[7],
        created_at_us=row[8],
        refund_of=row[9],
        entries=entries,
        refunded_minor=refunded_minor,
        metadata=row[10],
    )


def _with_entries(session: Session, rows: Sequence[Row]) -> list[PostedTransaction]:
    if not rows:
        return []
    ids = [row[0] for row in rows]
    placeholders = ", ".join("?" * len(ids))
    entry_rows = session.all(
        "SELECT e.transaction_id, acc.owner_type, acc.owner_id, e.amount_minor,"
        " e.balance_before, e.balance_after"
        f" FROM entries e JOIN accounts acc ON acc.id = e.account_id"
        f" WHERE e.transaction_id IN ({placeholders}) ORDER BY e.id",
        ids,
    )
    entries: dict[str, list[PostedEntry]] = {transaction_id: [] for transaction_id in ids}
    for transaction_id, *entry in entry_rows:
        entries[transaction_id].append(PostedEntry(*entry))
    refunded = refunded_totals(session, ids)
    return [_transaction_of(row, tuple(entries[row[0]]), refunded.get(row[0], 0)) for row in rows]


def refunded_totals(session: Session, transaction_ids: Sequence[str]) -> dict[str, int]:
    """The sum of the refunds of each of ``transaction_ids`` that has any."""
    if not transaction_ids:
        return {}
    placeholders = ", ".join("?" * len(transaction_ids))
    rows = session.all(
        "SELECT refund_of, sum(amount_minor) FROM transactions"
        f" WHERE refund_of IN ({placeholders}) GROUP BY refund_of",
        list(transaction_ids),
    )
    return {refund_of: int(total) for refund_of, total in rows}


def lock_transactions(
    session: Session, transaction_ids: Iterable[str]
) -> dict[str, PostedTransaction]:
    """Read, and on PostgreSQL lock in id order, transactions about to be refunded.

    Transaction rows never change, so the lock is a mutex only: two units of work refunding the
    same original take turns, and the second sees the first's refund once it may go on. Every
    unit of work takes these locks before any account lock, so the order is the same for all.
    """
    wanted = sorted(set(transaction_ids))
    if not wanted:
        return {}
    placeholders = ", ".join("?" * len(wanted))
    lock = " FOR NO KEY UPDATE" if session.backend is Backend.POSTGRESQL else ""
    rows = session.all(
        f"SELECT {_TRANSACTION_COLUMNS} FROM transactions WHERE id IN ({placeholders})"
        f" ORDER BY id{lock}",
        wanted,
    )
    refunded = refunded_totals(session, wanted)
    return {row[0]: _transaction_of(row, (), refunded.get(row[0], 0)) for row in rows}


# --- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockedAccount:
    id: int
    balance_minor: int
    # What is left of the account's open lots, and how many lots it has had (service/lots.py):
    # read with the row, so an account without lots costs no statement more.
    lots_open_minor: int = 0
    lots_made: int = 0


def open_and_lock_accounts(
    session: Session, touched: Iterable[AccountRef], to_open: Iterable[AccountRef], now_us: int
) -> tuple[dict[AccountRef, LockedAccount], set[AccountRef]]:
    """Open the accounts of ``to_open`` that do not exist yet, at a zero balance, then read (and
    on PostgreSQL lock) every account of ``touched`` that exists.

    Returns the accounts read and those that this unit of work opened, so that it can close again
    the ones it ends up not using (a batch that failed must leave no trace, not even an empty
    account).
    """
    wanted = sorted(set(touched) | set(to_open))
    openable = sorted(set(to_open))
    # PostgreSQL: open first, then lock everything below: ``FOR UPDATE`` in ascending id order
    # makes every writer take its row locks in the same order, so two units of work never wait
    # on each other in a cycle. SQLite: the unit of work holds the database's one write lock
    # (BEGIN IMMEDIATE), so nothing can change between reading the accounts and opening the
    # missing ones: one read does both.
    postgresql = session.backend is Backend.POSTGRESQL
    accounts = _find_accounts(session, openable if postgresql else wanted, lock=False)
    opened: set[AccountRef] = set()
    for account in openable:
        if account in accounts:
            continue
        account_id = _open(session, account, now_us)
        if account_id is not None:
            accounts[account] = LockedAccount(account_id, 0)
            opened.add(account)
    if postgresql:
        accounts = _find_accounts(session, wanted, lock=True)
    return accounts, opened


def _open(session: Session, account: AccountRef, now_us: int) -> int | None:
    """Open an account at zero; its id, or None when another unit of work opened it first."""
    row = session.one(
        "INSERT INTO accounts (owner_type, owner_id, asset_code, balance_minor, created_at_us)"
        " VALUES (?, ?, ?, 0, ?) ON CONFLICT (owner_type, owner_id, asset_code) DO NOTHING"
        " RETURNING id",
        (account.owner_type.value, account.owner_id, account.asset_code, now_us),
    )
    return None if row is None else int(row[0])


def close_unused_accounts(session: Session, account_ids: Sequence[int]) -> None:
    """Remove accounts this unit of work opened and did not use (no entry can point at them)."""
    if not account_ids:
        return
    placeholders = ", ".join("?" * len(account_ids))
    session.run(
        f"DELETE FROM accounts WHERE id IN ({placeholders}) AND balance_minor = 0",
        list(account_ids),
    )


def _find_accounts(
    session: Session, wanted: Sequence[AccountRef], *, lock: bool
) -> dict[AccountRef, LockedAccount]:
    if not wanted:
        return {}
    found: dict[AccountRef, LockedAccount] = {}
    if session.backend is Backend.POSTGRESQL:
        rows = session.all(
            "SELECT acc.id, acc.owner_type, acc.owner_id, acc.asset_code, acc.balance_minor,"
            " acc.lots_open_minor, acc.lots_made"
            " FROM accounts acc JOIN unnest(?::text[], ?::text[], ?::text[]) AS w(t, o, a)"
            " ON acc.owner_type = w.t AND acc.owner_id = w.o AND acc.asset_code = w.a"
            " ORDER BY acc.id" + (" FOR UPDATE OF acc" if lock else ""),
            (
                [a.owner_type.value for a in wanted],
                [a.owner_id for a in wanted],
                [a.asset_code for a in wanted],
            ),
        )
        by_key = {(a.owner_type.value, a.owner_id, a.asset_code): a for a in wanted}
        for account_id, owner_type, owner_id, asset_code, balance, open_minor, made in rows:
            found[by_key[(owner_type, owner_id, asset_code)]] = LockedAccount(
                account_id, balance, open_minor, made
            )
        return found
    # SQLite: one statement for the whole batch, the wanted accounts passed as one JSON array
    # (a fixed SQL text, so the prepared statement is reused whatever the batch's size).
    rows = session.all(
        "SELECT acc.id, acc.owner_type, acc.owner_id, acc.asset_code, acc.balance_minor,"
        " acc.lots_open_minor, acc.lots_made"
        " FROM json_each(?) AS w CROSS JOIN accounts acc"
        " ON acc.owner_type = w.value ->> 0 AND acc.owner_id = w.value ->> 1"
        " AND acc.asset_code = w.value ->> 2",
        (orjson.dumps([[a.owner_type.value, a.owner_id, a.asset_code] for a in wanted]).decode(),),
    )
    by_key = {(a.owner_type.value, a.owner_id, a.asset_code): a for a in wanted}
    for account_id, owner_type, owner_id, asset_code, balance, open_minor, made in rows:
        found[by_key[(owner_type, owner_id, asset_code)]] = LockedAccount(
            account_id, balance, open_minor, made
        )
    return found


def insert_transactions(
    session: Session,
    transactions: Sequence[PostedTransaction],
    account_ids: dict[AccountRef, int],
) -> None:
    """Write transactions in order: each one's entries first, then the row that seals them.

    The entries are written in the order they were computed, so each starts from the balance the
    one before it left (the schema checks this too).
    """
    # All entries of the unit of work, in order, then all the sealing rows, in order: two
    # statements whatever the batch's size, and each seal still finds its entries written.
    session.run_many(
        "INSERT INTO entries (transaction_id, account_id, amount_minor, balance_before,"
        " balance_after, created_at_us) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                transaction.id,
                account_ids[entry.account(transaction.asset_code)],
                entry.amount_minor,
                entry.balance_before,
                entry.balance_after,
                transaction.created_at_us,
            )
            for transaction in transactions
            for entry in transaction.entries
        ],
    )
    session.run_many(
        "INSERT INTO transactions (id, transaction_type, user_id, asset_code, amount_minor,"
        " description, idempotency_key, created_at_us, refund_of, metadata)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                transaction.id,
                transaction.transaction_type,
                transaction.user_id,
                transaction.asset_code,
                transaction.amount_minor,
                transaction.description,
                transaction.idempotency_key,
                transaction.created_at_us,
                transaction.refund_of,
                transaction.metadata,
            )
            for transaction in transactions
        ],
    )
    references = [
        (key, value, transaction.id)
        for transaction in transactions
        if transaction.metadata is not None
        for key, value in orjson.loads(transaction.metadata).items()
    ]
    if references:
        # One row per member, under the transaction's seq (given by the insert above), so that
        # a page of the transactions with a reference is a range of this table's primary key.
        session.run_many(
            "INSERT INTO transaction_metadata (key, value, seq)"
            " SELECT ?, ?, seq FROM transactions WHERE id = ?",
            references,
        )


# --- idempotency --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """What a key decided, kept so that a retry gets the same answer."""

    fingerprint: str
    # "created", or the error code the ledger answered with.
    outcome: str
    response_body: str
    transaction_id: str | None


def find_outcomes(
    session: Session, key_owner: str, keys: Sequence[str]
) -> dict[str, StoredOutcome]:
    if not keys:
        return {}
    placeholders = ", ".join("?" * len(keys))
    rows = session.all(
        "SELECT idempotency_key, fingerprint, outcome, response_body, transaction_id"
        f" FROM idempotency_keys WHERE scope = ? AND idempotency_key IN ({placeholders})",
        [key_owner, *keys],
    )
    return {row[0]: StoredOutcome(*row[1:]) for row in rows}


def insert_outcomes(
    session: Session, owner_key_outcomes: Sequence[tuple[str, str, StoredOutcome]], now_us: int
) -> None:
    session.run_many(
        "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, outcome,"
        " response_body, transaction_id, created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (key_owner, key, o.fingerprint, o.outcome, o.response_body, o.transaction_id, now_us)
            for key_owner, key, o in owner_key_outcomes
        ],
    )
