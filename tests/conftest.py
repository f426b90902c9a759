"""Fixtures: every test that takes ``database_url`` runs on SQLite and on PostgreSQL, and every
randomised test takes its seed from ``seed``, which names it when the test fails.
"""

from __future__ import annotations

import os
import random
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.databases import DatabaseFactory, require_postgresql
from tests.support.server import ServerProcess
from wallet.api import create_app
from wallet.config import Settings

BACKENDS = ["sqlite", "postgresql"]
# An app made in this process delivers from its own event loop, as it did before the service had
# a relay process: a child per app would cost every test a process start (and tests move the
# clock). Server processes (tests/support/server.py) run the default, a relay process each.
os.environ["WALLET_EVENTS_RELAY"] = "inline"
# Set it to a seed that a failure printed to run the same random choices again.
SEED_VARIABLE = "WALLET_TEST_SEED"
_SEED = pytest.StashKey[int]()


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The seed of a randomised test: WALLET_TEST_SEED if it is set, else a new one. A failing
    test's report carries it, with the command line that replays it."""
    value = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    request.node.stash[_SEED] = value
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _SEED in item.stash:
        value = item.stash[_SEED]
        replay = f"{SEED_VARIABLE}={value} pytest '{item.nodeid}'"
        report.sections.append(("random seed", f"seed {value}; replay with: {replay}"))
    return report


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
