"""The plans of a page of GET /transactions, on both backends: a page filtered by one metadata
pair is a range of transaction_metadata's primary key read backwards (no sort, no scan of the
ledger), and so is a user's page of the history's index.

PostgreSQL is told to avoid sequential scans and sorts where it can: on a test's few rows it would
rightly prefer them, and what matters is that the index can serve the page in order at any size
(bench/README.md shows the plans on a ledger of millions of entries).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.rawdb import connect
from wallet.config import Backend, Settings
from wallet.storage import Database, open_database
from wallet.storage.ledger import transactions_query
from wallet.storage.lots import due_lots_query, open_lots_query


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    opened = open_database(Settings(database_url=database_url))
    yield opened
    opened.close()


def _plan(database: Database, **filters: object) -> str:
    sql, params = transactions_query(limit=51, **filters)  # type: ignore[arg-type]
    with database.reading() as session:
        if session.backend is Backend.POSTGRESQL:
            session.run("SET LOCAL enable_seqscan = off")
            session.run("SET LOCAL enable_sort = off")
            rows = session.all(f"EXPLAIN {sql}", params)
        else:
            rows = session.all(f"EXPLAIN QUERY PLAN {sql}", params)
    return "\n".join(str(row[-1]) for row in rows)


def test_a_page_by_one_metadata_pair_is_a_range_of_its_index(database: Database) -> None:
    for before_seq in (None, 1_000):
        plan = _plan(database, metadata=[("order_id", "A-1042")], before_seq=before_seq)
        if database.backend is Backend.POSTGRESQL:
            assert "Index Only Scan Backward using transaction_metadata_pkey" in plan, plan
            assert "Sort" not in plan, plan
            assert "Seq Scan" not in plan, plan
        else:
            assert "SEARCH m USING PRIMARY KEY (key=? AND value=?" in plan, plan
            assert "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            assert "SCAN" not in plan, plan


def test_a_users_page_is_a_range_of_the_history_index(database: Database) -> None:
    plan = _plan(database, user_id="user_001", metadata=[])
    if database.backend is Backend.POSTGRESQL:
        assert "transactions_user_history" in plan, plan
        assert "Sort" not in plan, plan
    else:
        assert "SEARCH t USING INDEX transactions_user_history (user_id=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def _explain(database_url: str, sql: str, params: list[object]) -> str:
    """As _plan, on a connection of its own, in a unit of work so that SET LOCAL holds; on
    PostgreSQL bitmap scans and hash joins are avoided too, which an empty table invites (a
    bitmap scan loses the index's order)."""
    with connect(database_url) as db, db.unit_of_work():
        if db.backend == "postgresql":
            for setting in ("seqscan", "sort", "bitmapscan", "hashjoin"):
                db.run(f"SET LOCAL enable_{setting} = off")
            rows = db.all(f"EXPLAIN {sql}", params)
        else:
            rows = db.all(f"EXPLAIN QUERY PLAN {sql}", params)
    return "\n".join(str(row[-1]) for row in rows)


def test_a_debit_reads_its_lots_as_a_range_of_the_open_lots_index(database_url: str) -> None:
    postgresql = database_url.startswith("postgresql")
    for after in (None, (1_000, "019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d")):
        sql, params = open_lots_query(postgresql, 7, after, 32)
        if postgresql:
            # The function's statement and setting: the next test.
            sql = sql.replace("lots_open_page(?, ?, ?, ?)", "lots_open_page(7, 1, 'x', 32)")
            plan = _explain(database_url, f"SELECT * FROM ({sql}) AS page", [])
            assert "Function Scan on lots_open_page" in plan, plan
        else:
            plan = _explain(database_url, sql, params)
            assert "USING INDEX lots_open_by_account (account_id=?" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


def test_the_sweep_reads_due_lots_as_a_range_of_the_expiry_index(database_url: str) -> None:
    plan = _explain(database_url, *due_lots_query(1_000, 500))
    if database_url.startswith("postgresql"):
        assert "lots_open_by_expiry" in plan, plan
        assert "Sort" not in plan, plan
    else:
        assert "USING INDEX lots_open_by_expiry" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_a_debit_s_page_stays_a_range_for_an_account_with_many_lots(database_url: str) -> None:
    """PostgreSQL plans lots_open_page's statement once for any account (a generic plan), from
    the average account's lots; one account with thousands of lots must still be read a page
    at a time, not all of them sorted. The function plans it without bitmap scans; here the
    same statement is planned the same way, on statistics of such a table."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's plan is the test above (it has no generic plans)")
    with connect(database_url) as db:
        db.run("BEGIN")
        try:
            # Lots without their credits: the foreign key waits for a commit that never comes.
            db.run(
                "INSERT INTO lots (id, account_id, transaction_id, amount_minor, remaining_minor,"
                " expires_at_us, created_at_us)"
                " SELECT 'one-' || a.id, a.id, 'one-' || a.id, 100, 100, 2000, 1 FROM accounts a"
            )
            db.run(
                "INSERT INTO lots (id, account_id, transaction_id, amount_minor, remaining_minor,"
                " expires_at_us, created_at_us)"
                " SELECT 'many-' || n, (SELECT min(id) FROM accounts), 'many-' || n, 100, 100,"
                " 1000 + n, 1 FROM generate_series(1, 5000) AS n"
            )
            db.run("ANALYZE lots")
            db.run("SET LOCAL plan_cache_mode = force_generic_plan")
            db.run("SET LOCAL enable_bitmapscan = off")
            db.run(
                "PREPARE page (BIGINT, BIGINT, TEXT, INTEGER) AS SELECT * FROM lots"
                " WHERE account_id = $1 AND remaining_minor > 0"
                " AND (expires_at_us, id) > ($2, $3) ORDER BY expires_at_us, id LIMIT $4"
            )
            [(account_id,)] = db.all("SELECT min(id) FROM accounts")
            rows = db.all(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)"
                f" EXECUTE page ({int(account_id)}, 1500, '', 32)"
            )
            plan = "\n".join(str(row[0]) for row in rows)
            assert "Index Scan using lots_open_by_account" in plan, plan
            assert "Sort" not in plan, plan
            assert "rows=32 " in plan, plan
            # The function's body is that statement.
            [(body,)] = db.all("SELECT prosrc FROM pg_proc WHERE proname = 'lots_open_page'")
            assert "(l.expires_at_us, l.id) > (after_expires, after_id)" in body
            [(config,)] = db.all("SELECT proconfig FROM pg_proc WHERE proname = 'lots_open_page'")
            assert config == ["enable_bitmapscan=off"]
        finally:
            db.run("ROLLBACK")
