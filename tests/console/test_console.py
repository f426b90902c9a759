"""The support console, end to end: headless Chromium (Debian's package) drives /console on a
real server process, on SQLite (the console only speaks the HTTP API, so one backend is enough;
the activity endpoint is tested on both in tests/api/test_activity.py).

Each main screen is saved as a PNG under test-artifacts/console/ (gitignored) for a person to look
at. Without Chromium these tests skip, saying so; under CI=true they fail instead (conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.console.chromium import TIMEOUT_MS, Wallet, screenshot, sign_in
from wallet.domain.ledger import POSTABLE_TRANSACTION_TYPES
from wallet.limits import DESCRIPTION_LENGTH_MAX

SCREEN_WIDTHS = (1280, 1920)


@pytest.fixture(params=SCREEN_WIDTHS, ids=lambda width: f"{width}px")
def screen(request: pytest.FixtureRequest, browser: Browser, wallet: Wallet) -> Iterator[Page]:
    """A page on a laptop's and on a desktop's screen width."""
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def find_user(page: Page, user_id: str) -> None:
    page.get_by_label("User id").fill(user_id)
    page.get_by_label("User id").press("Enter")
    expect(page.locator("#balances table")).to_be_visible()


def gc_row(page: Page) -> Locator:
    return page.locator("#balances tbody tr").filter(has=page.get_by_role("cell", name="GC"))


def balance_row(page: Page, asset: str) -> list[str]:
    row = page.locator("#balances tbody tr").filter(has=page.get_by_role("cell", name=asset))
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def test_sign_in_refuses_a_wrong_key_readably_then_accepts_the_right_one(
    page: Page, wallet: Wallet
) -> None:
    page.goto(f"{wallet.url}/console")
    key = page.get_by_label("API key")
    expect(key).to_be_focused()
    key.fill("wk_000000000000_" + "A" * 43)
    key.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Unauthorized: the API key is unknown or revoked")
    screenshot(page, "01-sign-in")
    key.fill(wallet.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_label("User id")).to_be_focused()
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("localStorage.length") == 0


def test_look_up_a_user_balances_with_held(page: Page, wallet: Wallet) -> None:
    wallet.credit("topup", "lookup_1", "1000.00")
    wallet.credit("bonus", "lookup_1", "25.50", asset="LP")
    wallet.post("/holds", {"user_id": "lookup_1", "asset_code": "GC", "amount": "40.00"})
    sign_in(page, wallet)
    find_user(page, "lookup_1")
    assert balance_row(page, "GC") == ["GC", "960.00", "40.00", "active"]
    assert balance_row(page, "LP") == ["LP", "25.50", "0.00", "active"]
    assert balance_row(page, "DI") == ["DI", "0.00", "0.00", "active"]
    expect(page.locator("#holds tbody tr")).to_have_count(1)
    expect(page.locator("#history tbody tr")).to_have_count(3)
    screenshot(page, "02-user")

    page.get_by_label("User id").fill("nobody_ever")
    page.get_by_label("User id").press("Enter")
    expect(page.locator("#balances [role=alert]")).to_have_text(
        "User not found: user nobody_ever has never been credited"
    )


def test_page_through_the_history_and_filter_it(page: Page, wallet: Wallet) -> None:
    for number in range(1, 23):
        wallet.credit("topup", "pager_1", f"{number}.00")
    wallet.credit("bonus", "pager_1", "7.77", asset="DI")
    wallet.credit("bonus", "pager_1", "8.88")
    sign_in(page, wallet)
    find_user(page, "pager_1")
    rows = page.locator("#history tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("8.88")
    older = page.get_by_role("button", name="Older →")
    newer = page.get_by_role("button", name="← Newer")
    expect(newer).to_be_disabled()
    older.click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(rows.first).to_contain_text("14.00")
    older.click()
    expect(page.get_by_text("Page 3")).to_be_visible()
    expect(rows).to_have_count(4)
    expect(rows.last).to_contain_text("1.00")
    expect(older).to_be_disabled()
    newer.click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(rows.first).to_contain_text("14.00")

    # The kinds offered are the service's own list (from its OpenAPI document), after "any".
    kinds = page.get_by_label("Type").locator("option").all_inner_texts()
    assert kinds[1:] == [kind.value for kind in POSTABLE_TRANSACTION_TYPES]
    page.get_by_label("Type").select_option("bonus")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_text("Page 1")).to_be_visible()
    page.get_by_label("Asset").select_option("DI")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("7.77")


def test_open_a_transaction_and_see_its_entries(page: Page, wallet: Wallet) -> None:
    wallet.credit("topup", "entries_1", "100.00")
    bought = wallet.credit("purchase", "entries_1", "30.00")
    sign_in(page, wallet)
    find_user(page, "entries_1")
    page.get_by_role("button", name=f"Open transaction {bought['id']}").click()
    detail = page.locator("#detail")
    expect(detail.get_by_role("heading", name="Transaction")).to_be_focused()
    expect(detail).to_contain_text(bought["id"])
    entries = detail.locator("tbody tr")
    expect(entries).to_have_count(2)
    user_entry = [t.strip() for t in entries.nth(0).locator("td").all_inner_texts()]
    by_account = {
        row[0]: row[1:]
        for row in (
            [t.strip() for t in entries.nth(i).locator("td").all_inner_texts()] for i in (0, 1)
        )
    }
    assert by_account["user entries_1"] == ["-30.00", "100.00", "70.00"], user_entry
    treasury = by_account["system treasury"]
    assert treasury[0] == "30.00"
    screenshot(page, "03-transaction")


def test_a_partial_refund_moves_the_balance_once_even_after_a_double_click(
    page: Page, wallet: Wallet
) -> None:
    wallet.credit("topup", "refund_1", "100.00")
    bought = wallet.credit("purchase", "refund_1", "30.00")
    sign_in(page, wallet)
    find_user(page, "refund_1")
    page.get_by_role("button", name=f"Open transaction {bought['id']}").click()
    page.get_by_role("button", name="Refund…").click()
    dialog = page.get_by_role("dialog")
    amount = dialog.get_by_label("Amount to refund (GC)")
    expect(amount).to_be_focused()
    expect(amount).to_have_value("30.00")
    amount.fill("12.50")
    dialog.get_by_label("Reason (optional)").fill("Item never delivered")
    screenshot(page, "04-refund-dialog")
    dialog.get_by_role("button", name="Refund", exact=True).dblclick()
    expect(page.get_by_role("status")).to_contain_text("Refunded 12.50 GC")
    expect(dialog).to_be_hidden()
    expect(gc_row(page)).to_contain_text("82.50")

    assert wallet.balance("refund_1")["balance"] == "82.50"
    assert wallet.get(f"/transaction/{bought['id']}")["refunded_amount"] == "12.50"
    refunds = wallet.get("/transaction/refund_1/history", transaction_type="refund")["items"]
    assert [r["amount"] for r in refunds] == ["12.50"]
    assert refunds[0]["description"] == "Item never delivered"
    expect(page.locator("#detail")).to_contain_text("12.50 GC")


def test_a_refused_refund_shows_a_readable_message(page: Page, wallet: Wallet) -> None:
    wallet.credit("topup", "refused_1", "100.00")
    bought = wallet.credit("purchase", "refused_1", "20.00")
    sign_in(page, wallet)
    find_user(page, "refused_1")
    page.get_by_role("button", name=f"Open transaction {bought['id']}").click()
    page.get_by_role("button", name="Refund…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Amount to refund (GC)").fill("25.00")
    dialog.get_by_label("Amount to refund (GC)").press("Enter")
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("Refund exceeds original:")
    expect(alert).to_contain_text("20.00 GC left to refund")
    assert "{" not in alert.inner_text()
    confirm = dialog.get_by_role("button", name="Refund", exact=True)
    expect(confirm).to_be_enabled()
    screenshot(page, "05-refused")

    # A new attempt takes a new idempotency key: the refusal was decided and kept under the old.
    dialog.get_by_label("Amount to refund (GC)").fill("abc")
    confirm.click()
    expect(alert).to_contain_text("Validation error:")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert wallet.balance("refused_1")["balance"] == "80.00"


def test_release_and_capture_holds_behind_a_confirmation(page: Page, wallet: Wallet) -> None:
    wallet.credit("topup", "holds_1", "100.00")
    first = wallet.post("/holds", {"user_id": "holds_1", "asset_code": "GC", "amount": "15.00"})
    sign_in(page, wallet)
    find_user(page, "holds_1")
    assert balance_row(page, "GC") == ["GC", "85.00", "15.00", "active"]
    holds = page.locator("#holds tbody tr")
    expect(holds).to_have_count(1)
    screenshot(page, "06-holds")
    holds.first.get_by_role("button", name="Release…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("all of its 15.00 GC go back to holds_1")
    dialog.get_by_role("button", name="Release").dblclick()
    expect(page.get_by_role("status")).to_contain_text("Released hold")
    expect(page.locator("#holds")).to_contain_text("No pending holds.")
    assert wallet.get(f"/holds/{first['id']}")["status"] == "released"
    expect(gc_row(page)).to_have_text("GC100.000.00active")

    second = wallet.post("/holds", {"user_id": "holds_1", "asset_code": "GC", "amount": "10.00"})
    find_user(page, "holds_1")
    holds.first.get_by_role("button", name="Capture…").click()
    dialog.get_by_label("Amount to capture (GC)").fill("4.00")
    dialog.get_by_role("button", name="Capture").click()
    expect(page.get_by_role("status")).to_contain_text("Captured 4.00 GC")
    captured = wallet.get(f"/holds/{second['id']}")
    assert (captured["status"], captured["captured_amount"]) == ("captured", "4.00")
    assert wallet.balance("holds_1") == {
        **wallet.balance("holds_1"),
        "balance": "96.00",
        "held": "0.00",
    }


def test_freeze_and_unfreeze_behind_a_confirmation(page: Page, wallet: Wallet) -> None:
    wallet.credit("topup", "freeze_1", "100.00")
    sign_in(page, wallet)
    find_user(page, "freeze_1")
    freezes = page.locator("#freezes")
    expect(freezes).to_contain_text("Not frozen.")
    expect(freezes).to_contain_text("Never frozen.")

    freezes.get_by_role("button", name="Freeze…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("will be refused until it is unfrozen")
    dialog.get_by_label("Reason", exact=True).fill("suspected duplication exploit")
    dialog.get_by_label("Asset (optional)").fill("GC")
    dialog.get_by_role("button", name="Freeze").dblclick()
    expect(page.get_by_role("status")).to_contain_text("Froze freeze_1's GC account")
    expect(gc_row(page)).to_contain_text("frozen")
    assert balance_row(page, "DI") == ["DI", "0.00", "0.00", "active"]
    in_force = freezes.locator("table").first.locator("tbody tr")
    expect(in_force).to_have_count(1)
    expect(in_force.first).to_contain_text("suspected duplication exploit")
    assert wallet.balance("freeze_1")["frozen"] is True
    screenshot(page, "09-freezes")

    # The API refuses a top-up of the frozen account.
    refused = wallet.http.post(
        "/transaction",
        json={"transaction_type": "topup", "user_id": "freeze_1", "asset_code": "GC", "amount": 1},
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "account_frozen")

    in_force.first.get_by_role("button", name="Unfreeze…").click()
    expect(dialog).to_contain_text("Lift the freeze of freeze_1's GC account")
    dialog.get_by_label("Reason (optional)").fill("ticket closed")
    dialog.get_by_role("button", name="Unfreeze").click()
    expect(page.get_by_role("status")).to_contain_text("Unfroze freeze_1's GC account")
    expect(freezes).to_contain_text("Not frozen.")
    expect(gc_row(page)).to_contain_text("active")
    log = freezes.locator("table").last.locator("tbody tr")
    expect(log).to_have_count(2)
    expect(log.first).to_contain_text("unfreeze")
    expect(log.first).to_contain_text("ticket closed")
    assert wallet.balance("freeze_1")["frozen"] is False
    wallet.credit("topup", "freeze_1", "1.00")


def test_supply_and_the_daily_activity_chart(page: Page, wallet: Wallet) -> None:
    wallet.credit("topup", "chart_1", "300.00")
    wallet.credit("bonus", "chart_1", "120.00")
    wallet.credit("purchase", "chart_1", "75.25")
    sign_in(page, wallet)
    page.get_by_role("link", name="Supply").click()
    expect(page.get_by_role("heading", name="Supply of Diamonds (DI)")).to_be_visible()
    page.get_by_role("link", name="GC · Gold Coins").click()
    expect(page.get_by_role("heading", name="Supply of Gold Coins (GC)")).to_be_visible()
    supply = page.locator("#supply")
    expect(supply.locator("dl, .notice, [role=alert]")).to_be_visible()
    if supply.locator(".notice").count():
        expect(supply).to_contain_text("Supply figures are not available from this server yet")
    else:
        expect(supply.locator(".figure").first).to_contain_text("GC")
    chart = page.locator("#activity svg")
    expect(chart.locator("rect")).to_have_count(30 * 3)
    today = wallet.get("/admin/assets/GC/activity", days=1)["daily"][0]
    expect(chart.locator("rect.bar-purchase title").last).to_have_text(
        f"{today['date']} Purchases: {today['activity']['purchase']['amount']}"
    )
    heights = [
        float(h)
        for h in chart.locator("rect.bar-topup").evaluate_all(
            "rs => rs.map(r => r.getAttribute('height'))"
        )
    ]
    assert heights[-1] > 0
    assert heights[:-1] == [0.0] * 29
    screenshot(page, "07-supply")
    page.get_by_text("Show as a table").click()
    expect(page.locator("#activity table tbody tr")).to_have_count(30)


def test_signed_out_the_header_offers_neither_screens_nor_sign_out(
    screen: Page, wallet: Wallet
) -> None:
    width = screen.viewport_size["width"] if screen.viewport_size else 0
    nav, sign_out = screen.locator("#nav"), screen.locator("#sign-out")
    screen.goto(f"{wallet.url}/console/")
    expect(screen.get_by_label("API key")).to_be_focused()
    assert not nav.is_visible()
    assert not sign_out.is_visible()
    screenshot(screen, f"08-signed-out-{width}")

    sign_in(screen, wallet)
    expect(nav.get_by_role("link", name="Supply")).to_be_visible()
    sign_out.click()
    expect(screen.get_by_label("API key")).to_be_visible()
    assert not nav.is_visible()
    assert not sign_out.is_visible()


def line_count(cell: Locator) -> int:
    """How many lines of text the cell shows: the distinct tops of its text's boxes."""
    count: int = cell.evaluate(
        """cell => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            const tops = [...range.getClientRects()].map((box) => Math.round(box.top));
            return new Set(tops).size;
        }"""
    )
    return count


def inside(inner: Locator, outer: Locator) -> bool:
    """Whether the inner element's box lies wholly within the outer one's."""
    box, frame = inner.bounding_box(), outer.bounding_box()
    assert box is not None
    assert frame is not None
    return (
        frame["x"] <= box["x"]
        and box["x"] + box["width"] <= frame["x"] + frame["width"]
        and frame["y"] <= box["y"]
        and box["y"] + box["height"] <= frame["y"] + frame["height"]
    )


def test_history_and_holds_fit_their_panels_whatever_the_descriptions(
    screen: Page, wallet: Wallet
) -> None:
    width = screen.viewport_size["width"] if screen.viewport_size else 0
    user_id = f"described_{width}"
    receipt = "receipt:" + "7f3a9c" * 10
    long_description = (f"Bought the legendary sword of a thousand truths, {receipt}; " * 8)[
        :DESCRIPTION_LENGTH_MAX
    ]
    refund_reason = (
        "Refunded: the item was never delivered to the player's inventory because the game "
        "server restarted during the trade; support ticket 48213 has the logs"
    )
    credit = {"transaction_type": "topup", "user_id": user_id, "asset_code": "GC"}
    wallet.post(
        "/transaction", {**credit, "amount": "1000.00", "description": "Supply of Gold Coins"}
    )
    bought = wallet.post(
        "/transaction",
        {
            **credit,
            "transaction_type": "purchase",
            "amount": "30.00",
            "description": long_description,
        },
    )
    wallet.post(
        "/transaction",
        {
            "transaction_type": "refund",
            "refund_of": bought["id"],
            "amount": "12.50",
            "description": refund_reason,
        },
    )
    wallet.post(
        "/holds",
        {"user_id": user_id, "asset_code": "GC", "amount": "5.00", "description": long_description},
    )
    sign_in(screen, wallet)
    find_user(screen, user_id)
    rows = screen.locator("#history tbody tr")
    expect(rows).to_have_count(4)
    screenshot(screen, f"09-long-descriptions-{width}")

    history = screen.locator("#history")
    assert inside(history, screen.locator("main"))
    for row in rows.all():
        assert inside(row.get_by_role("button", name="Open"), history)
    described = rows.filter(has_text="legendary sword").locator("td").nth(6)
    expect(described).to_have_attribute("title", long_description)
    assert line_count(described) == 1

    holds = screen.locator("#holds")
    hold = holds.locator("tbody tr")
    expect(hold).to_have_count(1)
    for name in ("Capture…", "Release…"):
        assert inside(hold.get_by_role("button", name=name), holds)
    assert line_count(hold.locator("td").nth(3)) == 1


def test_find_transactions_by_reference_across_users_and_open_one(
    page: Page, wallet: Wallet
) -> None:
    order = "A-1042"
    credit = {"transaction_type": "topup", "asset_code": "GC"}
    wallet.post("/transaction", {**credit, "user_id": "buyer_1", "amount": "100.00"})
    paid = wallet.post(
        "/transaction",
        {
            **credit,
            "transaction_type": "purchase",
            "user_id": "buyer_1",
            "amount": "40.00",
            "description": "Sword of dawn",
            "metadata": {"order_id": order, "leg": "pay"},
        },
    )
    earned = wallet.post(
        "/transaction",
        {
            **credit,
            "transaction_type": "bonus",
            "user_id": "seller_1",
            "amount": "36.00",
            "metadata": {"order_id": order, "leg": "earn"},
        },
    )
    held = wallet.post(
        "/holds",
        {
            "user_id": "buyer_1",
            "asset_code": "GC",
            "amount": "4.00",
            "metadata": {"order_id": order},
        },
    )
    # The same value under another key, and another order: neither is found.
    wallet.post(
        "/transaction",
        {**credit, "user_id": "seller_1", "amount": "1.00", "metadata": {"receipt": order}},
    )
    wallet.post(
        "/transaction",
        {**credit, "user_id": "buyer_1", "amount": "2.00", "metadata": {"order_id": "A-1043"}},
    )
    sign_in(page, wallet)
    page.get_by_role("link", name="Find").click()
    expect(page.get_by_label("Key")).to_be_focused()
    page.get_by_label("Key").fill("order_id")
    page.get_by_label("Value").fill(order)
    page.get_by_label("Value").press("Enter")

    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(3)
    assert page.evaluate("window.location.hash") == f"#/find/order_id={order}"
    cells = [[t.strip() for t in row.locator("td").all_inner_texts()][1:6] for row in rows.all()]
    assert cells == [
        ["buyer_1", "hold", "GC", "4.00", ""],
        ["seller_1", "bonus", "GC", "36.00", ""],
        ["buyer_1", "purchase", "GC", "40.00", "Sword of dawn"],
    ]
    expect(
        page.get_by_role("button", name=f"Open transaction {held['transactions'][0]}")
    ).to_be_visible()
    expect(page.get_by_role("button", name=f"Open transaction {earned['id']}")).to_be_visible()
    screenshot(page, "10-find")

    page.get_by_role("button", name=f"Open transaction {paid['id']}").click()
    detail = page.locator("#detail")
    expect(detail.get_by_role("heading", name="Transaction")).to_be_focused()
    expect(detail).to_contain_text(paid["id"])
    metadata = detail.get_by_role("definition").filter(has=page.get_by_role("link"))
    expect(metadata).to_have_count(2)
    pairs = detail.locator(".metadata dt, .metadata dd").all_inner_texts()
    assert pairs == ["leg", "pay", "order_id", order]  # in the order the service keeps, by key
    expect(detail.locator("tbody tr")).to_have_count(2)
    screenshot(page, "11-find-transaction")

    # The user's own screen opens on that transaction, its metadata shown there too.
    page.get_by_role("link", name="Open on the screen of buyer_1").click()
    expect(page.locator("#balances table")).to_be_visible()
    expect(page.locator("#detail")).to_contain_text(paid["id"])
    assert page.locator("#detail .metadata dd").all_inner_texts() == ["pay", order]
    expect(page.get_by_role("button", name="Refund…")).to_be_visible()
    first_topup = page.locator("#history tbody tr").last
    first_topup.get_by_role("button", name="Open").click()
    expect(page.locator("#detail .metadata")).to_have_text("MetadataNo metadata.")
    # A transaction that cannot be refunded (a hold's) ends with its entries, and nothing else.
    page.get_by_role("button", name=f"Open transaction {held['transactions'][0]}").click()
    expect(page.locator("#detail .metadata dd")).to_have_text([order])
    last = page.locator("#detail > div").evaluate("body => body.lastChild.nodeName")
    assert last == "TABLE"
    expect(page.get_by_role("button", name="Refund…")).to_have_count(0)

    # A reference in a transaction's metadata finds the others that carry it.
    page.get_by_role("button", name=f"Open transaction {paid['id']}").click()
    page.locator("#detail .metadata").get_by_role("link", name="pay").click()
    expect(page.get_by_role("heading", name="Transactions with leg = pay")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("40.00")


def test_find_by_reference_pages_with_newer_and_older(page: Page, wallet: Wallet) -> None:
    for number in range(1, 13):
        wallet.post(
            "/transaction",
            {
                "transaction_type": "topup",
                "user_id": f"shop_{number}",
                "asset_code": "GC",
                "amount": f"{number}.00",
                "metadata": {"batch": "B-7"},
            },
        )
    sign_in(page, wallet)
    page.goto(f"{wallet.url}/console/#/find/batch=B-7")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("12.00")
    older = page.get_by_role("button", name="Older →")
    newer = page.get_by_role("button", name="← Newer")
    expect(newer).to_be_disabled()
    older.click()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(rows).to_have_count(2)
    expect(rows.last).to_contain_text("shop_1")
    expect(older).to_be_disabled()
    expect(newer).to_be_focused()
    newer.click()
    expect(page.get_by_text("Page 1")).to_be_visible()
    expect(rows.first).to_contain_text("shop_12")

    page.get_by_label("Value").fill("B-8")
    page.get_by_label("Value").press("Enter")
    expect(page.locator("#results")).to_contain_text("No transaction has batch = B-8.")
    # A key the service would refuse, typed into the address, is answered readably.
    page.goto(f"{wallet.url}/console/#/find/{'k' * 41}=1")
    expect(page.locator("#results [role=alert]")).to_contain_text(
        "Validation error: a metadata key is 1 to 40 characters"
    )


def test_the_supply_screen_shows_the_daily_limits_set_through_the_api(
    page: Page, wallet: Wallet
) -> None:
    # High enough to change nothing for the other tests that share this service.
    limits = {"debit_per_day": "999999.00", "credit_per_day": None}
    assert wallet.http.put("/admin/limits/LP", json=limits).status_code == 200
    override = {"debit_per_day": "12.50", "credit_per_day": "0"}
    assert wallet.http.put("/admin/users/limits_1/limits/LP", json=override).status_code == 200
    sign_in(page, wallet)
    page.get_by_role("link", name="Supply").click()
    page.get_by_role("link", name="LP · Loyalty Points").click()

    panel = page.locator("#limits")
    expect(panel.get_by_role("heading")).to_have_text("Daily limits of LP (per user, per UTC day)")
    expect(panel.locator("#limit-everyone")).to_contain_text("Every user may spend999999.00 LP")
    expect(panel.locator("#limit-everyone")).to_contain_text("Every user may receiveno limit")
    row = panel.locator("#limit-overrides tbody tr")
    expect(row).to_have_count(1)
    cells = [text.strip() for text in row.locator("td").all_inner_texts()]
    assert cells[:3] == ["limits_1", "12.50 LP", "0.00 LP"]
    screenshot(page, "08-limits")
    page.get_by_role("link", name="GC · Gold Coins").click()
    expect(page.locator("#limits #limit-everyone")).to_contain_text("Every user may spendno limit")
    expect(page.locator("#limits")).to_contain_text("No user has an override.")
