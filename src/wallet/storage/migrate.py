"""Schema migrations with Alembic, applied on start and by ``wallet migrate``.

On PostgreSQL an advisory lock makes concurrent starts of several processes take turns, so the
migrations run once.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from wallet.domain.errors import Unavailable

MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_ID = 0x57A11E7  # "wallet"


def sqlalchemy_url(database_url: str) -> str:
    scheme, rest = database_url.split(":", 1)
    if scheme.startswith("postgres"):
        return "postgresql+psycopg:" + rest
    return database_url


def upgrade(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
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
        connection.execute(text(f"SELECT pg_advisory_lock({_ADVISORY_LOCK_ID})"))
        connection.commit()
    try:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
    finally:
        if postgresql:
            connection.execute(text(f"SELECT pg_advisory_unlock({_ADVISORY_LOCK_ID})"))
            connection.commit()
