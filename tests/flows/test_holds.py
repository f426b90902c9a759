"""Holds: place, capture (all or part), release, expiry; a strict one-way state machine."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.server import ServerProcess
from wallet.api import create_app
from wallet.config import Settings
from wallet.domain.holds import HoldAction
from wallet.service.holds import HoldInput
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService

from .factories import assert_invariants, balance, count_transactions, query, topup


def place(client: TestClient, user_id: str, amount: Any, **body: Any) -> httpx.Response:
    response: httpx.Response = client.post(
        "/holds", json={"user_id": user_id, "asset_code": "GC", "amount": amount, **body}
    )
    return response


def placed(client: TestClient, user_id: str, amount: Any, **body: Any) -> dict[str, Any]:
    response = place(client, user_id, amount, **body)
    assert response.status_code == 201, response.text
    hold: dict[str, Any] = response.json()
    return hold


def held(client: TestClient, user_id: str) -> str:
    value: str = client.get(f"/balance/{user_id}/GC").json()["held"]
    return value


def test_a_hold_sets_funds_aside(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    hold = placed(client, "alice", 25, description="Order 7f3a", expires_in_seconds=900)
    assert hold["status"] == "pending"
    assert (hold["amount"], hold["captured_amount"]) == ("25.00", "0.00")
    assert hold["description"] == "Order 7f3a"
    assert len(hold["transactions"]) == 1
    placing = client.get(f"/transaction/{hold['transactions'][0]}").json()
    assert placing["transaction_type"] == "hold"
    assert [(e["account_id"], e["amount"]) for e in placing["entries"]] == [
        ("alice", "-25.00"),
        ("holds", "25.00"),
    ]
    assert client.get("/balance/alice/GC").json() == {
        "user_id": "alice",
        "asset_code": "GC",
        "balance": "75.00",
        "held": "25.00",
        "frozen": False,
        "expiring": [],
    }
    all_balances = client.get("/balance/alice").json()["balances"]
    assert {b["asset_code"]: b["held"] for b in all_balances} == {
        "DI": "0.00",
        "GC": "25.00",
        "LP": "0.00",
    }
    assert client.get(f"/holds/{hold['id']}").json() == hold
    listed = client.get("/holds", params={"user_id": "alice", "status": "pending"}).json()
    assert [h["id"] for h in listed["items"]] == [hold["id"]]
    assert client.get("/holds", params={"user_id": "alice", "status": "captured"}).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert_invariants(database_url)


def test_a_whole_capture_goes_to_the_treasury(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    hold = placed(client, "alice", 25)
    response = client.post(f"/holds/{hold['id']}/capture")
    assert response.status_code == 200, response.text
    captured = response.json()
    assert (captured["status"], captured["captured_amount"]) == ("captured", "25.00")
    assert len(captured["transactions"]) == 2
    capture = client.get(f"/transaction/{captured['transactions'][1]}").json()
    assert [(e["account_id"], e["amount"]) for e in capture["entries"]] == [
        ("holds", "-25.00"),
        ("treasury", "25.00"),
    ]
    history = client.get("/transaction/alice/history").json()["items"]
    assert [t["transaction_type"] for t in history] == ["capture", "hold", "topup"]
    assert (balance(client, "alice"), held(client, "alice")) == ("75.00", "0.00")
    assert_invariants(database_url)


def test_a_partial_capture_releases_the_rest(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    hold = placed(client, "alice", 25)
    captured = client.post(f"/holds/{hold['id']}/capture", json={"amount": "20.50"}).json()
    assert (captured["status"], captured["captured_amount"]) == ("captured", "20.50")
    kinds_amounts = [
        (t["transaction_type"], t["amount"])
        for t in (client.get(f"/transaction/{i}").json() for i in captured["transactions"])
    ]
    assert kinds_amounts == [("hold", "25.00"), ("capture", "20.50"), ("release", "4.50")]
    assert (balance(client, "alice"), held(client, "alice")) == ("79.50", "0.00")
    assert_invariants(database_url)


def test_a_release_gives_it_all_back(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    hold = placed(client, "alice", 25)
    released = client.post(f"/holds/{hold['id']}/release").json()
    assert (released["status"], released["captured_amount"]) == ("released", "0.00")
    release = client.get(f"/transaction/{released['transactions'][1]}").json()
    assert [(e["account_id"], e["amount"]) for e in release["entries"]] == [
        ("holds", "-25.00"),
        ("alice", "25.00"),
    ]
    assert (balance(client, "alice"), held(client, "alice")) == ("100.00", "0.00")
    assert_invariants(database_url)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("capture", "release"),
        ("release", "capture"),
        ("capture", "capture"),
        ("release", "release"),
    ],
)
def test_a_hold_is_settled_once(
    client: TestClient, database_url: str, first: str, second: str
) -> None:
    topup(client, "alice", 100)
    hold = placed(client, "alice", 25)
    assert client.post(f"/holds/{hold['id']}/{first}").status_code == 200
    before = count_transactions(database_url)
    response = client.post(f"/holds/{hold['id']}/{second}")
    assert response.status_code == 409
    assert response.json()["code"] == "hold_not_pending"
    assert count_transactions(database_url) == before
    assert_invariants(database_url)


def test_refusals(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 10)
    hold = placed(client, "alice", 5)
    more = client.post(f"/holds/{hold['id']}/capture", json={"amount": "5.01"})
    assert more.status_code == 422
    assert more.json()["code"] == "validation_error"
    assert more.json()["detail"] == "a capture takes at most the 5.00 held"
    for path in ("/holds/nope", "/holds/nope/capture", "/holds/nope/release"):
        response = client.get(path) if path == "/holds/nope" else client.post(path)
        assert response.status_code == 404
        assert response.json()["code"] == "hold_not_found"
    before = count_transactions(database_url)
    broke = place(client, "alice", 6)
    assert broke.status_code == 422
    assert broke.json()["code"] == "insufficient_funds"
    assert place(client, "ghost", 1).json()["code"] == "user_not_found"
    for body in ({"expires_in_seconds": 0}, {"expires_in_seconds": 604_801}, {"amount": "0.001"}):
        response = client.post(
            "/holds", json={"user_id": "alice", "asset_code": "GC", "amount": 1, **body}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
    assert count_transactions(database_url) == before
    assert client.get("/balance/ghost").status_code == 404
    assert_invariants(database_url)


def test_holds_are_idempotent(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    first = place(client, "alice", 10, idempotency_key="hold-1")
    again = place(client, "alice", "10.00", idempotency_key="hold-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert place(client, "alice", 11, idempotency_key="hold-1").json()["code"] == (
        "idempotency_key_reused"
    )
    hold_id = first.json()["id"]
    headers = {"Idempotency-Key": "capture-1"}
    captured = client.post(f"/holds/{hold_id}/capture", json={"amount": 4}, headers=headers)
    replay = client.post(f"/holds/{hold_id}/capture", json={"amount": 4}, headers=headers)
    assert captured.status_code == replay.status_code == 200
    assert replay.json() == captured.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (balance(client, "alice"), held(client, "alice")) == ("96.00", "0.00")
    assert_invariants(database_url)


def test_the_schema_allows_each_hold_one_move(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 100)
    hold = placed(client, "alice", 10)
    client.post(f"/holds/{hold['id']}/release")
    hold_id = hold["id"]
    for sql in (
        f"UPDATE holds SET status = 'pending' WHERE id = '{hold_id}'",
        f"UPDATE holds SET status = 'captured', captured_minor = 1000 WHERE id = '{hold_id}'",
        f"DELETE FROM holds WHERE id = '{hold_id}'",
    ):
        with pytest.raises((psycopg.Error, sqlite3.Error), match=r"hold"):
            query(database_url, sql)


def _app(database_url: str, clock: ManualClock, sweep_interval_s: float) -> TestClient:
    settings = Settings(database_url=database_url, hold_sweep_interval_s=sweep_interval_s)
    service = WalletService(settings, clock=clock)
    return TestClient(create_app(settings, service), raise_server_exceptions=False)


def test_an_expired_hold_cannot_be_captured_and_is_released_after_a_restart(
    database_url: str,
) -> None:
    clock = ManualClock()
    with _app(database_url, clock, sweep_interval_s=3600) as no_sweeper:
        topup(no_sweeper, "alice", 100)
        hold = placed(no_sweeper, "alice", 30, expires_in_seconds=60)
        clock.advance(59)
        assert no_sweeper.get(f"/holds/{hold['id']}").json()["status"] == "pending"
        clock.advance(1)
        # The sweeper has not run (its first pass came before the expiry), yet the capture is
        # late: expiry is decided by the clock, not by the sweeper.
        response = no_sweeper.post(f"/holds/{hold['id']}/capture")
        assert response.status_code == 409
        assert response.json()["code"] == "hold_expired"
        assert no_sweeper.get(f"/holds/{hold['id']}").json()["status"] == "pending"

    with _app(database_url, clock, sweep_interval_s=0.1) as restarted:
        expired = _wait_for_status(restarted, hold["id"], "expired")
        assert expired["captured_amount"] == "0.00"
        assert len(expired["transactions"]) == 2
        assert (balance(restarted, "alice"), held(restarted, "alice")) == ("100.00", "0.00")
        late = restarted.post(f"/holds/{hold['id']}/release")
        assert late.status_code == 409
        assert late.json()["code"] == "hold_not_pending"
        # Once the sweeper released it, a capture still says why it is refused.
        late_capture = restarted.post(f"/holds/{hold['id']}/capture")
        assert late_capture.status_code == 409
        assert late_capture.json()["code"] == "hold_expired"
    assert_invariants(database_url)


def test_the_sweeper_releases_expired_holds_without_anyone_calling(database_url: str) -> None:
    """The one test of holds that waits for a real expiry, end to end on the system clock."""
    settings = Settings(database_url=database_url, hold_sweep_interval_s=0.1)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        topup(client, "alice", 100)
        holds = [placed(client, "alice", 10, expires_in_seconds=1) for _ in range(3)]
        lasting = placed(client, "alice", 10)
        for hold in holds:
            _wait_for_status(client, hold["id"], "expired")
        assert client.get(f"/holds/{lasting['id']}").json()["status"] == "pending"
        assert (balance(client, "alice"), held(client, "alice")) == ("90.00", "10.00")
    assert_invariants(database_url)


def _wait_for_status(client: TestClient, hold_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hold: dict[str, Any] = client.get(f"/holds/{hold_id}").json()
        if hold["status"] == status:
            return hold
        time.sleep(0.05)
    raise AssertionError(f"hold {hold_id} did not become {status}")


def test_races_in_one_process_have_one_winner(settings: Settings) -> None:
    service = WalletService(settings)
    service.start()
    try:

        async def race() -> list[list[str | None]]:
            await service.transactions.post(TransactionInput("topup", "alice", "GC", Decimal(100)))
            results = []
            pairs = [
                (HoldAction.CAPTURE, HoldAction.RELEASE),
                (HoldAction.RELEASE, HoldAction.CAPTURE),
                (HoldAction.CAPTURE, HoldAction.CAPTURE),
            ]
            for first, second in pairs * 2:
                hold = await service.holds.place(HoldInput("alice", "GC", Decimal(5), 600))
                hold_id = orjson.loads(hold.body)["id"]
                outcomes = await asyncio.gather(
                    service.holds.settle(hold_id, first), service.holds.settle(hold_id, second)
                )
                results.append([o.error.code if o.error else None for o in outcomes])
            return results

        for codes in asyncio.run(race()):
            assert sorted(codes, key=str) == [None, "hold_not_pending"]
    finally:
        service.stop()
    assert_invariants(settings.database_url)


def test_a_capture_racing_the_expiry_has_one_winner(settings: Settings) -> None:
    """Captures race the sweeper just as some holds expire: whichever the writer takes first,
    an expired hold is refused to its capture (hold_expired) and expired by the sweeper, a live
    one is captured and left alone by it, and the balance is what those outcomes add up to."""
    clock = ManualClock()
    service = WalletService(settings, clock=clock)
    service.start()
    try:

        async def place(expires_in_s: int) -> str:
            outcome = await service.holds.place(HoldInput("alice", "GC", Decimal(5), expires_in_s))
            hold_id: str = orjson.loads(outcome.body)["id"]
            return hold_id

        async def race() -> tuple[list[str], list[str], list[Any], int]:
            await service.transactions.post(TransactionInput("topup", "alice", "GC", Decimal(100)))
            expiring = [await place(1) for _ in range(3)]
            lasting = [await place(600) for _ in range(3)]
            clock.advance(1)
            captures = [service.holds.settle(h, HoldAction.CAPTURE) for h in expiring + lasting]
            outcomes = await asyncio.gather(*captures, service.holds.expire_due())
            return expiring, lasting, list(outcomes[:-1]), int(outcomes[-1])

        expiring, lasting, captures, expired = asyncio.run(race())
        codes = [c.error.code if c.error else None for c in captures]
        assert codes == ["hold_expired"] * 3 + [None] * 3
        assert expired == 3
        assert [service.holds.get(h)["status"] for h in expiring] == ["expired"] * 3
        assert [service.holds.get(h)["status"] for h in lasting] == ["captured"] * 3
        assert service.balances.get("alice", "GC") == {
            "user_id": "alice",
            "asset_code": "GC",
            "balance": "85.00",
            "held": "0.00",
            "frozen": False,
            "expiring": [],
        }
    finally:
        service.stop()
    assert_invariants(settings.database_url)


def test_capture_racing_release_across_processes_has_one_winner(
    database_url: str, tmp_path: Path
) -> None:
    servers = [ServerProcess(database_url, tmp_path / f"s{i}.log").start() for i in range(2)]
    try:
        a, b = (httpx.Client(base_url=s.url, timeout=30) for s in servers)
        topped = a.post(
            "/transaction",
            json={
                "transaction_type": "topup",
                "user_id": "alice",
                "asset_code": "GC",
                "amount": 100,
            },
        )
        assert topped.status_code == 201, topped.text
        hold_ids = [
            a.post("/holds", json={"user_id": "alice", "asset_code": "GC", "amount": 5}).json()[
                "id"
            ]
            for _ in range(6)
        ]
        # Both processes have served a request (connections open, assets read) before the race.
        assert b.get("/balance/alice/GC").status_code == 200
        results: dict[str, list[tuple[str, int, str | None]]] = {h: [] for h in hold_ids}

        def settle(client: httpx.Client, action: str, order: list[str]) -> None:
            for hold_id in order:
                response = client.post(f"/holds/{hold_id}/{action}")
                code = response.json().get("code") if response.status_code >= 400 else None
                results[hold_id].append((action, response.status_code, code))

        # The release goes through the holds from the other end, so that releases win some
        # races and captures others, whichever the timing.
        threads = [
            threading.Thread(target=settle, args=(a, "capture", hold_ids)),
            threading.Thread(target=settle, args=(b, "release", hold_ids[::-1])),
            threading.Thread(target=settle, args=(b, "capture", hold_ids)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        captured = 0
        for hold_id, answers in results.items():
            winners = [action for action, status, _ in answers if status == 200]
            losers = [(status, code) for _, status, code in answers if status != 200]
            assert len(winners) == 1, answers
            assert losers == [(409, "hold_not_pending")] * 2, answers
            settled = {"capture": "captured", "release": "released"}[winners[0]]
            assert a.get(f"/holds/{hold_id}").json()["status"] == settled, answers
            captured += winners[0] == "capture"
        assert a.get("/balance/alice/GC").json() == {
            "user_id": "alice",
            "asset_code": "GC",
            "balance": f"{100 - 5 * captured}.00",
            "held": "0.00",
            "frozen": False,
            "expiring": [],
        }
        a.close()
        b.close()
    finally:
        for server in servers:
            server.kill()
    assert_invariants(database_url)
