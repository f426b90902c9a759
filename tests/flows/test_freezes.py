"""Freezes: an operator stops one user's account (one asset, or all), every request-made movement
of it is refused with account_frozen, the service's own movements go on, and each freeze and
unfreeze is kept and is an event.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.server import ServerProcess
from wallet.api import create_app
from wallet.config import Settings
from wallet.service.wallet import WalletService

from .factories import assert_invariants, balance, count_transactions, query, topup, transact


def freeze(client: Any, user_id: str, reason: str = "fraud check", **body: Any) -> Any:
    return client.post(f"/admin/users/{user_id}/freeze", json={"reason": reason, **body})


def unfreeze(client: Any, user_id: str, **body: Any) -> Any:
    return client.post(f"/admin/users/{user_id}/unfreeze", json=body)


def refused(response: Any) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "account_frozen", response.text


def events_of(client: TestClient, *types: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(
        "/events", params={"types": ",".join(types), "limit": 1000}
    ).json()["items"]
    return items


def test_every_request_made_movement_of_a_frozen_account_is_refused(
    client: TestClient, database_url: str
) -> None:
    purchase_to_refund = transact(
        client, transaction_type="topup", user_id="alice", asset_code="GC", amount=100
    ).json()
    bought = transact(
        client, transaction_type="purchase", user_id="alice", asset_code="GC", amount=10
    ).json()
    hold = client.post("/holds", json={"user_id": "alice", "asset_code": "GC", "amount": 5}).json()
    transactions_before = count_transactions(database_url)

    response = freeze(client, "alice", "suspected duplication exploit", asset_code="GC")
    assert response.status_code == 201, response.text
    assert response.json()["asset_code"] == "GC"

    for kind in ("topup", "bonus", "purchase"):
        refused(transact(client, transaction_type=kind, user_id="alice", asset_code="GC", amount=1))
    refused(transact(client, transaction_type="refund", refund_of=bought["id"]))
    refused(transact(client, transaction_type="refund", refund_of=purchase_to_refund["id"]))
    refused(client.post("/holds", json={"user_id": "alice", "asset_code": "GC", "amount": 1}))
    refused(client.post(f"/holds/{hold['id']}/capture"))
    assert count_transactions(database_url) == transactions_before
    assert client.get(f"/holds/{hold['id']}").json()["status"] == "pending"

    # A release gives money back: it goes on.
    released = client.post(f"/holds/{hold['id']}/release")
    assert released.status_code == 200, released.text
    assert balance(client, "alice") == "90.00"
    # Other users, and the user's other assets, are untouched.
    topup(client, "bob", 1)
    topup(client, "alice", 1, asset_code="DI")
    assert_invariants(database_url)


def test_a_freeze_of_one_asset_and_of_all_assets(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    topup(client, "alice", 100, asset_code="DI")
    assert freeze(client, "alice", asset_code="GC").status_code == 201
    refused(
        transact(client, transaction_type="purchase", user_id="alice", asset_code="GC", amount=1)
    )
    topup(client, "alice", 1, asset_code="DI")
    frozen = {b["asset_code"]: b["frozen"] for b in client.get("/balance/alice").json()["balances"]}
    assert frozen == {"DI": False, "GC": True, "LP": False}

    # All assets: DI too. The asset's own freeze is a separate one and stays when it is lifted.
    all_assets = freeze(client, "alice", "account takeover")
    assert all_assets.status_code == 201
    assert all_assets.json()["asset_code"] is None
    refused(transact(client, transaction_type="topup", user_id="alice", asset_code="DI", amount=1))
    assert client.get("/balance/alice/DI").json()["frozen"] is True
    lifted = unfreeze(client, "alice", reason="cleared")
    assert lifted.status_code == 200
    assert lifted.json()["lifted"]["reason"] == "account takeover"
    topup(client, "alice", 1, asset_code="DI")
    refused(transact(client, transaction_type="topup", user_id="alice", asset_code="GC", amount=1))
    assert unfreeze(client, "alice", asset_code="GC").json()["lifted"]["asset_code"] == "GC"
    topup(client, "alice", 1)
    assert [b["frozen"] for b in client.get("/balance/alice").json()["balances"]] == [False] * 3
    assert_invariants(database_url)


def test_balances_show_frozen_now_also_as_of_an_instant(client: TestClient) -> None:
    made = topup(client, "alice", 100)
    assert client.get("/balance/alice/GC").json() == {
        "user_id": "alice",
        "asset_code": "GC",
        "balance": "100.00",
        "held": "0.00",
        "frozen": False,
        "expiring": [],
    }
    freeze(client, "alice")
    # The hot route (no query string) and the FastAPI route (as_of) say the same.
    assert client.get("/balance/alice/GC").json()["frozen"] is True
    as_of = client.get("/balance/alice/GC", params={"as_of": made["created_at"]}).json()
    assert (as_of["balance"], as_of["frozen"]) == ("100.00", True)


def test_batches_fail_on_a_frozen_item(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    topup(client, "bob", 100)
    freeze(client, "bob", asset_code="GC")
    before = count_transactions(database_url)
    response = client.post(
        "/transaction/batch",
        json={
            "transactions": [
                {
                    "transaction_type": "purchase",
                    "user_id": "alice",
                    "asset_code": "GC",
                    "amount": 1,
                },
                {"transaction_type": "topup", "user_id": "bob", "asset_code": "GC", "amount": 1},
            ]
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "batch_failed"
    assert response.json()["errors"][0]["index"] == 1
    assert response.json()["errors"][0]["code"] == "account_frozen"
    assert count_transactions(database_url) == before
    assert balance(client, "alice") == "100.00"


def test_a_refusal_is_replayed_under_its_key(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    freeze(client, "alice")
    body = {"transaction_type": "purchase", "user_id": "alice", "asset_code": "GC", "amount": 5}
    first = client.post("/transaction", json=body, headers={"Idempotency-Key": "k-frozen"})
    refused(first)
    unfreeze(client, "alice")
    # Decided once: the same key replays the refusal though the account is no longer frozen.
    again = client.post("/transaction", json=body, headers={"Idempotency-Key": "k-frozen"})
    refused(again)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert balance(client, "alice") == "100.00"
    fresh = client.post("/transaction", json=body, headers={"Idempotency-Key": "k-fresh"})
    assert fresh.status_code == 201


def test_freezing_and_unfreezing_are_idempotent_kept_and_events(client: TestClient) -> None:
    topup(client, "alice", 100)
    first = freeze(client, "alice", "ticket 1", asset_code="GC")
    assert first.status_code == 201
    view = first.json()
    assert (view["user_id"], view["asset_code"], view["reason"]) == ("alice", "GC", "ticket 1")
    assert view["frozen_by"] == "open"  # the test client's service runs without keys
    # Freezing what is frozen: 200, the freeze in force unchanged, nothing logged or emitted.
    again = freeze(client, "alice", "ticket 2", asset_code="GC")
    assert (again.status_code, again.json()) == (200, view)
    lifted = unfreeze(client, "alice", asset_code="GC", reason="ticket 1 closed")
    assert lifted.json() == {"user_id": "alice", "asset_code": "GC", "lifted": view}
    # Unfreezing what is not frozen: 200, lifted null, nothing logged or emitted.
    nothing = unfreeze(client, "alice", asset_code="GC")
    assert nothing.json() == {"user_id": "alice", "asset_code": "GC", "lifted": None}
    freeze(client, "alice", "ticket 3")
    # No body at all: the all-assets freeze, without a reason.
    assert client.post("/admin/users/alice/unfreeze").json()["lifted"]["reason"] == "ticket 3"

    listed = client.get("/admin/users/alice/freezes").json()
    assert listed["in_force"] == []
    assert [(e["action"], e["asset_code"], e["reason"], e["actor"]) for e in listed["log"]] == [
        ("unfreeze", None, "no reason given", "open"),
        ("freeze", None, "ticket 3", "open"),
        ("unfreeze", "GC", "ticket 1 closed", "open"),
        ("freeze", "GC", "ticket 1", "open"),
    ]
    events = events_of(client, "account.frozen", "account.unfrozen")
    assert [(e["type"], e["data"]) for e in events] == [
        ("account.frozen", {"user_id": "alice", "asset_code": "GC", "reason": "ticket 1"}),
        (
            "account.unfrozen",
            {"user_id": "alice", "asset_code": "GC", "reason": "ticket 1 closed"},
        ),
        ("account.frozen", {"user_id": "alice", "asset_code": None, "reason": "ticket 3"}),
        (
            "account.unfrozen",
            {"user_id": "alice", "asset_code": None, "reason": "no reason given"},
        ),
    ]


def test_the_log_is_paged_newest_first(client: TestClient) -> None:
    topup(client, "alice", 100)
    for number in range(3):
        freeze(client, "alice", f"round {number}")
        unfreeze(client, "alice", reason=f"end {number}")
    freeze(client, "alice", "still", asset_code="DI")
    reasons: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/admin/users/alice/freezes", params=params).json()
        assert [f["reason"] for f in page["in_force"]] == ["still"]
        assert len(page["log"]) <= 2
        reasons.extend(entry["reason"] for entry in page["log"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert reasons == ["still", "end 2", "round 2", "end 1", "round 1", "end 0", "round 0"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/admin/users/nobody/freeze", {"reason": "x"}, 404, "user_not_found"),
        ("post", "/admin/users/nobody/unfreeze", {}, 404, "user_not_found"),
        ("get", "/admin/users/nobody/freezes", None, 404, "user_not_found"),
        ("post", "/admin/users/alice/freeze", {}, 422, "validation_error"),
        ("post", "/admin/users/alice/freeze", {"reason": ""}, 422, "validation_error"),
        ("post", "/admin/users/alice/freeze", {"reason": "x" * 501}, 422, "validation_error"),
        ("post", "/admin/users/alice/freeze", {"reason": "a\x00"}, 422, "validation_error"),
        ("post", "/admin/users/alice/freeze", {"reason": "x", "extra": 1}, 422, "validation_error"),
        (
            "post",
            "/admin/users/alice/freeze",
            {"reason": "x", "asset_code": "XX"},
            422,
            "validation_error",
        ),
        ("post", "/admin/users/alice/unfreeze", {"asset_code": "XX"}, 422, "validation_error"),
        ("post", "/admin/users/bad%20id/freeze", {"reason": "x"}, 422, "validation_error"),
        ("get", "/admin/users/alice/freezes?limit=0", None, 422, "validation_error"),
        ("get", "/admin/users/alice/freezes?limit=501", None, 422, "validation_error"),
        ("get", "/admin/users/alice/freezes?cursor=nope", None, 422, "validation_error"),
    ],
)
def test_bad_input(
    client: TestClient, method: str, path: str, body: Any, status: int, code: str
) -> None:
    topup(client, "alice", 1)
    response = client.request(method, path, json=body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert client.get("/admin/users/alice/freezes").json()["log"] == []


def _wait_for_status(client: TestClient, hold_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        hold: dict[str, Any] = client.get(f"/holds/{hold_id}").json()
        if hold["status"] == status or time.monotonic() > deadline:
            return hold
        time.sleep(0.05)


def test_hold_expiry_goes_on_for_a_frozen_account(database_url: str) -> None:
    clock = ManualClock()
    settings = Settings(database_url=database_url, hold_sweep_interval_s=0.1)
    service = WalletService(settings, clock=clock)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        topup(client, "alice", 100)
        hold = client.post(
            "/holds",
            json={"user_id": "alice", "asset_code": "GC", "amount": 30, "expires_in_seconds": 60},
        ).json()
        freeze(client, "alice")
        clock.advance(61)
        assert _wait_for_status(client, hold["id"], "expired")["status"] == "expired"
        assert client.get("/balance/alice/GC").json()["balance"] == "100.00"
    assert_invariants(database_url)


def test_a_freeze_through_one_process_holds_in_the_other_at_once(
    database_url: str, tmp_path: Path
) -> None:
    servers = [ServerProcess(database_url, tmp_path / f"s{i}.log").start() for i in range(2)]
    try:
        a, b = (httpx.Client(base_url=s.url, timeout=30) for s in servers)
        body = {"transaction_type": "topup", "user_id": "alice", "asset_code": "GC", "amount": 1}
        # Both processes have served the user before the freeze (nothing of it may linger).
        assert a.post("/transaction", json=body).status_code == 201
        assert b.post("/transaction", json=body).status_code == 201
        assert b.get("/balance/alice/GC").json()["frozen"] is False
        for _ in range(3):
            assert freeze(a, "alice").status_code == 201
            refused(b.post("/transaction", json=body))
            refused(b.post("/holds", json={"user_id": "alice", "asset_code": "GC", "amount": 1}))
            assert b.get("/balance/alice/GC").json()["frozen"] is True
            assert unfreeze(b, "alice").json()["lifted"] is not None
            assert a.post("/transaction", json=body).status_code == 201
            assert a.get("/balance/alice/GC").json()["frozen"] is False
        assert b.get("/balance/alice/GC").json()["balance"] == "5.00"
        kept = query(database_url, "SELECT count(*) FROM freeze_log WHERE user_id = 'alice'")
        assert kept[0][0] == 6
    finally:
        for server in servers:
            server.terminate()
    assert_invariants(database_url)
