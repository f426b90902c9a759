"""Reading credits that expire (API.md, "Credits that expire"), on both backends with the
service's clock moved by hand: Balance's ``expiring``, GET /balance/{user}/{asset}/lots (paged,
soonest first), the supply's ``expired``, and a policy changed for the credits made after it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.clock import US_PER_S, ManualClock
from tests.support.factories import problem
from wallet.api import create_app
from wallet.config import Settings
from wallet.service.clock import format_us, parse_instant_us
from wallet.service.wallet import WalletService

from .factories import assert_invariants, sweep_lots, transact

DAY_S = 86_400


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(database_url: str, clock: ManualClock) -> Iterator[TestClient]:
    """The service with a clock the test moves, and no expiry sweep unless a test runs one."""
    settings = Settings(
        database_url=database_url, hold_sweep_interval_s=3600, lot_sweep_interval_s=3600
    )
    service = WalletService(settings, clock=clock)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        yield client


def at(clock: ManualClock, seconds: float) -> str:
    return format_us(clock.now_us() + round(seconds * US_PER_S))


def post(client: TestClient, kind: str, user_id: str, amount: Any, **body: Any) -> Any:
    response = transact(
        client,
        transaction_type=kind,
        user_id=user_id,
        asset_code=body.pop("asset_code", "GC"),
        amount=amount,
        **body,
    )
    assert response.status_code == 201, response.text
    return response.json()


def lots_of(client: TestClient, user_id: str, asset: str = "GC", **params: Any) -> Any:
    response = client.get(f"/balance/{user_id}/{asset}/lots", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_balance_shows_the_three_lots_that_expire_soonest(
    app: TestClient, clock: ManualClock
) -> None:
    post(app, "topup", "ana", 50)  # no expiry: no lot
    made = {
        days: post(app, "topup", "ana", days, expires_at=at(clock, days * DAY_S))
        for days in (40, 10, 30, 20)
    }
    post(app, "purchase", "ana", 4)  # from the lot that expires soonest first

    single = app.get("/balance/ana/GC").json()
    assert single["balance"] == "146.00"
    assert single["expiring"] == [
        {"amount": "6.00", "expires_at": at(clock, 10 * DAY_S)},
        {"amount": "20.00", "expires_at": at(clock, 20 * DAY_S)},
        {"amount": "30.00", "expires_at": at(clock, 30 * DAY_S)},
    ]
    every = {b["asset_code"]: b for b in app.get("/balance/ana").json()["balances"]}
    assert every["GC"] == single
    assert every["DI"]["expiring"] == every["LP"]["expiring"] == []
    assert set(made) == {10, 20, 30, 40}

    past = app.get("/balance/ana/GC", params={"as_of": at(clock, 0)}).json()
    assert "expiring" not in past
    assert "held" not in past
    assert past["balance"] == "146.00"


def test_an_account_without_lots_expires_nothing(app: TestClient) -> None:
    post(app, "topup", "bo", 5)
    assert app.get("/balance/bo/GC").json()["expiring"] == []
    assert lots_of(app, "bo") == {"items": [], "next_cursor": None}
    # A user with no account in the asset has no lots either.
    assert lots_of(app, "bo", "DI") == {"items": [], "next_cursor": None}


def test_lots_are_listed_soonest_first_a_page_at_a_time(
    app: TestClient, clock: ManualClock
) -> None:
    same = at(clock, 5 * DAY_S)
    credits = [
        post(app, "topup", "cy", 1, expires_at=at(clock, 9 * DAY_S)),
        post(app, "bonus", "cy", 2, expires_at=same),
        post(app, "topup", "cy", 3, expires_at=same),
        post(app, "topup", "cy", 4, expires_at=at(clock, 1 * DAY_S)),
        post(app, "bonus", "cy", 5, expires_at=at(clock, 7 * DAY_S)),
    ]
    post(app, "topup", "cy", 100)
    post(app, "purchase", "cy", 5)  # empties the 1-day lot (4) and takes 1 of a 5-day lot

    seen: list[dict[str, Any]] = []
    page = lots_of(app, "cy", limit=2)
    pages = 1
    while True:
        assert len(page["items"]) <= 2
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        page = lots_of(app, "cy", limit=2, cursor=page["next_cursor"])
        pages += 1
    assert pages == 2
    assert lots_of(app, "cy")["items"] == seen
    by_transaction = {credit["id"]: credit for credit in credits}
    credited = [by_transaction[lot["transaction_id"]]["amount"] for lot in seen]
    # The two 5-day lots in id order (ids are random within a millisecond), then the 7 and 9.
    assert (set(credited[:2]), credited[2:]) == ({"2.00", "3.00"}, ["5.00", "1.00"])
    expiries = [lot["expires_at"] for lot in seen]
    assert expiries == [same, same, at(clock, 7 * DAY_S), at(clock, 9 * DAY_S)]
    assert seen[0]["id"] < seen[1]["id"], "lots of one expiry are in id order"
    first = seen[0]
    assert (first["amount"], first["remaining"]) in {("2.00", "1.00"), ("3.00", "2.00")}
    assert [(lot["amount"], lot["remaining"]) for lot in seen[1:]][1:] == [
        ("5.00", "5.00"),
        ("1.00", "1.00"),
    ]
    assert set(first) == {"id", "amount", "remaining", "expires_at", "transaction_id"}
    assert app.get("/balance/cy/GC").json()["expiring"] == [
        {"amount": lot["remaining"], "expires_at": lot["expires_at"]} for lot in seen[:3]
    ]


def test_lots_refusals(app: TestClient, clock: ManualClock) -> None:
    post(app, "topup", "dee", 3, expires_at=at(clock, DAY_S))
    problem(app.get("/balance/nobody/GC/lots"), 404, "user_not_found")
    problem(app.get("/balance/dee/ZZZ/lots"), 404, "asset_not_found")
    problem(app.get("/balance/dee/gc/lots"), 422, "validation_error")
    for limit in ("0", "501", "x", "1.5"):
        problem(app.get("/balance/dee/GC/lots", params={"limit": limit}), 422, "validation_error")
    history = app.get("/transaction/dee/history", params={"limit": 1}).json()
    foreign = [
        "not-a-cursor",
        base64.urlsafe_b64encode(b"lot:12").decode().rstrip("="),
        base64.urlsafe_b64encode(b"lot:x.y").decode().rstrip("="),
        base64.urlsafe_b64encode(b"lot:.abc").decode().rstrip("="),
        base64.urlsafe_b64encode(b"lot:99999999999999999999.a").decode().rstrip("="),
        base64.urlsafe_b64encode(b"lot:12.").decode().rstrip("="),
        # Not a lot id the service makes: a NUL reached PostgreSQL and failed there (a 500).
        base64.urlsafe_b64encode(b"lot:12.\x00abc").decode().rstrip("="),
        base64.urlsafe_b64encode(b"lot:12.01a248d6-1cde-71cb-a8bd-de6d0a81e9e")
        .decode()
        .rstrip("="),
        history["next_cursor"] or base64.urlsafe_b64encode(b"seq:5").decode().rstrip("="),
    ]
    for cursor in foreign:
        refused = app.get("/balance/dee/GC/lots", params={"cursor": cursor})
        problem(refused, 422, "validation_error")
    assert len(lots_of(app, "dee", limit=500)["items"]) == 1


def test_an_expired_lot_leaves_the_reads_and_shows_in_the_supply(
    app: TestClient, clock: ManualClock, database_url: str
) -> None:
    supply = app.get("/admin/assets/GC/supply").json()
    assert supply["expired"] == "0.00"
    post(app, "topup", "eve", 10, expires_at=at(clock, 60))
    post(app, "topup", "eve", 7)
    post(app, "purchase", "eve", 4)
    before = app.get("/admin/assets/GC/supply").json()
    clock.advance(61)
    # Past its expiry and not yet swept: still part of the balance, and shown.
    assert app.get("/balance/eve/GC").json()["expiring"] == [
        {"amount": "6.00", "expires_at": at(clock, -1)}
    ]
    assert sweep_lots(app).expired == 1

    assert app.get("/balance/eve/GC").json()["balance"] == "7.00"
    assert app.get("/balance/eve/GC").json()["expiring"] == []
    assert lots_of(app, "eve") == {"items": [], "next_cursor": None}
    after = app.get("/admin/assets/GC/supply").json()
    assert after["expired"] == "6.00"
    assert after["adds_up"] is True
    assert _minor(after["users"]) == _minor(before["users"]) - 600
    assert after["treasury"] == before["treasury"]
    verified = app.get("/admin/verify").json()
    assert verified["ok"] is True, verified
    assert_invariants(database_url)


def test_a_policy_applies_to_the_credits_made_after_it(app: TestClient, clock: ManualClock) -> None:
    assert app.patch("/admin/assets/GC", json={"expires_after_days": 30}).status_code == 200
    first = post(app, "topup", "fay", 10)
    clock.advance(DAY_S)
    assert app.patch("/admin/assets/GC", json={"expires_after_days": 90}).status_code == 200
    second = post(app, "bonus", "fay", 20)
    assert app.patch("/admin/assets/GC", json={"expires_after_days": None}).status_code == 200
    post(app, "topup", "fay", 40)  # no lot

    listed = lots_of(app, "fay")["items"]
    assert [(lot["transaction_id"], lot["amount"]) for lot in listed] == [
        (first["id"], "10.00"),
        (second["id"], "20.00"),
    ]
    assert listed[0]["expires_at"] == format_us(_us(first["created_at"]) + 30 * DAY_S * US_PER_S)
    assert listed[1]["expires_at"] == at(clock, 90 * DAY_S)
    balance = app.get("/balance/fay/GC").json()
    assert balance["balance"] == "70.00"
    assert [e["amount"] for e in balance["expiring"]] == ["10.00", "20.00"]


def test_the_seed_opening_of_lp_is_a_lot(app: TestClient) -> None:
    [lot] = lots_of(app, "user_001", "LP")["items"]
    opening = app.get(f"/transaction/{lot['transaction_id']}").json()
    assert (opening["description"], opening["amount"]) == ("Opening balance", "200.00")
    assert (lot["amount"], lot["remaining"]) == ("200.00", "200.00")
    assert lots_of(app, "user_001", "GC")["items"] == []


def _minor(amount: str) -> int:
    whole, _, cents = amount.partition(".")
    return int(whole) * 100 + int(cents)


def _us(instant: str) -> int:
    return parse_instant_us(datetime.fromisoformat(instant.replace("Z", "+00:00")))
