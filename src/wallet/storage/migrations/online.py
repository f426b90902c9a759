"""Index changes that do not stop the ledger's writes while they run (PostgreSQL).

A plain ``CREATE INDEX`` holds a lock that blocks every insert into its table until the index is
built: on a ledger of millions of transactions, minutes without writes during an upgrade. On
PostgreSQL these helpers build and drop indexes ``CONCURRENTLY``, which PostgreSQL only allows
outside a transaction, so they run in Alembic's autocommit block (the migrations before them
are committed first). They are safe to run again: an upgrade interrupted half-way leaves either
no index, a valid one (kept), or an invalid one from an interrupted concurrent build (dropped and
built again). A concurrent build also waits for every transaction of the database that began
before it (a long ``wallet export`` among them), without blocking anyone meanwhile. On SQLite,
where a schema change takes the one write lock anyway and a build is seconds, they are the plain
statements.

The migrations that use them are history: change these helpers only in ways that leave the
schema they produce the same.
"""

from alembic import op
from sqlalchemy import text


def create_index(name: str, definition: str) -> None:
    """``CREATE INDEX <name> <definition>``, e.g. definition ``"ON transactions (user_id)"``."""
    if op.get_bind().dialect.name != "postgresql":
        op.execute(f"CREATE INDEX {name} {definition}")
        return
    with op.get_context().autocommit_block():
        valid = (
            op.get_bind()
            .execute(
                text(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
                ),
                {"name": name},
            )
            .scalar()
        )
        if valid is True:
            return
        if valid is False:
            op.execute(f"DROP INDEX CONCURRENTLY {name}")
        op.execute(f"CREATE INDEX CONCURRENTLY {name} {definition}")


def drop_index(name: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute(f"DROP INDEX {name}")
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
