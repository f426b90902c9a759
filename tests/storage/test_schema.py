"""The schema's own guard of the ledger's invariants, checked with bare SQL on both backends.

The service checks every invariant before it writes; these tests show that the database refuses
the same mistakes on its own, whoever writes: append-only history, entries that chain from the
stored balance, balanced transactions, no negative user balance, accounts that open at zero.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import DatabaseFactory
from tests.support.rawdb import REFUSED, RawConnection, connect
from wallet.config import Settings
from wallet.limits import SEED_SUPPLY_MAJOR
from wallet.service.wallet import WalletService

SEED_MINOR = {
    ("user_001", "GC"): 100_000,
    ("user_001", "DI"): 5_000,
    ("user_001", "LP"): 20_000,
    ("user_002", "GC"): 50_000,
    ("user_002", "DI"): 1_000,
    ("user_002", "LP"): 7_500,
}
SUPPLY_MINOR = SEED_SUPPLY_MAJOR * 100
NOW_US = 1_800_000_000_000_000


@pytest.fixture
def db(database_url: str) -> Iterator[RawConnection]:
    with connect(database_url) as connection:
        yield connection


def account(db: RawConnection, owner_type: str, owner_id: str, asset: str) -> tuple[int, int]:
    """(id, balance_minor) of an account."""
    account_id, balance_minor = db.one(
        "SELECT id, balance_minor FROM accounts"
        " WHERE owner_type = ? AND owner_id = ? AND asset_code = ?",
        (owner_type, owner_id, asset),
    )
    return int(account_id), int(balance_minor)


def add_entry(
    db: RawConnection, transaction_id: str, account_id: int, amount: int, before: int
) -> None:
    db.run(
        "INSERT INTO entries (transaction_id, account_id, amount_minor, balance_before,"
        " balance_after, created_at_us) VALUES (?, ?, ?, ?, ?, ?)",
        (transaction_id, account_id, amount, before, before + amount, NOW_US),
    )


def seal(db: RawConnection, transaction_id: str, user_id: str, amount: int) -> None:
    db.run(
        "INSERT INTO transactions (id, transaction_type, user_id, asset_code, amount_minor,"
        " created_at_us) VALUES (?, 'topup', ?, 'GC', ?, ?)",
        (transaction_id, user_id, amount, NOW_US),
    )


Posting = tuple[int, int, int]  # account id, signed amount, balance before


def write(
    db: RawConnection, transaction_id: str, postings: list[Posting], sealed_for: str | None
) -> None:
    """One unit of work: the entries, then (if ``sealed_for`` names a user) the sealing row."""
    with db.unit_of_work():
        for account_id, amount, before in postings:
            add_entry(db, transaction_id, account_id, amount, before)
        if sealed_for is not None:
            seal(db, transaction_id, sealed_for, max(amount for _, amount, _ in postings))


def counts(db: RawConnection) -> dict[str, int]:
    tables = ("assets", "accounts", "transactions", "entries", "idempotency_keys")
    return {table: int(db.one(f"SELECT count(*) FROM {table}")[0]) for table in tables}


def balances(db: RawConnection) -> dict[tuple[str, str, str], int]:
    rows = db.all("SELECT owner_type, owner_id, asset_code, balance_minor FROM accounts")
    return {(t, o, a): int(b) for t, o, a, b in rows}


def test_entries_and_transactions_are_append_only(
    db: RawConnection, subtests: pytest.Subtests
) -> None:
    before = (counts(db), db.all("SELECT * FROM entries ORDER BY id"))
    entry_id = db.one("SELECT min(id) FROM entries")[0]
    transaction_id = db.one("SELECT min(id) FROM transactions")[0]
    statements = {
        "update an entry": (
            "UPDATE entries SET amount_minor = amount_minor + 1 WHERE id = ?",
            entry_id,
        ),
        "delete an entry": ("DELETE FROM entries WHERE id = ?", entry_id),
        "update a transaction": (
            "UPDATE transactions SET description = 'x' WHERE id = ?",
            transaction_id,
        ),
        "delete a transaction": ("DELETE FROM transactions WHERE id = ?", transaction_id),
    }
    for name, (sql, row_id) in statements.items():
        with subtests.test(name), pytest.raises(REFUSED, match="append-only"):
            db.run(sql, (row_id,))

    assert (counts(db), db.all("SELECT * FROM entries ORDER BY id")) == before


def test_an_entry_must_start_from_the_account_balance(db: RawConnection) -> None:
    user_id, user_balance = account(db, "user", "user_001", "GC")

    with pytest.raises(REFUSED, match="start from the account balance"):
        write(db, "t-stale", [(user_id, 100, user_balance + 1)], sealed_for=None)

    assert account(db, "user", "user_001", "GC")[1] == user_balance


def test_a_transaction_whose_entries_do_not_sum_to_zero_is_refused(db: RawConnection) -> None:
    user_id, user_balance = account(db, "user", "user_001", "GC")
    treasury_id, treasury_balance = account(db, "system", "treasury", "GC")

    unbalanced = [(user_id, 500, user_balance), (treasury_id, -300, treasury_balance)]
    with pytest.raises(REFUSED, match="sum to zero"):
        write(db, "t-unbalanced", unbalanced, sealed_for="user_001")
    with pytest.raises(REFUSED, match="sum to zero"):
        write(db, "t-one-sided", [(user_id, 500, user_balance)], sealed_for="user_001")

    assert account(db, "user", "user_001", "GC")[1] == user_balance
    assert account(db, "system", "treasury", "GC")[1] == treasury_balance


def test_entries_without_their_transaction_are_refused_at_commit(db: RawConnection) -> None:
    user_id, user_balance = account(db, "user", "user_001", "GC")
    treasury_id, treasury_balance = account(db, "system", "treasury", "GC")

    balanced = [(user_id, 500, user_balance), (treasury_id, -500, treasury_balance)]
    with pytest.raises(REFUSED):
        write(db, "t-unsealed", balanced, sealed_for=None)

    assert account(db, "user", "user_001", "GC")[1] == user_balance


def test_a_balanced_transaction_is_accepted_and_moves_the_balances(db: RawConnection) -> None:
    """The control for the refusals above: the same SQL, balanced, goes through."""
    user_id, user_balance = account(db, "user", "user_001", "GC")
    treasury_id, treasury_balance = account(db, "system", "treasury", "GC")

    balanced = [(user_id, 500, user_balance), (treasury_id, -500, treasury_balance)]
    write(db, "t-balanced", balanced, sealed_for="user_001")

    assert account(db, "user", "user_001", "GC")[1] == user_balance + 500
    assert account(db, "system", "treasury", "GC")[1] == treasury_balance - 500
    # A sealed transaction takes no more entries.
    with pytest.raises(REFUSED, match="sealed"):
        write(db, "t-balanced", [(user_id, 1, user_balance + 500)], sealed_for=None)


# How both backends word a CHECK constraint's refusal ("CHECK constraint failed: …" on SQLite,
# "… violates check constraint …" on PostgreSQL).
CHECK_REFUSED = r"(?i)check constraint"


def test_no_balance_but_issuance_goes_below_zero(db: RawConnection) -> None:
    """Balanced transactions whose entries chain from the stored balances, so that only the
    accounts' CHECK can refuse them (an UPDATE of a balance would be refused by the trigger that
    moves balances only through entries, whatever the CHECK says)."""
    user_id, user_balance = account(db, "user", "user_002", "GC")
    treasury_id, treasury_balance = account(db, "system", "treasury", "GC")

    user_overdraft = [
        (user_id, -(user_balance + 1), user_balance),
        (treasury_id, user_balance + 1, treasury_balance),
    ]
    with pytest.raises(REFUSED, match=CHECK_REFUSED):
        write(db, "t-user-overdraft", user_overdraft, sealed_for="user_002")
    treasury_overdraft = [
        (treasury_id, -(treasury_balance + 1), treasury_balance),
        (user_id, treasury_balance + 1, user_balance),
    ]
    with pytest.raises(REFUSED, match=CHECK_REFUSED):
        write(db, "t-treasury-overdraft", treasury_overdraft, sealed_for="user_002")

    assert account(db, "user", "user_002", "GC")[1] == user_balance
    assert account(db, "system", "treasury", "GC")[1] == treasury_balance
    # The control: the same SQL takes the issuance account further below zero.
    issuance_id, issuance_balance = account(db, "system", "issuance", "GC")
    issued = [(issuance_id, -1, issuance_balance), (treasury_id, 1, treasury_balance)]
    write(db, "t-issued", issued, sealed_for="user_002")
    assert account(db, "system", "issuance", "GC")[1] == issuance_balance - 1


def test_a_balance_moves_only_through_an_entry(
    db: RawConnection, subtests: pytest.Subtests
) -> None:
    user_id, user_balance = account(db, "user", "user_001", "GC")
    last_entry = db.one("SELECT max(id) FROM entries WHERE account_id = ?", (user_id,))[0]
    other_entry = db.one("SELECT max(id) FROM entries WHERE account_id <> ?", (user_id,))[0]
    statements = {
        "set a balance": ("UPDATE accounts SET balance_minor = 1 WHERE id = ?", (user_id,)),
        "point at an old entry": (
            "UPDATE accounts SET balance_minor = 0, last_entry_id = ? WHERE id = ?",
            (last_entry, user_id),
        ),
        "point at another account's entry": (
            "UPDATE accounts SET balance_minor = 0, last_entry_id = ? WHERE id = ?",
            (other_entry, user_id),
        ),
    }
    for name, (sql, params) in statements.items():
        with subtests.test(name), pytest.raises(REFUSED, match="only through an entry"):
            db.run(sql, params)
    with pytest.raises(REFUSED, match="keeps its owner and asset"):
        db.run("UPDATE accounts SET owner_id = 'someone_else' WHERE id = ?", (user_id,))

    assert account(db, "user", "user_001", "GC")[1] == user_balance
    # A real entry still moves the balance.
    treasury_id, treasury_balance = account(db, "system", "treasury", "GC")
    balanced = [(user_id, 100, user_balance), (treasury_id, -100, treasury_balance)]
    write(db, "t-guarded", balanced, sealed_for="user_001")
    assert account(db, "user", "user_001", "GC")[1] == user_balance + 100


def test_an_account_opens_with_a_zero_balance(db: RawConnection) -> None:
    opening = (
        "INSERT INTO accounts (owner_type, owner_id, asset_code, balance_minor, created_at_us)"
        " VALUES ('user', ?, 'GC', ?, ?)"
    )
    with pytest.raises(REFUSED, match="zero balance"):
        db.run(opening, ("rich_from_nothing", 100, NOW_US))
    db.run(opening, ("fresh", 0, NOW_US))

    assert account(db, "user", "fresh", "GC")[1] == 0
    assert db.all("SELECT id FROM accounts WHERE owner_id = 'rich_from_nothing'") == []


def test_foreign_keys_are_enforced(db: RawConnection) -> None:
    with pytest.raises(REFUSED):
        db.run(
            "INSERT INTO accounts (owner_type, owner_id, asset_code, created_at_us)"
            " VALUES ('user', 'someone', 'ZZ', ?)",
            (NOW_US,),
        )
    with pytest.raises(REFUSED):
        write(db, "t-no-account", [(999_999_999, 1, 0)], sealed_for=None)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_connections_of_the_service_enforce_foreign_keys(settings: Settings) -> None:
    database = WalletService(settings).database
    writer = database.connect_writer()
    try:
        assert writer.session.one("PRAGMA foreign_keys") == (1,)
        with database.reading() as session:
            assert session.one("PRAGMA foreign_keys") == (1,)
    finally:
        writer.close()
        database.close()


def _start_and_stop(database_url: str) -> None:
    service = WalletService(Settings(database_url=database_url, seed=True))
    service.start()
    service.stop()


def test_seeding_is_idempotent(databases: DatabaseFactory) -> None:
    url = databases.empty()

    _start_and_stop(url)
    with connect(url) as db:
        first = (counts(db), balances(db))
    _start_and_stop(url)
    _start_and_stop(url)
    with connect(url) as db:
        again = (counts(db), balances(db))

    # Three assets, each issued once; six opening balances.
    assert first[0]["assets"] == 3
    assert first[0]["transactions"] == 3 + len(SEED_MINOR)
    assert {(o, a): b for (t, o, a), b in first[1].items() if t == "user"} == SEED_MINOR
    assert again == first


def test_every_seeded_balance_equals_the_sum_of_its_entries(db: RawConnection) -> None:
    mismatched = db.all(
        "SELECT acc.id, acc.balance_minor, coalesce(sum(e.amount_minor), 0) FROM accounts acc"
        " LEFT JOIN entries e ON e.account_id = acc.id"
        " GROUP BY acc.id, acc.balance_minor"
        " HAVING acc.balance_minor <> coalesce(sum(e.amount_minor), 0)"
    )
    assert mismatched == []
    unbalanced = db.all(
        "SELECT transaction_id FROM entries GROUP BY transaction_id"
        " HAVING sum(amount_minor) <> 0 OR count(*) < 2"
    )
    assert unbalanced == []

    seeded = balances(db)
    assert {(o, a): b for (t, o, a), b in seeded.items() if t == "user"} == SEED_MINOR
    for asset in ("GC", "DI", "LP"):
        held = sum(b for (t, o, a), b in seeded.items() if a == asset and o != "issuance")
        assert held == SUPPLY_MINOR, "users and treasury hold the whole supply"
        assert seeded[("system", "issuance", asset)] == -SUPPLY_MINOR
