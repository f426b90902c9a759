"""Connections to the database, with the durability and timeout settings stated explicitly.

Two backends behind one small interface:
- SQLite (the embedded default): WAL journal, ``synchronous=FULL`` so a commit is on disk before
  it returns, ``foreign_keys=ON``, a busy timeout. Readers use a small pool of read-only
  connections; the one writer connection is handed to the group-commit writer.
- PostgreSQL (production): ``synchronous_commit=on``, READ COMMITTED with explicit row locks, and
  lock, statement and idle-in-transaction timeouts. Readers use a psycopg pool.

SQL is written once with ``?`` placeholders; the PostgreSQL session rewrites them to ``%s``.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo
import psycopg.errors
import psycopg_pool

from wallet.config import Backend, Settings
from wallet.domain.errors import Unavailable
from wallet.limits import (
    DB_CONNECT_TIMEOUT_S,
    DB_LOCK_TIMEOUT_MS,
    DB_POOL_RECONNECT_TIMEOUT_S,
    DB_READ_POOL_SIZE_MAX,
    DB_STATEMENT_TIMEOUT_MS,
    SQLITE_CHECKPOINT_ERROR_PAUSE_S,
    SQLITE_CHECKPOINT_INTERVAL_S,
    SQLITE_WAL_FILE_BYTES_MAX,
    SQLITE_WAL_PAGES_MAX,
)

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
Params = Sequence[Any]


class Session:
    """One connection's way to run SQL. Every statement of the service goes through here."""

    backend: Backend

    def __init__(self, connection: Any, backend: Backend) -> None:
        self._connection = connection
        self.backend = backend

    def _sql(self, sql: str) -> str:
        return _postgresql_sql(sql) if self.backend is Backend.POSTGRESQL else sql

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._connection.execute(self._sql(sql), params).fetchall())

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._connection.execute(self._sql(sql), params).fetchone()
        return row

    def run(self, sql: str, params: Params = ()) -> None:
        self._connection.execute(self._sql(sql), params)

    def run_many(self, sql: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        if self.backend is Backend.POSTGRESQL:
            with self._connection.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        else:
            self._connection.executemany(sql, rows)


@lru_cache(maxsize=512)
def _postgresql_sql(sql: str) -> str:
    assert "%" not in sql, "SQL for both backends must not contain a literal %"
    return sql.replace("?", "%s")


class Database(ABC):
    """A ledger database: migrations, readers, and the writer's connection."""

    backend: Backend

    @abstractmethod
    def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic), safely from several processes."""

    @abstractmethod
    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads. Raises Unavailable when the database cannot be reached."""

    # Whether a read is cheaper run where it is asked for (the event loop) than handed to a
    # worker thread: true of SQLite, whose reads are a few local index lookups that never wait
    # for the writer in WAL mode; false of PostgreSQL, where a read is a network round trip.
    reads_inline: bool = False

    def bind_event_loop_thread(self) -> None:  # noqa: B027 - a no-op unless reads run inline
        """Called once on the event loop's thread, before it serves (see reads_inline)."""

    @abstractmethod
    def connect_writer(self, *, sustained: bool = False) -> WriterConnection:
        """A dedicated connection for the one writer of this process. ``sustained``: it will
        carry a stream of units of work (the group-commit writer's), not a few (a CLI command).
        On SQLite such a connection has its WAL checkpointed by a thread of its own."""

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One unit of work on a writer connection of its own, for an operator's write (adding
        an asset, creating a key): committed if the block ends, rolled back if it raises. A
        transient failure (a lock held too long, a lost connection) is Unavailable, a 503 the
        caller may retry: nothing was committed. The request path has the group-commit writer
        instead."""
        connection = self.connect_writer()
        try:
            connection.begin()
            yield connection.session
            connection.commit()
        except BaseException as error:
            # The connection may be broken: it is closed below whatever the rollback does.
            with suppress(Exception):
                connection.rollback()
            if isinstance(error, Exception) and self.is_transient(error):
                raise Unavailable("the database did not complete the write; retry") from error
            raise
        finally:
            connection.close()

    @abstractmethod
    def is_transient(self, error: BaseException) -> bool:
        """Whether a failed unit of work may succeed if tried again (lost connection, lock)."""

    @abstractmethod
    def close(self) -> None: ...


class WriterConnection(ABC):
    """The writer's connection: explicit units of work around a session."""

    session: Session

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


# --- SQLite -------------------------------------------------------------------------------------


def sqlite_path(database_url: str) -> str:
    """``sqlite:///relative.db`` and ``sqlite:////absolute.db`` to a file path."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError("a SQLite DATABASE_URL looks like sqlite:///wallet_service.db")
    path = database_url[len(prefix) :]
    if not path or path == ":memory:":
        raise ValueError(
            "the wallet needs a database file: an in-memory database loses every write"
        )
    return path


class DatabaseMissing(FileNotFoundError):
    """The SQLite file a command that only reads was pointed at does not exist."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no SQLite database at {path}")
        self.path = path


def _connect_sqlite(path: str, *, read_only: bool, create: bool = True) -> sqlite3.Connection:
    """A connection with the service's settings. ``create=False``: the file must exist, and is
    never created (SQLite's ``mode=rw``), should it disappear after it was looked for.
    """
    connection = sqlite3.connect(
        path if create else f"{Path(path).absolute().as_uri()}?mode=rw",
        uri=not create,
        timeout=DB_LOCK_TIMEOUT_MS / 1000,
        isolation_level=None,  # we issue BEGIN and COMMIT ourselves
        check_same_thread=False,
        cached_statements=256,
    )
    connection.execute(f"PRAGMA busy_timeout = {DB_LOCK_TIMEOUT_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is fsynced before it returns, so an acknowledged write survives a crash
    # and a power loss. NORMAL would only survive a process crash in WAL mode.
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    if read_only:
        connection.execute("PRAGMA query_only = ON")
    return connection


class WalCheckpointer:
    """Copies a writer's committed pages from the WAL into the database file, on its own thread.

    Why: a checkpoint ends with an fsync of the database file, and SQLite runs it by default on
    the writer's thread, inside the COMMIT that takes the WAL past 1,000 pages, so the writer and
    every request behind it wait for it. On a large database the pages are scattered and that
    fsync is slow: at 10 million entries the writer spent a fifth of its time in it
    (bench/README.md, "The database file's fsync, off the writer's path"). Here each commit wakes
    this thread, which runs a PASSIVE checkpoint (it never blocks the writer or a reader) at most
    once per SQLITE_CHECKPOINT_INTERVAL_S while the WAL is short. The WAL starts over from its
    beginning at the writer's next unit of work after a pass has caught up; at
    SQLITE_WAL_PAGES_MAX pages the writer checkpoints what is left itself (little, after the
    passes), and should this thread stop, that automatic checkpoint still bounds the WAL.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wallet-checkpointer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop after the pass in progress, if any (a pass copies at most a few thousand pages)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        copied_before = 0
        caught_up = True
        while True:
            # Woken by a commit; or, while a reader holds back part of the WAL, again soon after.
            self._wake.wait(None if caught_up else SQLITE_CHECKPOINT_INTERVAL_S)
            self._wake.clear()  # before the check, so that a stop() is never cleared unseen
            if self._stopping.is_set():
                break
            started = time.monotonic()
            pause = SQLITE_CHECKPOINT_INTERVAL_S
            try:
                if connection is None:
                    connection = _connect_sqlite(self._path, read_only=False)
                row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                _, wal_pages, copied = row
                caught_up = copied >= wal_pages
                # Spaced out while the WAL is short: a pass then copies more pages, and a page
                # written many times is copied once. Half-way to the writer's bound, passes that
                # make progress follow each other, so that little is left when the writer
                # checkpoints itself.
                if wal_pages >= SQLITE_WAL_PAGES_MAX // 2 and copied > copied_before:
                    pause = 0.0
                copied_before = copied
            except Exception:  # the thread must outlive any one failure
                # The writer's own checkpoints keep the WAL bounded meanwhile.
                log.exception("background checkpoint failed")
                if connection is not None:
                    with suppress(sqlite3.Error):
                        connection.close()
                    connection = None
                caught_up = False
                pause = SQLITE_CHECKPOINT_ERROR_PAUSE_S
            if self._stopping.wait(max(0.0, pause - (time.monotonic() - started))):
                break
        if connection is not None:
            connection.close()


class SQLiteWriterConnection(WriterConnection):
    def __init__(self, path: str, *, sustained: bool = False, create: bool = True) -> None:
        self._connection = _connect_sqlite(path, read_only=False, create=create)
        self.session = Session(self._connection, Backend.SQLITE)
        self.checkpointer: WalCheckpointer | None = None
        if sustained:
            self._connection.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_PAGES_MAX}")
            self._connection.execute(f"PRAGMA journal_size_limit = {SQLITE_WAL_FILE_BYTES_MAX}")
            self.checkpointer = WalCheckpointer(path)

    def begin(self) -> None:
        # IMMEDIATE takes the write lock now, so the balances read in this unit of work cannot
        # change under it: SQLite has one writer, and this is it.
        self._connection.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._connection.execute("COMMIT")
        if self.checkpointer is not None:
            self.checkpointer.wake()

    def rollback(self) -> None:
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None
        self._connection.close()


class SQLiteDatabase(Database):
    backend = Backend.SQLITE

    def __init__(self, settings: Settings, *, create: bool = True) -> None:
        """``create=False``: raise DatabaseMissing unless the file exists, and never create it
        (nor its directory); for commands that only read."""
        self.url = settings.database_url
        self.path = sqlite_path(settings.database_url)
        self._create = create
        if create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        elif not Path(self.path).exists():
            raise DatabaseMissing(self.path)
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        # Set by close(): a connection a reader still holds is closed when it is given back,
        # never under the reader (closing a connection another thread is stepping crashes).
        self._closed = False
        self._loop_thread: int | None = None
        self._loop_connection: sqlite3.Connection | None = None

    def migrate(self) -> None:
        from .migrate import upgrade

        # The writer connection sets WAL mode, which persists in the file, before Alembic runs.
        _connect_sqlite(self.path, read_only=False, create=self._create).close()
        upgrade(f"sqlite:///{self.path}")

    reads_inline = True

    def bind_event_loop_thread(self) -> None:
        # The event loop's reads get a connection of their own, so they never wait for one of
        # the pool's, which worker threads hold.
        self._loop_thread = threading.get_ident()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        on_loop = threading.get_ident() == self._loop_thread
        connection = self._loop_connection_() if on_loop else self._checkout()
        try:
            yield Session(connection, Backend.SQLITE)
        except sqlite3.OperationalError as error:
            raise Unavailable("the database cannot be read") from error
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if not on_loop:
                self._give_back(connection)

    def _loop_connection_(self) -> sqlite3.Connection:
        if self._loop_connection is None:
            if self._closed:
                raise Unavailable("the database is closed")
            try:
                self._loop_connection = _connect_sqlite(
                    self.path, read_only=True, create=self._create
                )
            except sqlite3.Error as error:
                raise Unavailable("the database cannot be opened") from error
        return self._loop_connection

    def _give_back(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            if self._closed:
                connection.close()
            else:
                self._idle.put(connection)

    def _checkout(self) -> sqlite3.Connection:
        if self._closed:
            raise Unavailable("the database is closed")
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._opened < DB_READ_POOL_SIZE_MAX:
                self._opened += 1
                try:
                    connection = _connect_sqlite(self.path, read_only=True, create=self._create)
                except sqlite3.Error as error:
                    self._opened -= 1
                    raise Unavailable("the database cannot be opened") from error
                return connection
        try:
            return self._idle.get(timeout=DB_LOCK_TIMEOUT_MS / 1000)
        except queue.Empty:
            raise Unavailable("no database connection became free in time") from None

    def connect_writer(self, *, sustained: bool = False) -> WriterConnection:
        try:
            return SQLiteWriterConnection(self.path, sustained=sustained, create=self._create)
        except sqlite3.Error as error:
            raise Unavailable("the database cannot be opened") from error

    def is_transient(self, error: BaseException) -> bool:
        # "database is locked" after the busy timeout, a full disk, a read-only file: the unit of
        # work may succeed later, and the client is told 503, never 500.
        return isinstance(error, sqlite3.OperationalError)

    def close(self) -> None:
        """Close the idle connections and the event loop's (the loop has stopped reading by
        now); those that readers on other threads still hold are closed as they come back."""
        with self._lock:
            self._closed = True
            while True:
                try:
                    self._idle.get_nowait().close()
                except queue.Empty:
                    break
            if self._loop_connection is not None:
                self._loop_connection.close()
                self._loop_connection = None


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgresql_conninfo(database_url: str) -> str:
    """libpq accepts postgresql:// and postgres:// URLs; drop a SQLAlchemy driver suffix. The rest
    reaches libpq intact, the multi-host form (``h1:5432,h2:5432``) included."""
    scheme, rest = database_url.split(":", 1)
    return "postgresql:" + rest if scheme.startswith("postgres") else database_url


def _check_hosts(conninfo: str) -> None:
    """Several hosts (a primary and its standbys) only with ``target_session_attrs=read-write``
    (or ``primary``): otherwise libpq connects to the first host that answers, and a write on a
    standby fails with an error that is nobody's fault but the setting's."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return  # libpq says what is wrong with it at the first connection, as before
    hosts = str(params.get("host") or params.get("hostaddr") or "").split(",")
    if len(hosts) > 1 and params.get("target_session_attrs") not in ("read-write", "primary"):
        raise ValueError(
            "a DATABASE_URL with several hosts needs ?target_session_attrs=read-write, so that"
            " the service connects to the primary only"
        )


_POSTGRESQL_OPTIONS = (
    "-c synchronous_commit=on"
    " -c default_transaction_isolation=read\\ committed"
    f" -c lock_timeout={DB_LOCK_TIMEOUT_MS}"
    f" -c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
    f" -c idle_in_transaction_session_timeout={DB_STATEMENT_TIMEOUT_MS * 3}"
)


def _connect_postgresql(conninfo: str, *, autocommit: bool) -> psycopg.Connection[Any]:
    return psycopg.connect(
        conninfo,
        autocommit=autocommit,
        connect_timeout=DB_CONNECT_TIMEOUT_S,
        options=_POSTGRESQL_OPTIONS,
        application_name="wallet",
    )


class PostgreSQLWriterConnection(WriterConnection):
    def __init__(self, conninfo: str) -> None:
        self._connection = _connect_postgresql(conninfo, autocommit=True)
        self.session = Session(self._connection, Backend.POSTGRESQL)

    def begin(self) -> None:
        self._connection.execute("BEGIN ISOLATION LEVEL READ COMMITTED")

    def commit(self) -> None:
        self._connection.execute("COMMIT")

    def rollback(self) -> None:
        if not self._connection.closed and not self._connection.broken:
            self._connection.execute("ROLLBACK")

    def close(self) -> None:
        self._connection.close()


class PostgreSQLDatabase(Database):
    backend = Backend.POSTGRESQL

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.conninfo = postgresql_conninfo(settings.database_url)
        _check_hosts(self.conninfo)
        self._pool = psycopg_pool.ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=DB_READ_POOL_SIZE_MAX,
            kwargs={
                "autocommit": True,
                "connect_timeout": DB_CONNECT_TIMEOUT_S,
                "options": _POSTGRESQL_OPTIONS,
                "application_name": "wallet-reader",
            },
            timeout=DB_CONNECT_TIMEOUT_S,
            # psycopg_pool's default (5 minutes of doubling delays) would leave readers waiting
            # half as long again as the outage once a new primary is up.
            reconnect_timeout=DB_POOL_RECONNECT_TIMEOUT_S,
            open=False,
            name="wallet-readers",
        )
        self._pool_opened = False
        self._pool_lock = threading.Lock()

    def migrate(self) -> None:
        from .migrate import upgrade

        upgrade(self.url)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        self._open_pool()
        try:
            with self._pool.connection() as connection:
                yield Session(connection, Backend.POSTGRESQL)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as error:
            raise Unavailable("the database cannot be reached") from error

    def _open_pool(self) -> None:
        if not self._pool_opened:
            with self._pool_lock:
                if not self._pool_opened:
                    self._pool.open(wait=False)
                    self._pool_opened = True

    def connect_writer(self, *, sustained: bool = False) -> WriterConnection:
        try:
            return PostgreSQLWriterConnection(self.conninfo)
        except psycopg.OperationalError as error:
            raise Unavailable("the database cannot be reached") from error

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(
            error,
            psycopg.OperationalError
            | psycopg.errors.SerializationFailure
            | psycopg.errors.DeadlockDetected
            | psycopg.errors.LockNotAvailable
            | psycopg.errors.QueryCanceled
            | psycopg.errors.UniqueViolation,
        )

    def close(self) -> None:
        if self._pool_opened:
            self._pool.close()


def open_database(settings: Settings, *, create: bool = True) -> Database:
    """The settings' database. ``create=False``, for commands that only read: a SQLite file that
    does not exist raises DatabaseMissing and is never created (a PostgreSQL database never is).
    """
    if settings.backend is Backend.SQLITE:
        return SQLiteDatabase(settings, create=create)
    return PostgreSQLDatabase(settings)


@contextmanager
def read_snapshot(
    session: Session, statement_timeout_ms: int, idle_timeout_ms: int | None = None
) -> Iterator[None]:
    """Run the caller's reads in one read-only unit of work that sees a single instant.

    SQLite: a deferred BEGIN, whose first read fixes the WAL snapshot. PostgreSQL: REPEATABLE
    READ, with the bounds of a long read (an audit, an export) instead of those of a request.
    """
    if session.backend is Backend.POSTGRESQL:
        session.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        session.run(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
        if idle_timeout_ms is not None:
            session.run(f"SET LOCAL idle_in_transaction_session_timeout = {int(idle_timeout_ms)}")
    else:
        session.run("BEGIN")
    try:
        yield
    finally:
        session.run("ROLLBACK")
