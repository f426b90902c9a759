"""Real databases for the tests: a SQLite file, or a PostgreSQL database the suite creates.

Each test gets a fresh database copied from a template that was migrated and seeded once per run
(a file copy for SQLite, CREATE DATABASE … TEMPLATE for PostgreSQL); every database the suite
creates is dropped when the run ends.
"""

from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from wallet.config import Settings
from wallet.service.wallet import WalletService

PG_ADMIN_URL = os.environ.get("WALLET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PREFIX = f"wallet_test_{os.getpid()}_"
# Drops at once, all test workers together: the server allows 100 connections, and the workers
# still running tests need theirs.
DROPS_AT_ONCE = 64


def pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def postgresql_available() -> str | None:
    """None if the test server answers, else why not."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip()


def require_postgresql() -> None:
    reason = postgresql_available()
    if reason is None:
        return
    message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI requires the PostgreSQL tests)")
    pytest.skip(message + " (set it up, or run .ci/run, to include the PostgreSQL tests)")


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql)


def _drop(name: str) -> psycopg.Error | None:
    try:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as error:
        return error
    return None


class DatabaseFactory:
    """Hands out fresh, seeded databases of one backend, and drops them all at the end."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self._template: str | None = None
        self._created: list[str] = []

    def _template_url(self) -> str:
        if self._template is None:
            if self.backend == "sqlite":
                url = f"sqlite:///{self.workdir / 'template.db'}"
            else:
                name = PREFIX + "template"
                _admin(f'DROP DATABASE IF EXISTS "{name}"')
                _admin(f'CREATE DATABASE "{name}"')
                self._created.append(name)
                url = pg_url(name)
            service = WalletService(Settings(database_url=url, seed=True))
            service.start()
            service.stop()
            self._template = url
        return self._template

    def fresh(self) -> str:
        template = self._template_url()
        suffix = uuid.uuid4().hex[:10]
        if self.backend == "sqlite":
            path = self.workdir / f"wallet_{suffix}.db"
            shutil.copyfile(template.removeprefix("sqlite:///"), path)
            return f"sqlite:///{path}"
        name = PREFIX + suffix
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{PREFIX}template"')
        self._created.append(name)
        return pg_url(name)

    def empty(self) -> str:
        """A database with nothing in it, not even the schema."""
        suffix = uuid.uuid4().hex[:10]
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / f'empty_{suffix}.db'}"
        name = PREFIX + suffix
        _admin(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return pg_url(name)

    def drop_all(self) -> None:
        """Drop every database this run created; the copies in parallel, then the template they
        were copied from.

        Each DROP DATABASE waits for a checkpoint (about a second on a busy disk), and drops that
        wait together share one: 8 at a time, the hundreds a run makes took 45 s per test worker.
        A drop that fails does not stop the others; the first failure is raised at the end.
        """
        if self.backend != "postgresql":
            return
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        template, *copies = self._created or [""]
        with ThreadPoolExecutor(max_workers=max(4, DROPS_AT_ONCE // workers)) as pool:
            failures = [error for error in pool.map(_drop, copies) if error is not None]
        if template:
            _admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        self._created.clear()
        if failures:
            raise failures[0]
