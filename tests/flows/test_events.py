"""Events (API.md, "Events"), on both backends: every change to the ledger is an event written
with it, read back from GET /events in position order, and nothing else is.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.factories import post, problem, topup
from tests.support.tamper import rows
from wallet.api import create_app
from wallet.config import Settings
from wallet.limits import EVENT_PAGE_SIZE_DEFAULT
from wallet.service.wallet import WalletService
from wallet.storage.events import prune_events

DAY_S = 86_400


def feed(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/events", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def newest(client: TestClient) -> int:
    """The position of the newest event, as a reader learns it."""
    return int(feed(client, after=0)["next_after"])


def events_after(client: TestClient, after: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = feed(client, after=after)["items"]
    return items


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def test_the_seed_wrote_an_event_for_each_of_its_transactions(
    client: TestClient, database_url: str
) -> None:
    page = feed(client)
    [(count,)] = rows(database_url, "SELECT count(*) FROM transactions")

    assert kinds(page["items"]) == ["transaction.created"] * count
    assert [event["position"] for event in page["items"]] == list(range(1, count + 1))
    assert page["next_after"] == count


def test_a_transaction_s_event_carries_the_answer_it_got(client: TestClient) -> None:
    start = newest(client)

    created = topup(client, "ev_alice", "12.50", metadata={"order_id": "A-1"})

    [event] = events_after(client, start)
    assert event["type"] == "transaction.created"
    assert event["position"] == start + 1
    assert event["data"] == created
    assert event["data"]["metadata"] == {"order_id": "A-1"}
    assert event["created_at"] == created["created_at"]
    assert event["id"] != created["id"]


def test_a_hold_s_life_is_its_transactions_then_its_state(client: TestClient) -> None:
    topup(client, "ev_holder", "100.00")
    start = newest(client)

    placed = client.post("/holds", json={"user_id": "ev_holder", "asset_code": "GC", "amount": 30})
    captured = client.post(f"/holds/{placed.json()['id']}/capture", json={"amount": "20.00"})
    other = client.post("/holds", json={"user_id": "ev_holder", "asset_code": "GC", "amount": 5})
    released = client.post(f"/holds/{other.json()['id']}/release")

    events = events_after(client, start)
    assert kinds(events) == [
        "transaction.created",  # hold
        "hold.placed",
        "transaction.created",  # capture
        "transaction.created",  # release of the rest
        "hold.captured",
        "transaction.created",  # hold
        "hold.placed",
        "transaction.created",  # release
        "hold.released",
    ]
    assert events[1]["data"] == placed.json()
    assert events[4]["data"] == captured.json()
    assert events[8]["data"] == released.json()
    assert [
        e["data"]["transaction_type"] for e in events if e["type"] == "transaction.created"
    ] == [
        "hold",
        "capture",
        "release",
        "hold",
        "release",
    ]


def test_an_expired_hold_is_an_event(database_url: str) -> None:
    clock = ManualClock()
    settings = Settings(database_url=database_url, hold_sweep_interval_s=0.05)
    with TestClient(create_app(settings, WalletService(settings, clock=clock))) as client:
        topup(client, "ev_expiring", "10.00")
        hold = client.post(
            "/holds",
            json={
                "user_id": "ev_expiring",
                "asset_code": "GC",
                "amount": 4,
                "expires_in_seconds": 60,
            },
        ).json()
        start = newest(client)
        clock.advance(61)

        waited = feed(client, after=start, types="hold.expired", wait=30)

        [event] = waited["items"]
        assert event["data"]["id"] == hold["id"]
        assert event["data"]["status"] == "expired"


def test_a_batch_is_one_event_per_item_and_a_refused_write_is_none(client: TestClient) -> None:
    topup(client, "ev_batch", "10.00")
    start = newest(client)

    refused = post(client, "purchase", "ev_batch", "999.00").json()
    failed = client.post(
        "/transaction/batch",
        json={
            "transactions": [
                {
                    "transaction_type": "purchase",
                    "user_id": "ev_batch",
                    "asset_code": "GC",
                    "amount": 1,
                },
                {
                    "transaction_type": "purchase",
                    "user_id": "ev_batch",
                    "asset_code": "GC",
                    "amount": 99,
                },
            ]
        },
    )
    assert (refused["code"], failed.status_code) == ("insufficient_funds", 422)
    assert events_after(client, start) == []

    done = client.post(
        "/transaction/batch",
        json={
            "transactions": [
                {
                    "transaction_type": "purchase",
                    "user_id": "ev_batch",
                    "asset_code": "GC",
                    "amount": 1,
                },
                {
                    "transaction_type": "bonus",
                    "user_id": "ev_batch",
                    "asset_code": "LP",
                    "amount": 7,
                },
            ]
        },
    )
    assert done.status_code == 201
    events = events_after(client, start)
    assert [e["data"] for e in events] == done.json()["transactions"]


def test_a_replay_writes_no_event(client: TestClient) -> None:
    first = post(client, "topup", "ev_replay", "3.00", idempotency_key="ev-k1")
    assert first.status_code == 201
    start = newest(client)

    again = post(client, "topup", "ev_replay", "3.00", idempotency_key="ev-k1")

    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert events_after(client, start) == []


def test_a_new_asset_s_issuance_is_an_event(client: TestClient) -> None:
    start = newest(client)

    added = client.post(
        "/admin/assets", json={"code": "EVT", "name": "Events", "scale": 0, "supply": 500}
    )

    assert added.status_code == 201
    [event] = events_after(client, start)
    assert (event["data"]["transaction_type"], event["data"]["asset_code"]) == ("issuance", "EVT")


def test_pages_follow_next_after_and_types_read_past_other_events(client: TestClient) -> None:
    start = newest(client)
    for index in range(5):
        topup(client, "ev_pages", f"{index + 1}.00")
    placed = client.post("/holds", json={"user_id": "ev_pages", "asset_code": "GC", "amount": 1})
    assert placed.status_code == 201
    last = start + 7

    first = feed(client, after=start, limit=3)
    second = feed(client, after=first["next_after"], limit=3)
    third = feed(client, after=second["next_after"], limit=3)
    positions = [e["position"] for page in (first, second, third) for e in page["items"]]
    assert positions == list(range(start + 1, last + 1))
    assert (first["next_after"], second["next_after"], third["next_after"]) == (
        start + 3,
        start + 6,
        last,
    )

    holds_only = feed(client, after=start, types="hold.placed,hold.expired")
    assert [(e["type"], e["position"]) for e in holds_only["items"]] == [("hold.placed", last)]
    nothing = feed(client, after=start, types="hold.expired")
    # Nothing of that type up to the newest position: the reader goes on from there.
    assert (nothing["items"], nothing["next_after"]) == ([], last)
    beyond = feed(client, after=last + 100)
    assert (beyond["items"], beyond["next_after"]) == ([], last + 100)


@pytest.mark.parametrize(
    "params",
    [
        {"types": "transaction.created,bogus"},
        {"types": ""},
        {"limit": 0},
        {"limit": 1001},
        {"after": -1},
        {"after": 2**63},
        {"wait": 31},
        {"wait": -1},
    ],
)
def test_a_malformed_feed_request_is_a_validation_error(
    client: TestClient, params: dict[str, Any]
) -> None:
    problem(client.get("/events", params=params), 422, "validation_error")


def test_a_waiting_reader_gets_the_next_event_as_it_is_written(client: TestClient) -> None:
    start = newest(client)
    answers: list[httpx.Response] = []
    reader = threading.Thread(
        target=lambda: answers.append(client.get("/events", params={"after": start, "wait": 30}))
    )
    reader.start()
    # The reader may ask before or after the write: either way it is given the event.
    created = topup(client, "ev_waited", "1.00")
    reader.join(timeout=60)

    [answer] = answers
    assert [e["data"]["id"] for e in answer.json()["items"]] == [created["id"]]


def test_readers_woken_by_one_write_share_one_read_of_the_page(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers = 50
    settings = Settings(database_url=database_url, seed=True)
    service = WalletService(settings)
    pages_read: list[tuple[Any, ...]] = []
    read = service.read

    async def counting_read(function: Any, *args: Any) -> Any:
        if function == service.events.page:
            pages_read.append(args)
        return await read(function, *args)

    monkeypatch.setattr(service, "read", counting_read)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        start = newest(client)
        answers: list[httpx.Response] = []
        waiting = [
            threading.Thread(
                target=lambda: answers.append(
                    client.get("/events", params={"after": start, "wait": 30})
                )
            )
            for _ in range(readers)
        ]
        for thread in waiting:
            thread.start()
        gauge = f"wallet_event_readers_waiting {readers}.0"
        for _ in range(600):
            if gauge in client.get("/metrics").text:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the readers never all waited")
        pages_read.clear()

        created = topup(client, "ev_woken_together", "1.00")
        for thread in waiting:
            thread.join(timeout=60)

    assert len(answers) == readers
    assert {tuple(e["data"]["id"] for e in a.json()["items"]) for a in answers} == {
        (created["id"],)
    }
    # One read of the page for all the woken readers.
    assert pages_read == [(start, EVENT_PAGE_SIZE_DEFAULT, ())]


def test_an_empty_wait_answers_with_the_same_position(client: TestClient) -> None:
    start = newest(client)

    waited = feed(client, after=start, wait=0.3)

    assert (waited["items"], waited["next_after"]) == ([], start)


def test_retention_prunes_old_events_and_a_reader_behind_it_is_told(database_url: str) -> None:
    clock = ManualClock()
    settings = Settings(database_url=database_url, events_retention_days=90)
    service = WalletService(settings, clock=clock)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        old = newest(client)
        clock.advance(91 * DAY_S)
        topup(client, "ev_young", "1.00")
        young = old + 1

        pruned = 0
        while (batch := service.events.prune(batch=3)) > 0:
            pruned += batch

        assert pruned == old
        gone = client.get("/events", params={"after": 0})
        details = problem(gone, 410, "events_pruned")
        assert details["oldest_position"] == young
        assert f"after={old}" in details["detail"]
        assert [e["position"] for e in events_after(client, old)] == [young]

        # Everything old: the newest event is still kept, so a reader can tell how far
        # retention went.
        clock.advance(91 * DAY_S)
        assert service.events.prune() == 0
        assert [e["position"] for e in events_after(client, old)] == [young]


def test_pruning_stops_at_the_first_event_to_keep(database_url: str) -> None:
    clock = ManualClock()
    settings = Settings(database_url=database_url, events_retention_days=1)
    service = WalletService(settings, clock=clock)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        seeded = newest(client)
        clock.advance(2 * DAY_S)
        topup(client, "ev_keep", "1.00")
        topup(client, "ev_keep", "1.00")
        with service.database.unit_of_work() as session:
            # Only events made before the cutoff go, whatever the batch size.
            assert prune_events(session, clock.now_us() - DAY_S * 1_000_000, 1000) == seeded
        assert [e["position"] for e in events_after(client, seeded)] == [seeded + 1, seeded + 2]
