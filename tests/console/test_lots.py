"""The console's credits that expire, in headless Chromium against a real server: a user's open
lots per asset, soonest first, and what expires in the next 30 days; an asset's policy and its
expired figure on the supply screen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from tests.console.chromium import Wallet, screenshot, sign_in
from wallet.service.clock import format_us


def in_days(days: float) -> str:
    moment = datetime.now(UTC) + timedelta(days=days)
    return format_us(round(moment.timestamp() * 1_000_000))


def credit(wallet: Wallet, kind: str, user_id: str, amount: str, **body: Any) -> dict[str, Any]:
    asset = body.pop("asset", "GC")
    body = {"transaction_type": kind, "user_id": user_id, "asset_code": asset, **body}
    return wallet.post("/transaction", {**body, "amount": amount})


def find_user(page: Page, user_id: str) -> None:
    page.get_by_label("User id").fill(user_id)
    page.get_by_label("User id").press("Enter")
    expect(page.locator("#balances table")).to_be_visible()


def rows(page: Page, asset: str) -> list[list[str]]:
    table = page.locator("#lots table").filter(has_text=f"in {asset}, soonest first")
    return [
        [text.strip() for text in row.locator("td").all_inner_texts()][:3]
        for row in table.locator("tbody tr").all()
    ]


def test_a_users_lots_and_what_expires_in_30_days(page: Page, wallet: Wallet) -> None:
    credit(wallet, "topup", "lots_1", "100.00")  # never expires: no lot
    soon = credit(wallet, "topup", "lots_1", "30.00", expires_at=in_days(10))
    credit(wallet, "bonus", "lots_1", "20.00", expires_at=in_days(40))
    credit(wallet, "topup", "lots_1", "5.00", expires_at=in_days(2))
    credit(wallet, "purchase", "lots_1", "7.00")  # the 2-day lot, then 2.00 of the 10-day one
    credit(wallet, "bonus", "lots_1", "12.50", asset="LP")  # LP: 365 days on a new database
    lots = wallet.get("/balance/lots_1/GC/lots")["items"]
    sign_in(page, wallet)
    find_user(page, "lots_1")

    panel = page.locator("#lots")
    expect(panel.locator('[data-asset="GC"]')).to_have_text("28.00 GC expire in the next 30 days.")
    expect(panel.locator('[data-asset="LP"]')).to_have_text(
        "Nothing of LP expires in the next 30 days."
    )
    expect(panel.locator("table")).to_have_count(2)
    assert rows(page, "GC") == [
        [lots[0]["expires_at"].replace("T", " ").split(".")[0], "28.00", "30.00"],
        [lots[1]["expires_at"].replace("T", " ").split(".")[0], "20.00", "20.00"],
    ]
    assert [r[1:] for r in rows(page, "LP")] == [["12.50", "12.50"]]
    expect(panel).not_to_contain_text("DI")
    screenshot(page, "12-lots")

    panel.get_by_role("button", name=f"Open transaction {soon['id']}").click()
    expect(page.locator("#detail")).to_contain_text(soon["id"])

    credit(wallet, "topup", "lots_2", "1.00")
    find_user(page, "lots_2")
    expect(page.locator("#lots")).to_contain_text("No credits that expire.")


def test_many_lots_show_the_soonest_and_add_up_beyond_the_first_page(
    page: Page, wallet: Wallet
) -> None:
    for day in range(1, 13):
        credit(wallet, "bonus", "lots_3", "1.25", expires_at=in_days(day))
    credit(wallet, "bonus", "lots_3", "9.00", expires_at=in_days(45))
    sign_in(page, wallet)
    find_user(page, "lots_3")
    panel = page.locator("#lots")
    expect(panel.locator('[data-asset="GC"]')).to_have_text("15.00 GC expire in the next 30 days.")
    expect(panel.locator("tbody tr")).to_have_count(10)
    expect(panel).to_contain_text("The 10 that expire soonest of 13 open lots.")


def test_the_supply_screen_shows_the_policy_and_what_expired(page: Page, wallet: Wallet) -> None:
    sign_in(page, wallet)
    page.get_by_role("link", name="Supply").click()
    page.get_by_role("link", name="LP · Loyalty Points").click()
    supply = page.locator("#supply")
    expect(supply.locator(".policy")).to_have_text(
        "Its top-ups and bonuses expire 365 days after they are made."
    )
    expect(supply.locator(".figure").filter(has_text="Expired")).to_contain_text("0.00 LP")
    page.get_by_role("link", name="GC · Gold Coins").click()
    expect(page.locator("#supply .policy")).to_have_text("Its credits never expire.")
