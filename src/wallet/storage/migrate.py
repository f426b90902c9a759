"""Schema migrations with Alembic, applied on start and by ``wallet migrate``.

On PostgreSQL an advisory lock makes concurrent starts of several processes take turns, so the
migrations run once. A process waiting for it asks again and again (``pg_try_advisory_lock``)
rather than block in ``pg_advisory_lock``: a blocked statement keeps a snapshot open, and an
index built ``CONCURRENTLY`` by the process migrating waits for every older snapshot to end, so
the two would deadlock (migrations/online.py).
"""

import time
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from wallet.domain.errors import Unavailable
from wallet.limits import DB_CONNECT_TIMEOUT_S, MIGRATION_LOCK_POLL_S, MIGRATION_LOCK_WAIT_S

from .database import postgresql_conninfo

MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_ID = 0x57A11E7  # "wallet"


def _engine(database_url: str) -> Engine:
    """SQLAlchemy's engine for Alembic. On PostgreSQL the URL goes to libpq as it is, through
    psycopg: SQLAlchemy's own URL parser refuses libpq's multi-host form (``h1:5432,h2:5432``),
    which a failover needs (README, "Production on PostgreSQL")."""
    if database_url.split(":", 1)[0].startswith("postgres"):
        conninfo = postgresql_conninfo(database_url)
        return create_engine(
            "postgresql+psycopg://",
            poolclass=NullPool,
            creator=lambda: psycopg.connect(conninfo, connect_timeout=DB_CONNECT_TIMEOUT_S),
        )
    return create_engine(database_url, poolclass=NullPool)


def upgrade(database_url: str) -> None:
    engine = _engine(database_url)
    try:
        with engine.connect() as connection:
            _upgrade(connection)
    except OperationalError as error:
        raise Unavailable(f"the database cannot be migrated: {error.orig}") from error
    finally:
        engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        _take_migration_lock(connection)
    try:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
    finally:
        if postgresql:
            connection.execute(text(f"SELECT pg_advisory_unlock({_ADVISORY_LOCK_ID})"))
            connection.commit()


def _take_migration_lock(connection: Connection) -> None:
    """The session's advisory lock, asked for until granted; between two asks no transaction of
    this session is open, so it holds no snapshot that a concurrent index build waits for."""
    deadline = time.monotonic() + MIGRATION_LOCK_WAIT_S
    while True:
        granted = connection.execute(
            text(f"SELECT pg_try_advisory_lock({_ADVISORY_LOCK_ID})")
        ).scalar()
        connection.commit()
        if granted:
            return
        if time.monotonic() > deadline:
            raise Unavailable(
                f"another process has been migrating the database for over"
                f" {MIGRATION_LOCK_WAIT_S:.0f} s"
            )
        time.sleep(MIGRATION_LOCK_POLL_S)
