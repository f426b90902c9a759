"""Daily limits (API.md, "Player protection"), on both backends: what a user may spend and
receive of an asset per UTC day, told by 422 ``limit_exceeded`` with what is left today.

The service's clock is a ManualClock set to a morning of a day to come, and moved across UTC
midnight by hand. The races run against real server processes, which read the system's clock.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.reliability.checks import assert_ledger_ok, at_once, body, http_client, new_user, poster
from tests.reliability.checks import topup as topup_at
from tests.support.clock import US_PER_S, ManualClock
from tests.support.server import ServerProcess
from wallet.api import create_app
from wallet.config import Settings
from wallet.domain.holds import HoldAction
from wallet.domain.ledger import TransactionType
from wallet.service.clock import now_us
from wallet.service.commands import HoldCommand, PostingCommand
from wallet.service.posting import apply_commands
from wallet.service.wallet import WalletService
from wallet.storage import open_database

from .factories import assert_invariants, balance, count_transactions, purchase, topup, transact

DAY_US = 86_400 * US_PER_S
HOUR_US = 3_600 * US_PER_S


def day_after_tomorrow() -> int:
    """The first microsecond of a UTC day that has not begun: nothing in the ledger is of it."""
    return (now_us() // DAY_US + 2) * DAY_US


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(day_after_tomorrow() + 8 * HOUR_US)


@pytest.fixture
def app(database_url: str, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url)
    service = WalletService(settings, clock=clock)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        yield client


def next_midnight(clock: ManualClock) -> None:
    clock.set((clock.now_us() // DAY_US + 1) * DAY_US)


def set_limit(
    client: TestClient, asset_code: str, debit: Any, credit: Any, user_id: str | None = None
) -> dict[str, Any]:
    path = f"/admin/limits/{asset_code}"
    if user_id is not None:
        path = f"/admin/users/{user_id}/limits/{asset_code}"
    response = client.put(path, json={"debit_per_day": debit, "credit_per_day": credit})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def refused(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "limit_exceeded", problem
    assert problem["title"] == "Limit exceeded"
    detail: str = problem["detail"]
    return detail


def try_purchase(client: TestClient, user_id: str, amount: Any) -> httpx.Response:
    return transact(
        client, transaction_type="purchase", user_id=user_id, asset_code="GC", amount=amount
    )


def try_credit(client: TestClient, kind: str, user_id: str, amount: Any) -> httpx.Response:
    return transact(client, transaction_type=kind, user_id=user_id, asset_code="GC", amount=amount)


def refund(client: TestClient, transaction_id: str, amount: Any = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"transaction_type": "refund", "refund_of": transaction_id}
    if amount is not None:
        payload["amount"] = amount
    response = client.post("/transaction", json=payload)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def place(client: TestClient, user_id: str, amount: Any) -> httpx.Response:
    return client.post("/holds", json={"user_id": user_id, "asset_code": "GC", "amount": amount})


# --- spending and receiving ----------------------------------------------------------------------


def test_a_debit_limit_refuses_what_would_pass_it_and_says_what_is_left(
    app: TestClient, clock: ManualClock, database_url: str
) -> None:
    topup(app, "alice", 1000)
    view = set_limit(app, "GC", 50, None)
    assert view == {
        "asset_code": "GC",
        "user_id": None,
        "debit_per_day": "50.00",
        "credit_per_day": None,
        "updated_at": view["updated_at"],
    }
    purchase(app, "alice", "30.00")
    written = count_transactions(database_url)

    detail = refused(try_purchase(app, "alice", "25.00"))

    assert detail == "alice may spend 20.00 GC more today (limit 50.00)"
    assert count_transactions(database_url) == written, "a refusal writes nothing"
    assert balance(app, "alice") == "970.00"
    purchase(app, "alice", "20.00")
    assert refused(try_purchase(app, "alice", "0.01")) == (
        "alice may spend 0.00 GC more today (limit 50.00)"
    )
    # The last microsecond of the day is still the day; the next one is a new day.
    clock.set((clock.now_us() // DAY_US + 1) * DAY_US - 1)
    refused(try_purchase(app, "alice", "0.01"))
    clock.advance(1 / US_PER_S)
    purchase(app, "alice", "50.00")
    assert_invariants(database_url)


def test_a_credit_limit_counts_top_ups_and_bonuses(app: TestClient, clock: ManualClock) -> None:
    set_limit(app, "GC", None, "100.00")
    topup(app, "bob", 60)
    assert try_credit(app, "bonus", "bob", 40).status_code == 201
    detail = refused(try_credit(app, "topup", "bob", "0.01"))
    assert detail == "bob may receive 0.00 GC more today (limit 100.00)"
    # Spending has no limit here, and a purchase gives nothing back to the credit allowance.
    purchase(app, "bob", 100)
    refused(try_credit(app, "bonus", "bob", 1))
    next_midnight(clock)
    assert try_credit(app, "bonus", "bob", 100).status_code == 201


def test_a_limit_set_at_noon_counts_the_morning(app: TestClient, clock: ManualClock) -> None:
    topup(app, "carol", 500)
    purchase(app, "carol", 40)
    clock.advance(4 * 3600)

    set_limit(app, "GC", 50, 500)

    assert refused(try_purchase(app, "carol", 20)) == (
        "carol may spend 10.00 GC more today (limit 50.00)"
    )
    assert refused(try_credit(app, "topup", "carol", "0.01")) == (
        "carol may receive 0.00 GC more today (limit 500.00)"
    )
    purchase(app, "carol", 10)


def test_a_limit_of_zero_allows_nothing_and_a_null_limit_allows_anything(
    app: TestClient,
) -> None:
    topup(app, "dave", 100)
    set_limit(app, "GC", 0, None)
    assert refused(try_purchase(app, "dave", "0.01")) == (
        "dave may spend 0.00 GC more today (limit 0.00)"
    )
    set_limit(app, "GC", None, None)
    purchase(app, "dave", 100)


def test_other_assets_and_other_users_are_not_counted(app: TestClient) -> None:
    set_limit(app, "GC", 50, None)
    topup(app, "erin", 500)
    topup(app, "erin", 500, "DI")
    topup(app, "frank", 500)
    purchase(app, "erin", 50)
    purchase(app, "erin", 300, "DI")
    purchase(app, "frank", 50)
    refused(try_purchase(app, "erin", 1))


# --- a user's override ---------------------------------------------------------------------------


def test_a_users_override_replaces_the_assets_limit_until_it_is_removed(
    app: TestClient,
) -> None:
    set_limit(app, "GC", 50, None)
    for user_id in ("gina", "hank", "ivan"):
        topup(app, user_id, 1000)
    override = set_limit(app, "GC", 200, None, user_id="gina")
    assert override["user_id"] == "gina"
    assert override["debit_per_day"] == "200.00"
    # null in an override is no limit for that user.
    set_limit(app, "GC", None, None, user_id="ivan")

    purchase(app, "gina", 150)
    purchase(app, "ivan", 900)
    assert refused(try_purchase(app, "hank", 51)) == (
        "hank may spend 50.00 GC more today (limit 50.00)"
    )
    assert refused(try_purchase(app, "gina", 51)) == (
        "gina may spend 50.00 GC more today (limit 200.00)"
    )

    assert app.delete("/admin/users/gina/limits/GC").status_code == 204
    assert app.delete("/admin/users/gina/limits/GC").status_code == 204, "removing is idempotent"
    assert refused(try_purchase(app, "gina", 1)) == (
        "gina may spend 0.00 GC more today (limit 50.00)"
    )


def test_the_limits_are_listed_in_pages(app: TestClient) -> None:
    set_limit(app, "GC", 50, None)
    set_limit(app, "DI", None, "10.5")
    for user_id in ("u1", "u2", "u3"):
        set_limit(app, "GC", 100, 0, user_id=user_id)

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = app.get("/admin/limits", params=params).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sorted((item["asset_code"], item["user_id"] or "") for item in seen) == [
        ("DI", ""),
        ("GC", ""),
        ("GC", "u1"),
        ("GC", "u2"),
        ("GC", "u3"),
    ]
    di = next(item for item in seen if item["asset_code"] == "DI")
    assert (di["debit_per_day"], di["credit_per_day"]) == (None, "10.50")
    only = app.get("/admin/limits", params={"asset_code": "GC", "user_id": "u2"}).json()
    assert [(i["user_id"], i["debit_per_day"], i["credit_per_day"]) for i in only["items"]] == [
        ("u2", "100.00", "0.00")
    ]
    assert app.get("/admin/limits", params={"cursor": "nope"}).status_code == 422


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"debit_per_day": 50}, 422),
        ({"debit_per_day": -1, "credit_per_day": None}, 422),
        ({"debit_per_day": "1.001", "credit_per_day": None}, 422),
        ({"debit_per_day": "0.000", "credit_per_day": None}, 422),
        ({"debit_per_day": "1e3", "credit_per_day": None}, 422),
        ({"debit_per_day": 1_000_000_001, "credit_per_day": None}, 422),
        ({"debit_per_day": None, "credit_per_day": None, "extra": 1}, 422),
        ({"debit_per_day": "0", "credit_per_day": "1000000000"}, 200),
    ],
)
def test_a_limit_is_an_amount_or_null(
    app: TestClient, payload: dict[str, Any], status: int
) -> None:
    response = app.put("/admin/limits/GC", json=payload)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["code"] == "validation_error"


def test_a_limit_of_an_unknown_asset_is_not_found(app: TestClient) -> None:
    response = app.put("/admin/limits/ZZZ", json={"debit_per_day": 1, "credit_per_day": None})
    assert (response.status_code, response.json()["code"]) == (404, "asset_not_found")
    response = app.put("/admin/users/u1/limits/ZZZ", json={"debit_per_day": 1, "credit_per_day": 1})
    assert (response.status_code, response.json()["code"]) == (404, "asset_not_found")


# --- refunds, holds, batches ---------------------------------------------------------------------


def test_a_refund_of_a_purchase_of_the_same_day_gives_its_amount_back(app: TestClient) -> None:
    topup(app, "jane", 500)
    set_limit(app, "GC", 50, None)
    bought = purchase(app, "jane", 50)
    refused(try_purchase(app, "jane", 10))

    refund(app, bought["id"], 30)

    purchase(app, "jane", 30)
    assert refused(try_purchase(app, "jane", "0.01")) == (
        "jane may spend 0.00 GC more today (limit 50.00)"
    )


def test_a_refund_of_yesterdays_purchase_gives_nothing_back(
    app: TestClient, clock: ManualClock
) -> None:
    topup(app, "kate", 500)
    set_limit(app, "GC", 50, None)
    yesterdays = purchase(app, "kate", 50)
    next_midnight(clock)
    purchase(app, "kate", 40)

    refund(app, yesterdays["id"])

    assert refused(try_purchase(app, "kate", 20)) == (
        "kate may spend 10.00 GC more today (limit 50.00)"
    )


def test_refunds_and_releases_count_as_neither(app: TestClient) -> None:
    set_limit(app, "GC", 50, 100)
    first = topup(app, "liam", 100)
    bought = purchase(app, "liam", 20)
    # A refund of a purchase is no credit; a chargeback gives no credit allowance back.
    refund(app, bought["id"])
    refund(app, first["id"], 10)
    assert refused(try_credit(app, "bonus", "liam", "0.01")) == (
        "liam may receive 0.00 GC more today (limit 100.00)"
    )
    # Placing a hold is spending; releasing it gives nothing back; capturing it is no more.
    # (The purchase refunded the same day spent nothing.)
    held = place(app, "liam", 40)
    assert held.status_code == 201, held.text
    assert app.post(f"/holds/{held.json()['id']}/release").status_code == 200
    assert refused(place(app, "liam", 20)) == "liam may spend 10.00 GC more today (limit 50.00)"
    held = place(app, "liam", 10)
    assert held.status_code == 201, held.text
    assert app.post(f"/holds/{held.json()['id']}/capture").status_code == 200
    refused(try_purchase(app, "liam", "0.01"))


def test_a_batch_counts_every_item(app: TestClient, database_url: str) -> None:
    topup(app, "mia", 500)
    set_limit(app, "GC", 50, 600)
    written = count_transactions(database_url)

    def batch(*items: tuple[str, int]) -> httpx.Response:
        return app.post(
            "/transaction/batch",
            json={
                "transactions": [
                    {"transaction_type": kind, "user_id": "mia", "asset_code": "GC", "amount": n}
                    for kind, n in items
                ]
            },
        )

    response = batch(("purchase", 20), ("purchase", 20), ("purchase", 20))
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "batch_failed"
    assert problem["errors"] == [
        {
            "index": 2,
            "code": "limit_exceeded",
            "detail": "mia may spend 10.00 GC more today (limit 50.00)",
        }
    ]
    assert count_transactions(database_url) == written
    # A failed batch counted nothing: its items' allowance is whole again.
    assert batch(("purchase", 25), ("topup", 100), ("purchase", 25)).status_code == 201
    refused(try_purchase(app, "mia", "0.01"))
    refused(try_credit(app, "topup", "mia", "0.01"))


def test_a_refusal_is_replayed_under_its_key(app: TestClient, clock: ManualClock) -> None:
    topup(app, "noah", 500)
    set_limit(app, "GC", 50, None)
    payload = {"transaction_type": "purchase", "user_id": "noah", "asset_code": "GC", "amount": 60}
    first = app.post("/transaction", json=payload, headers={"Idempotency-Key": "k-limit"})
    detail = refused(first)

    next_midnight(clock)
    set_limit(app, "GC", None, None)
    again = app.post("/transaction", json=payload, headers={"Idempotency-Key": "k-limit"})

    assert refused(again) == detail
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert app.post("/transaction", json=payload).status_code == 201


def test_the_commands_of_one_unit_of_work_see_each_other(
    app: TestClient, clock: ManualClock, database_url: str
) -> None:
    """Commands the writer takes together, applied directly in one unit of work."""
    topup(app, "olga", 500)
    set_limit(app, "GC", 50, None)
    database = open_database(Settings(database_url=database_url))
    connection = database.connect_writer()
    try:
        connection.begin()
        outcomes = apply_commands(
            connection.session,
            [
                PostingCommand(TransactionType.PURCHASE, "olga", "GC", 3000),
                HoldCommand(HoldAction.PLACE, "olga", "GC", amount_minor=1500, expires_in_s=600),
                PostingCommand(TransactionType.PURCHASE, "olga", "GC", 1000),
                PostingCommand(TransactionType.PURCHASE, "olga", "GC", 500),
            ],
            {"GC": 2},
            clock.now_us(),
        )
        connection.commit()
    finally:
        connection.close()
        database.close()
    assert [None if o.error is None else o.error.detail for o in outcomes] == [
        None,
        None,
        "olga may spend 5.00 GC more today (limit 50.00)",
        None,
    ]
    refused(try_purchase(app, "olga", "0.01"))


# --- races ---------------------------------------------------------------------------------------


def _away_from_midnight() -> None:
    """The server processes read the system's clock: a race that began just before UTC midnight
    would count on two days. Start it after midnight instead (a wait of at most a few seconds,
    about once a day)."""
    left_s = (DAY_US - now_us() % DAY_US) / US_PER_S
    if left_s < 10:
        time.sleep(left_s + 0.1)


def check_racing_purchases_against_a_limit(base_urls: list[str]) -> None:
    """20 purchases of 10.00 at once against a debit limit of 50.00: exactly five succeed."""
    user_id = new_user()
    topup_at(base_urls[0], user_id, "1000.00")
    with http_client(base_urls[-1]) as client:
        response = client.put(
            f"/admin/users/{user_id}/limits/GC",
            json={"debit_per_day": "50.00", "credit_per_day": None},
        )
        assert response.status_code == 200, response.text
    _away_from_midnight()

    answers = at_once(base_urls, [poster(body("purchase", user_id, "10.00"))] * 20)

    assert Counter((a.status, a.code) for a in answers) == {
        (201, None): 5,
        (422, "limit_exceeded"): 15,
    }
    with http_client(base_urls[0]) as client:
        assert client.get(f"/balance/{user_id}/GC").json()["balance"] == "950.00"


@pytest.mark.slow
def test_racing_purchases_against_a_limit(server: ServerProcess, database_url: str) -> None:
    check_racing_purchases_against_a_limit([server.url])
    assert_ledger_ok(database_url)


@pytest.fixture
def second_server(database_url: str, tmp_path: Any) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, tmp_path / "second-server.log").start()
    yield process
    process.kill()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_racing_purchases_against_a_limit_through_two_processes(
    server: ServerProcess, second_server: ServerProcess, database_url: str
) -> None:
    check_racing_purchases_against_a_limit([server.url, second_server.url])
    assert_ledger_ok(database_url)
