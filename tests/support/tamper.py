"""Raw SQL on a test's database, around the service: to read what it stored, and to break the
books on purpose (as a bug or a careless manual fix would) so that the audit has something to find.

``tamper`` switches the schema's own enforcement off first: on SQLite it drops the triggers and
ignores CHECK constraints (foreign keys are off on a plain connection); on PostgreSQL, as the
superuser, it disables every trigger of the ledger's tables (the foreign keys' included) and drops
their CHECK constraints. The database is a throwaway copy, so nothing is put back.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import psycopg

LEDGER_TABLES = (
    "assets",
    "accounts",
    "transactions",
    "entries",
    "transaction_metadata",
    "events",
    "lots",
    "lot_draws",
)


def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query (no parameters, so the SQL is the same on both backends)."""
    if database_url.startswith("sqlite"):
        with closing(_sqlite(database_url)) as connection:
            return list(connection.execute(sql).fetchall())
    with psycopg.connect(database_url) as connection:
        return list(connection.execute(sql).fetchall())


def tamper(database_url: str, *statements: str) -> None:
    """Run ``statements`` in one commit with the ledger's integrity enforcement off."""
    if database_url.startswith("sqlite"):
        with closing(_sqlite(database_url)) as connection:
            connection.execute("PRAGMA ignore_check_constraints = ON")
            triggers = connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            for (name,) in triggers.fetchall():
                connection.execute(f'DROP TRIGGER "{name}"')
            for statement in statements:
                connection.execute(statement)
            connection.commit()
        return
    with psycopg.connect(database_url) as connection:
        for table in LEDGER_TABLES:
            connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        checks = connection.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE contype = 'c' AND conrelid::regclass::text = ANY(%s)",
            (list(LEDGER_TABLES),),
        ).fetchall()
        for table, name in checks:
            connection.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for statement in statements:
            connection.execute(statement)


def _sqlite(database_url: str) -> sqlite3.Connection:
    return sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=10)
