"""What the browser tests share: Debian's Chromium, the running service with an all-scopes key,
and where screenshots go (test-artifacts/console/, gitignored) for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.databases import DatabaseFactory
from tests.support.server import ROOT, ServerProcess
from wallet.config import Settings
from wallet.service.keys import create_api_key
from wallet.storage import open_database

CHROMIUM = Path(os.environ.get("WALLET_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "console"
TIMEOUT_MS = 10_000


class Wallet:
    """The running service, and an httpx client with an all-scopes key to set data up and check."""

    def __init__(self, server: ServerProcess, key: str, backend: str) -> None:
        self.backend = backend
        self.url = server.url
        self.key = key
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str, **params: object) -> dict[str, Any]:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def credit(self, kind: str, user_id: str, amount: str, asset: str = "GC") -> dict[str, Any]:
        body = {"transaction_type": kind, "user_id": user_id, "asset_code": asset, "amount": amount}
        return self.post("/transaction", body)

    def balance(self, user_id: str, asset: str = "GC") -> dict[str, Any]:
        return self.get(f"/balance/{user_id}/{asset}")


def running_wallet(
    factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Wallet]:
    """A service process on a fresh database of the factory's backend, with an all-scopes key."""
    database_url = factory.fresh()
    database = open_database(Settings(database_url=database_url))
    try:
        _, key = create_api_key(database, "console-e2e", ["read", "write", "admin"])
    finally:
        database.close()
    log = tmp_path_factory.mktemp("console") / "server.log"
    server = ServerProcess(database_url, log).start()
    wallet = Wallet(server, key, factory.backend)
    yield wallet
    wallet.http.close()
    server.kill()


def sign_in(page: Page, wallet: Wallet) -> None:
    page.goto(f"{wallet.url}/console/")
    page.get_by_label("API key").fill(wallet.key)
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=full_page)
