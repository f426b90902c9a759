"""The console's events screen, end to end in Chromium, on both backends: the newest events (the
feed's newest position found by probing it, then its last page) with links to their
transactions, pages by position, and the webhook endpoints with their lag and failures.

Each test builds its own data on a service process shared by the module; the feed grows across
tests, so a test only looks for its own events and positions it read itself.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import BACKENDS
from tests.console.chromium import Wallet, running_wallet, screenshot, sign_in
from tests.support.databases import DatabaseFactory, require_postgresql

PAGE_SIZE = 50  # the console's page of events (events.js)
# A new endpoint is tried at once; a generous bound for its first failure to be recorded.
FAILURE_DEADLINE_S = 30.0
REFRESH_EVERY_MS = 250


@pytest.fixture(scope="module", params=BACKENDS)
def wallet(
    request: pytest.FixtureRequest,
    _factories: dict[str, DatabaseFactory],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Wallet]:
    """The service on each backend: the feed's positions are the storage's."""
    if request.param == "postgresql":
        require_postgresql()
    yield from running_wallet(_factories[request.param], tmp_path_factory)


def whole_feed(wallet: Wallet) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = wallet.get("/events", after=after, limit=1000)
        events.extend(page["items"])
        if len(page["items"]) < 1000:
            return events
        after = page["next_after"]


def row_at(page: Page, position: int) -> Locator:
    cell = page.get_by_role("cell", name=str(position), exact=True)
    return page.locator("#feed tbody tr").filter(has=cell)


def cells(row: Locator) -> list[str]:
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def open_events(page: Page, wallet: Wallet) -> None:
    sign_in(page, wallet)
    page.get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()


def test_the_newest_events_link_to_their_transactions(page: Page, wallet: Wallet) -> None:
    user = f"events_{wallet.url.rsplit(':', 1)[1]}"
    wallet.credit("topup", user, "100.00")
    bought = wallet.credit("purchase", user, "30.00")
    held = wallet.post("/holds", {"user_id": user, "asset_code": "GC", "amount": "5.00"})
    feed = whole_feed(wallet)
    newest = feed[-1]["position"]
    position_of = {
        (event["type"], event["data"]["id"]): event["position"]
        for event in feed
        if event["type"] in ("transaction.created", "hold.placed")
    }

    open_events(page, wallet)
    expect(page.get_by_label("After position")).to_have_value(str(max(newest - PAGE_SIZE, 0)))
    rows = page.locator("#feed tbody tr")
    expect(rows).to_have_count(min(newest, PAGE_SIZE))
    expect(rows.last.locator("td").first).to_have_text(str(newest))
    purchase = row_at(page, position_of["transaction.created", bought["id"]])
    assert cells(purchase)[2:6] == ["transaction.created", "purchase", user, "30.00 GC"]
    placed = row_at(page, position_of["hold.placed", held["id"]])
    short = f"{held['id'][:8]}…{held['id'][-4:]}"
    assert cells(placed)[2:6] == ["hold.placed", f"hold {short}", user, "5.00 GC"]
    expect(page.get_by_role("button", name="Newer →")).to_be_disabled()
    screenshot(page, f"12-events-{wallet.backend}")

    # A transaction's link opens the user's screen on it.
    purchase.get_by_role("link", name=f"Transaction {bought['id']}").click()
    expect(page.locator("#detail")).to_contain_text(bought["id"])
    expect(page.locator("#balances table")).to_be_visible()
    assert page.evaluate("window.location.hash") == f"#/users/{user}/{bought['id']}"
    page.go_back()
    expect(row_at(page, position_of["transaction.created", bought["id"]])).to_be_visible()


def test_events_after_a_position_page_by_page(page: Page, wallet: Wallet) -> None:
    user = f"paging_{wallet.url.rsplit(':', 1)[1]}"
    for number in range(1, 2 * PAGE_SIZE + 13):
        wallet.credit("topup", user, f"{number}.00")
    newest = whole_feed(wallet)[-1]["position"]
    open_events(page, wallet)
    rows = page.locator("#feed tbody tr")
    first = rows.first.locator("td").first
    expect(first).to_have_text(str(newest - PAGE_SIZE + 1))
    expect(rows).to_have_count(PAGE_SIZE)

    older = page.get_by_role("button", name="← Older")
    newer = page.get_by_role("button", name="Newer →")
    older.click()
    expect(first).to_have_text(str(newest - 2 * PAGE_SIZE + 1))
    expect(older).to_be_focused()
    assert page.evaluate("window.location.hash") == f"#/events/{newest - 2 * PAGE_SIZE}"
    newer.click()
    expect(first).to_have_text(str(newest - PAGE_SIZE + 1))
    expect(newer).to_be_disabled()

    # A position typed in shows the events after it; the address keeps it.
    position = page.get_by_label("After position")
    position.fill(str(newest - 3))
    position.press("Enter")
    expect(rows).to_have_count(3)
    expect(first).to_have_text(str(newest - 2))
    assert cells(rows.last)[3:6] == ["topup", user, f"{2 * PAGE_SIZE + 12}.00 GC"]
    page.reload()
    expect(rows).to_have_count(3)
    expect(page.get_by_label("After position")).to_have_value(str(newest - 3))
    position.fill(str(newest + 1000))
    position.press("Enter")
    expect(page.locator("#feed")).to_contain_text(f"No event after position {newest + 1000}.")
    page.get_by_role("button", name="Newest").click()
    expect(rows).to_have_count(PAGE_SIZE)
    expect(rows.last.locator("td").first).to_have_text(str(newest))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port bound and never listened on: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def webhook_row(page: Page, url: str) -> Locator:
    return page.locator("#webhooks tbody tr").filter(has=page.get_by_role("cell", name=url))


def test_a_failing_webhook_endpoint_its_lag_and_error_then_disabled(
    page: Page, wallet: Wallet, closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}/hooks/{wallet.backend}"
    types = ["transaction.created", "hold.placed"]
    endpoint = wallet.post("/admin/webhooks", {"url": url, "event_types": types})
    user = f"hooked_{closed_port}"
    wallet.credit("topup", user, "10.00")
    wallet.credit("bonus", user, "1.00")
    newest = whole_feed(wallet)[-1]["position"]
    assert endpoint["last_delivered_position"] == newest - 2

    open_events(page, wallet)
    row = webhook_row(page, url)
    expect(row).to_be_visible()
    # The relay tries at once, then again after jittered delays: refresh until it has failed.
    deadline = time.monotonic() + FAILURE_DEADLINE_S
    while not cells(row)[5]:
        assert time.monotonic() < deadline, f"no failure shown within {FAILURE_DEADLINE_S} s"
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(REFRESH_EVERY_MS)
    failing = wallet.get(f"/admin/webhooks/{endpoint['id']}")
    shown = cells(row)
    assert shown[:4] == [url, ", ".join(types), "enabled", "2"]
    assert shown[4] == failing["failing_since"].replace("T", " ").split(".")[0]
    assert shown[5] == failing["last_error"]
    assert "ConnectionRefusedError" in shown[5]
    expect(row.locator("td").nth(5)).to_have_attribute("title", failing["last_error"])
    screenshot(page, f"13-webhooks-{wallet.backend}", full_page=False)

    # Its attempts: each failed at the first event after its creation.
    page.get_by_role("button", name=f"Attempts of {url}").click()
    attempts = page.locator("#attempts")
    expect(attempts.get_by_role("heading", name=f"Delivery attempts to {url}")).to_be_focused()
    first = cells(attempts.locator("tbody tr").last)
    assert (first[1], first[3]) == (str(newest - 1), "—")
    assert "ConnectionRefusedError" in first[4]

    page.get_by_role("button", name=f"Disable {url}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"No event goes to {url} while it is disabled")
    dialog.get_by_role("button", name="Disable", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text(f"{url} is disabled.")
    expect(row.locator("td").nth(2)).to_have_text("disabled")
    expect(page.get_by_role("button", name=f"Enable {url}")).to_be_focused()
    assert wallet.get(f"/admin/webhooks/{endpoint['id']}")["status"] == "disabled"

    # Enabled again behind the same dialog, it resumes where it stopped.
    page.get_by_role("button", name=f"Enable {url}").click()
    expect(dialog).to_contain_text(f"resume after position {newest - 2}, 2 positions behind")
    dialog.get_by_role("button", name="Enable", exact=True).click()
    expect(row.locator("td").nth(2)).to_have_text("enabled")
    assert wallet.get(f"/admin/webhooks/{endpoint['id']}")["status"] == "enabled"
    wallet.http.delete(f"/admin/webhooks/{endpoint['id']}").raise_for_status()
