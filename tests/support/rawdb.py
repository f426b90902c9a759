"""A bare connection to a test database, with none of the service's code in between.

For tests that check what the schema itself refuses: SQL written with ``?`` placeholders runs on
both backends; every statement runs in autocommit unless a unit of work is begun explicitly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

# What a refused write raises: a CHECK, a trigger's RAISE(ABORT) or RAISE EXCEPTION, a foreign
# key. psycopg's CheckViolation, ForeignKeyViolation … are IntegrityErrors.
REFUSED = (sqlite3.IntegrityError, psycopg.errors.IntegrityError)


class RawConnection:
    def __init__(self, database_url: str) -> None:
        self.backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
        self._connection: Any
        if self.backend == "sqlite":
            self._connection = sqlite3.connect(
                database_url.removeprefix("sqlite:///"), isolation_level=None
            )
            self._connection.execute("PRAGMA foreign_keys = ON")
        else:
            self._connection = psycopg.connect(database_url, autocommit=True)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.backend == "postgresql" else sql

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(self._sql(sql), params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        rows = self.all(sql, params)
        assert len(rows) == 1, rows
        return rows[0]

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.execute(self._sql(sql), params)

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """BEGIN … COMMIT, rolled back if anything in it raises."""
        self.run("BEGIN")
        try:
            yield
            # A deferred constraint is checked here, so the commit itself may be refused.
            self.run("COMMIT")
        except BaseException:
            if self.in_unit_of_work:
                self.run("ROLLBACK")
            raise

    @property
    def in_unit_of_work(self) -> bool:
        if self.backend == "sqlite":
            return bool(self._connection.in_transaction)
        status = self._connection.info.transaction_status
        return bool(status != psycopg.pq.TransactionStatus.IDLE)

    def close(self) -> None:
        self._connection.close()


@contextmanager
def connect(database_url: str) -> Iterator[RawConnection]:
    connection = RawConnection(database_url)
    try:
        yield connection
    finally:
        connection.close()
