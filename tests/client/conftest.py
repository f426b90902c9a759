"""Fixtures of the client tests: one real service process per backend for the whole run.

A fresh server per test would cost a process start each (about a second); the client tests
instead share one server per backend and keep out of each other's way by using a new user for
every test (``user_id``), so each test still builds its own data and reads only its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import BACKENDS
from tests.support.databases import DatabaseFactory, require_postgresql
from tests.support.server import ServerProcess
from wallet.client import RetryPolicy, WalletClient
from wallet.client import sync as sync_client

# Retries without the waiting, so the tests of retries stay fast.
FAST_RETRY = RetryPolicy(attempts_max=3, backoff_initial_s=0.01, backoff_max_s=0.05)


@pytest.fixture(scope="session", params=BACKENDS)
def wallet_server(
    request: pytest.FixtureRequest,
    _factories: dict[str, DatabaseFactory],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """The service as a real process on a fresh database of each backend in turn."""
    backend: str = request.param
    if backend == "postgresql":
        require_postgresql()
    log_path = Path(tmp_path_factory.mktemp(f"client-{backend}")) / "server.log"
    process = ServerProcess(_factories[backend].fresh(), log_path).start()
    yield process
    process.kill()


@pytest.fixture
def wallet(wallet_server: ServerProcess) -> Iterator[WalletClient]:
    with WalletClient(wallet_server.url, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
def user_id() -> str:
    """A user of this test alone (it exists from its first credit)."""
    return f"client-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the client takes between attempts, recorded instead of slept: a test checks
    how long the client would wait, not how long a busy machine took."""
    recorded: list[float] = []
    monkeypatch.setattr(sync_client, "time", SimpleNamespace(sleep=recorded.append))
    return recorded
