"""PostgreSQL: the migrations that add indexes to tables that may be large (0006-0008) build them
without stopping the ledger's writes, and an upgrade interrupted during a build completes on the
next start.

What an operator upgrading a live ledger can see: while a migration waits to build an index,
other connections still insert into that table; a build left invalid by an interrupted upgrade
is replaced by a valid one when the service starts again.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from wallet.storage.migrate import MIGRATIONS, upgrade

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

WAIT_S = 15.0
# The latest revision: every upgrade under test ends there.
HEAD = max(path.name[:4] for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))
INSERT_KEY = (
    "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, outcome, response_body,"
    " transaction_id, created_at_us) VALUES ('test', %s, 'f', 'created', '{}', NULL, 0)"
)


def index_state(url: str, name: str) -> bool | None:
    """True if the index exists and is valid, False if invalid, None if it does not exist."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s",
            (name,),
        ).fetchone()
    return None if row is None else bool(row[0])


def schema_version(url: str) -> str:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


# What the migrations after 0008 added, undone, so that they run again after those under test.
UNDO_AFTER_0008 = (
    # 0013
    "DROP FUNCTION lots_open_page",
    "DROP TABLE lot_draws",
    "DROP TABLE lots",
    "DELETE FROM transaction_types WHERE name = 'expiry'",
    "ALTER TABLE accounts DROP COLUMN lots_open_minor",
    "ALTER TABLE accounts DROP COLUMN lots_made",
    "ALTER TABLE assets DROP COLUMN expires_after_days",
    # 0010 to 0012: new tables only.
    *(
        f"DROP TABLE {table} CASCADE"
        for table in (
            "balance_monitors",
            "daily_limits",
            "freeze_log",
            "freezes",
            "delivery_attempts",
            "webhook_endpoints",
            "event_relays",
            "event_positions",
            "events",
        )
    ),
    # 0009
    "DROP TABLE transaction_metadata",
    "DROP TRIGGER holds_metadata_kept ON holds",
    "DROP FUNCTION wallet_hold_metadata_kept()",
    "ALTER TABLE transactions DROP COLUMN metadata",
    "ALTER TABLE holds DROP COLUMN metadata",
)


def back_to(url: str, version: str, *statements: str) -> None:
    """Make a migrated database look as if only the migrations up to ``version`` had run."""
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in (*UNDO_AFTER_0008, *statements):
            connection.execute(statement)
        connection.execute("UPDATE alembic_version SET version_num = %s", (version,))


def upgrading(url: str, failures: list[BaseException]) -> threading.Thread:
    """A thread (not started) that migrates ``url`` as a starting process does; what it raises
    goes to ``failures``, for the test to report."""

    def run() -> None:
        try:
            upgrade(url)
        except BaseException as error:
            failures.append(error)

    return threading.Thread(target=run, daemon=True)


def test_inserts_go_on_while_a_migration_waits_to_build_its_index(database_url: str) -> None:
    back_to(database_url, "0006", "DROP INDEX idempotency_keys_transaction")
    # A transaction that has inserted and not committed yet: the index build must wait for it.
    holder = psycopg.connect(database_url)
    holder.execute(INSERT_KEY, ("before-the-upgrade",))
    failures: list[BaseException] = []
    migration = upgrading(database_url, failures)
    migration.start()
    try:
        with psycopg.connect(database_url, autocommit=True) as watcher:
            deadline = time.monotonic() + WAIT_S
            while True:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE 'CREATE INDEX%%idempotency_keys_transaction%%'"
                    " AND wait_event_type = 'Lock'"
                ).fetchone()
                if waiting is not None and waiting[0] > 0:
                    break
                assert time.monotonic() < deadline, "the migration never reached the index build"
                assert not failures, failures
                time.sleep(0.05)
        # A plain CREATE INDEX would be queued for a SHARE lock here, and this insert behind it.
        with psycopg.connect(database_url, autocommit=True) as writer:
            writer.execute("SET lock_timeout = '2s'")
            writer.execute(INSERT_KEY, ("during-the-upgrade",))
    finally:
        holder.commit()
        holder.close()
        migration.join(WAIT_S)
    assert not migration.is_alive(), "the migration did not finish once the holder committed"
    assert not failures, failures
    assert index_state(database_url, "idempotency_keys_transaction") is True
    assert schema_version(database_url) == HEAD
    with psycopg.connect(database_url) as connection:
        keys = connection.execute(
            "SELECT idempotency_key FROM idempotency_keys WHERE scope = 'test' ORDER BY 1"
        ).fetchall()
    assert [key for (key,) in keys] == ["before-the-upgrade", "during-the-upgrade"]


def test_an_index_left_invalid_by_an_interrupted_upgrade_is_built_again(
    database_url: str,
) -> None:
    # What a concurrent build that was interrupted leaves: the index, marked invalid, and the
    # schema version of the migration before; plus an index 0008 drops, not dropped yet.
    back_to(
        database_url,
        "0007",
        "UPDATE pg_index SET indisvalid = false"
        " WHERE indexrelid = 'transactions_user_history'::regclass",
        "CREATE INDEX transactions_user_seq ON transactions (user_id, seq)",
    )
    assert index_state(database_url, "transactions_user_history") is False

    upgrade(database_url)

    assert index_state(database_url, "transactions_user_history") is True
    assert index_state(database_url, "transactions_user_seq") is None
    assert schema_version(database_url) == HEAD


def test_processes_that_start_together_on_an_old_schema_migrate_it_once(
    database_url: str,
) -> None:
    """The second process waits for the first one's migrations without holding a snapshot that
    the first one's concurrent index builds would wait for (they would deadlock)."""
    back_to(
        database_url,
        "0005",
        "DROP INDEX transactions_asset_time",
        "DROP INDEX idempotency_keys_transaction",
        "DROP INDEX holds_hold_transaction",
        "DROP INDEX holds_capture_transaction",
        "DROP INDEX holds_release_transaction",
    )
    failures: list[BaseException] = []
    starts = [upgrading(database_url, failures) for _ in range(3)]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join(WAIT_S * 2)
    assert not any(thread.is_alive() for thread in starts), "a start is stuck"
    assert failures == []
    assert schema_version(database_url) == HEAD
    for name in (
        "transactions_asset_time",
        "idempotency_keys_transaction",
        "holds_hold_transaction",
    ):
        assert index_state(database_url, name) is True, name
