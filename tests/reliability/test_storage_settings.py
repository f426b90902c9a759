"""The durability and timeout settings actually in force on the service's own connections.

Each test first gives the database careless defaults (a rollback journal on SQLite; asynchronous
commits, no lock timeout and SERIALIZABLE on PostgreSQL), so a setting passes only if the
service asks for it explicitly on every connection, as STYLE.md requires.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing

import psycopg
import pytest

from wallet.config import Backend
from wallet.limits import DB_LOCK_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS
from wallet.storage import Database, Session
from wallet.storage.database import sqlite_path

from .checks import opened


@pytest.fixture
def careless_database(backend: str, database_url: str) -> Iterator[Database]:
    """The test's database, with defaults that a service must not rely on."""
    if backend == "sqlite":
        with closing(sqlite3.connect(sqlite_path(database_url))) as connection:
            assert connection.execute("PRAGMA journal_mode = DELETE").fetchone() == ("delete",)
    else:
        name = database_url.rpartition("/")[2]
        with psycopg.connect(database_url, autocommit=True) as connection:
            for setting, value in [
                ("synchronous_commit", "off"),
                ("default_transaction_isolation", "'serializable'"),
                ("lock_timeout", "0"),
                ("statement_timeout", "0"),
                ("idle_in_transaction_session_timeout", "0"),
            ]:
                connection.execute(f'ALTER DATABASE "{name}" SET {setting} = {value}')
    with opened(database_url) as database:
        yield database


def settings_in_force(session: Session) -> dict[str, object]:
    if session.backend is Backend.SQLITE:
        pragmas = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only")
        return {name: (session.one(f"PRAGMA {name}") or (None,))[0] for name in pragmas}
    # pg_settings gives timeouts in their base unit (ms), whatever unit they were set in.
    rows = session.all(
        "SELECT name, setting FROM pg_settings WHERE name = ANY(?) ORDER BY name",
        (list(POSTGRESQL_EXPECTED),),
    )
    return dict(rows)


SQLITE_EXPECTED: dict[str, object] = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL: the WAL is fsynced at every commit
    "foreign_keys": 1,
    "busy_timeout": DB_LOCK_TIMEOUT_MS,
}
POSTGRESQL_EXPECTED: dict[str, object] = {
    "synchronous_commit": "on",
    "transaction_isolation": "read committed",
    "lock_timeout": str(DB_LOCK_TIMEOUT_MS),
    "statement_timeout": str(DB_STATEMENT_TIMEOUT_MS),
    "idle_in_transaction_session_timeout": str(DB_STATEMENT_TIMEOUT_MS * 3),
}


def test_the_writer_commits_durably_with_timeouts(careless_database: Database) -> None:
    writer = careless_database.connect_writer()
    try:
        if careless_database.backend is Backend.SQLITE:
            assert settings_in_force(writer.session) == {**SQLITE_EXPECTED, "query_only": 0}
        else:
            assert settings_in_force(writer.session) == POSTGRESQL_EXPECTED
            # And inside the writer's own unit of work.
            writer.begin()
            try:
                assert settings_in_force(writer.session) == POSTGRESQL_EXPECTED
            finally:
                writer.rollback()
    finally:
        writer.close()


def test_readers_have_the_same_settings(careless_database: Database) -> None:
    careless_database.connect_writer().close()  # on SQLite, the writer puts the file in WAL mode
    with careless_database.reading() as session:
        if careless_database.backend is Backend.SQLITE:
            assert settings_in_force(session) == {**SQLITE_EXPECTED, "query_only": 1}
            # A reader is read-only, so no code path can write outside the writer's commits.
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                session.run("DELETE FROM idempotency_keys")
        else:
            assert settings_in_force(session) == POSTGRESQL_EXPECTED


@pytest.mark.parametrize(
    ("query", "accepted"),
    [("", False), ("?target_session_attrs=any", False), ("?target_session_attrs=read-write", True)],
)
def test_a_url_with_several_hosts_must_ask_for_the_primary(query: str, accepted: bool) -> None:
    """With several hosts libpq takes the first that answers, which may be a standby; the service
    refuses to start on such a URL rather than fail its writes there."""
    url = f"postgresql://postgres@127.0.0.1:5432,127.0.0.1:5433/wallet{query}"
    if accepted:
        with opened(url) as database:
            assert database.backend is Backend.POSTGRESQL
    else:
        with pytest.raises(ValueError, match="target_session_attrs=read-write"), opened(url):
            pass
