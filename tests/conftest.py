"""Fixtures: every test that takes ``database_url`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.databases import DatabaseFactory, require_postgresql
from tests.support.server import ServerProcess
from wallet.api import create_app
from wallet.config import Settings

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def _factories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DatabaseFactory]]:
    factories = {
        backend: DatabaseFactory(backend, tmp_path_factory.mktemp(backend)) for backend in BACKENDS
    }
    yield factories
    for factory in factories.values():
        factory.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql":
        require_postgresql()
    return name


@pytest.fixture
def databases(backend: str, _factories: dict[str, DatabaseFactory]) -> DatabaseFactory:
    return _factories[backend]


@pytest.fixture
def database_url(databases: DatabaseFactory) -> str:
    """A fresh, migrated and seeded database of the test's backend."""
    return databases.fresh()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, seed=True)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """The service as a real process, on the test's database."""
    process = ServerProcess(database_url, tmp_path / "server.log").start()
    yield process
    process.kill()
