"""Fixtures of the browser tests: one service process and one Chromium per test module, and a
fresh browser context (no cookies, no storage) per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.console.chromium import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, Wallet, running_wallet
from tests.support.databases import DatabaseFactory


@pytest.fixture(scope="module")
def wallet(
    _factories: dict[str, DatabaseFactory], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Wallet]:
    yield from running_wallet(_factories["sqlite"], tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI requires the console's end-to-end tests")
        pytest.skip(f"{message}: skipping the console's end-to-end tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, wallet: Wallet) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()
