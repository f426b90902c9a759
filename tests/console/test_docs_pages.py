"""/docs and /redoc in Chromium with the internet cut off: every request to another origin than
the service's own is aborted, and each page still renders every operation of the OpenAPI
document, with no script refused by its Content-Security-Policy.

Each page is saved, at POST /transaction, as 10-docs.png and 11-redoc.png beside the console's
screenshots.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect

from tests.console.chromium import TIMEOUT_MS, Wallet, screenshot

# ReDoc's "API docs by Redocly" link shows this logo, and hides it when it cannot be loaded.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass
class Offline:
    """A page that reaches only the service, and what it tried beyond."""

    page: Page
    aborted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@pytest.fixture
def offline(browser: Browser, wallet: Wallet) -> Iterator[Offline]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    offline = Offline(context.new_page())

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(f"{wallet.url}/"):
            route.continue_()
        else:
            offline.aborted.append(route.request.url)
            route.abort()

    def note_refusal(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            offline.refused.append(message.text)

    context.route("**/*", only_the_service)
    offline.page.on("console", note_refusal)
    yield offline
    context.close()


def operations(wallet: Wallet) -> dict[tuple[str, str], str]:
    """(METHOD, path) → summary, for every operation of the OpenAPI document."""
    paths = wallet.http.get("/openapi.json").json()["paths"]
    return {
        (method.upper(), path): operation["summary"]
        for path, methods in paths.items()
        for method, operation in methods.items()
    }


def test_swagger_ui_renders_every_operation_offline(offline: Offline, wallet: Wallet) -> None:
    page = offline.page
    expected = operations(wallet)
    page.goto(f"{wallet.url}/docs")
    expect(page.locator(".opblock")).to_have_count(len(expected))
    shown = page.locator(".opblock-summary").evaluate_all(
        """summaries => summaries.map((s) => [
            s.querySelector(".opblock-summary-method").textContent,
            s.querySelector(".opblock-summary-path").dataset.path,
        ])"""
    )
    assert {(method, path) for method, path in shown} == set(expected)

    post = page.locator(".opblock-post").filter(has=page.locator("[data-path='/transaction']"))
    expect(post.locator(".opblock-summary-method")).to_have_text("POST")
    expect(post).to_contain_text(expected[("POST", "/transaction")])
    post.locator(".opblock-summary-control").click()
    expect(post.get_by_text("insufficient_funds").first).to_be_visible()
    post.scroll_into_view_if_needed()
    screenshot(page, "10-docs", full_page=False)
    assert offline.aborted == []
    assert offline.refused == []


def test_redoc_renders_every_operation_offline(offline: Offline, wallet: Wallet) -> None:
    page = offline.page
    expected = operations(wallet)
    page.goto(f"{wallet.url}/redoc")
    for summary in expected.values():
        heading = page.locator("h2", has_text=re.compile(rf"^{re.escape(summary)}\s*$"))
        expect(heading).to_be_visible()
    post = page.locator("[data-section-id$='/operation/post_transaction_transaction_post']")
    expect(post).to_contain_text("/transaction")
    expect(post).to_contain_text("insufficient_funds")
    post.scroll_into_view_if_needed()
    screenshot(page, "11-redoc", full_page=False)
    assert offline.aborted == []
    assert all(REDOCLY_LOGO in refusal for refusal in offline.refused), offline.refused
