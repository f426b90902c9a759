"""Balance monitors (API.md, "Player protection"), on both backends: one
``balance.threshold_crossed`` event per crossing, whatever moved the balance; nothing while a
balance stays on one side, nothing for a refused batch or a replay, nothing once deleted; and,
with two server processes racing across a threshold, exactly one event per crossing found in the
account's entries.
"""

from __future__ import annotations

import random
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.factories import body, post, problem, purchase, topup
from tests.support.server import ServerProcess
from tests.support.tamper import rows
from wallet.api import create_app
from wallet.config import Settings
from wallet.service.wallet import WalletService

CROSSED = "balance.threshold_crossed"


def monitor(client: TestClient | httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/admin/monitors", json={"asset_code": "GC", **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def newest(client: TestClient | httpx.Client) -> int:
    """The position of the newest event, as a reader learns it: a page that is not full."""
    after = 0
    while True:
        response = client.get("/events", params={"after": after, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        after = int(page["next_after"])
        if len(page["items"]) < 1000:
            return after


def crossings(client: TestClient | httpx.Client, after: int) -> list[dict[str, Any]]:
    """The data of every crossing event after ``after``, oldest first."""
    found: list[dict[str, Any]] = []
    while True:
        response = client.get("/events", params={"after": after, "limit": 1000, "types": CROSSED})
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(event["data"] for event in page["items"])
        if len(page["items"]) < 1000:
            return found
        after = page["next_after"]


def crossed(data: dict[str, Any]) -> tuple[str, str, str]:
    """What a crossing says, in short: (user, condition, balance)."""
    return (data["user_id"], data["condition"], data["balance"])


def hold(client: TestClient, user_id: str, amount: object, **extra: object) -> dict[str, Any]:
    response = client.post(
        "/holds", json={"user_id": user_id, "asset_code": "GC", "amount": amount, **extra}
    )
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    return placed


def test_an_above_monitor_fires_once_per_crossing_and_re_arms_on_the_way_back(
    client: TestClient,
) -> None:
    watch = monitor(client, user_id="mon_ann", condition="above", threshold="100")
    start = newest(client)

    topup(client, "mon_ann", "60.00")  # 60: not above
    topup(client, "mon_ann", "40.00")  # 100: at the threshold is not above it
    topup(client, "mon_ann", "0.01")  # 100.01: crosses
    topup(client, "mon_ann", "50.00")  # 150.01: stays above
    purchase(client, "mon_ann", "50.01")  # 100.00: back, re-armed
    topup(client, "mon_ann", "1.00")  # 101.00: crosses again
    topup(client, "mon_bob", "500.00")  # another user: not this monitor's

    events = crossings(client, start)
    assert [crossed(data) for data in events] == [
        ("mon_ann", "above", "100.01"),
        ("mon_ann", "above", "101.00"),
    ]
    assert events[0] == {
        "monitor_id": watch["id"],
        "user_id": "mon_ann",
        "asset_code": "GC",
        "balance": "100.01",
        "condition": "above",
        "threshold": "100.00",
    }


def test_a_below_monitor_of_every_user_fires_for_each_user_that_crosses(
    client: TestClient,
) -> None:
    topup(client, "mon_cat", "100.00")
    topup(client, "mon_dan", "100.00")
    topup(client, "mon_cat", "100.00", asset="DI")
    watch = monitor(client, condition="below", threshold="20.50")
    start = newest(client)

    purchase(client, "mon_cat", "79.50")  # 20.50: at the threshold is not below it
    purchase(client, "mon_cat", "0.01")  # 20.49: crosses
    purchase(client, "mon_cat", "10.00")  # stays below
    purchase(client, "mon_dan", "90.00")  # 10.00: crosses
    purchase(client, "mon_cat", "95.00", asset="DI")  # another asset: not this monitor's
    topup(client, "mon_dan", "50.00")  # 60.00: back above, re-armed
    purchase(client, "mon_dan", "59.00")  # 1.00: crosses again

    events = crossings(client, start)
    assert [crossed(data) for data in events] == [
        ("mon_cat", "below", "20.49"),
        ("mon_dan", "below", "10.00"),
        ("mon_dan", "below", "1.00"),
    ]
    assert {data["monitor_id"] for data in events} == {watch["id"]}
    assert {data["threshold"] for data in events} == {"20.50"}


def test_a_crossing_event_follows_the_transaction_that_made_it(client: TestClient) -> None:
    monitor(client, user_id="mon_eve", condition="above", threshold="10")
    start = newest(client)

    created = topup(client, "mon_eve", "11.00")

    events = client.get("/events", params={"after": start}).json()["items"]
    assert [event["type"] for event in events] == ["transaction.created", CROSSED]
    assert events[0]["data"]["id"] == created["id"]
    assert events[1]["data"]["balance"] == created["balance_after"] == "11.00"


def test_moves_that_stay_on_one_side_emit_nothing(client: TestClient) -> None:
    topup(client, "mon_fay", "50.00")
    monitor(client, user_id="mon_fay", condition="above", threshold="100")
    monitor(client, user_id="mon_fay", condition="below", threshold="10")
    start = newest(client)

    for _ in range(3):
        topup(client, "mon_fay", "20.00")
        purchase(client, "mon_fay", "30.00")
        topup(client, "mon_fay", "10.00")

    assert crossings(client, start) == []


def test_a_hold_s_placement_and_its_capture_each_cross(client: TestClient) -> None:
    topup(client, "mon_gus", "100.00")
    monitor(client, user_id="mon_gus", condition="below", threshold="75")
    monitor(client, user_id="mon_gus", condition="above", threshold="80")
    start = newest(client)

    placed = hold(client, "mon_gus", "30.00")  # 70.00: below 75
    captured = client.post(f"/holds/{placed['id']}/capture", json={"amount": "10.00"})
    assert captured.status_code == 200, captured.text  # releases 20.00: 90.00, above 80

    assert [crossed(data) for data in crossings(client, start)] == [
        ("mon_gus", "below", "70.00"),
        ("mon_gus", "above", "90.00"),
    ]


def test_a_hold_s_expiry_crosses_too(database_url: str) -> None:
    clock = ManualClock()
    settings = Settings(database_url=database_url, hold_sweep_interval_s=0.05)
    with TestClient(create_app(settings, WalletService(settings, clock=clock))) as client:
        topup(client, "mon_hal", "10.00")
        hold(client, "mon_hal", "4.00", expires_in_seconds=60)  # 6.00
        monitor(client, user_id="mon_hal", condition="above", threshold="8")
        start = newest(client)
        clock.advance(61)

        # The sweeper's expiry is the service's own movement; wait for its crossing.
        waited = client.get("/events", params={"after": start, "types": CROSSED, "wait": 30}).json()

        assert [crossed(event["data"]) for event in waited["items"]] == [
            ("mon_hal", "above", "10.00")
        ]


def _items(*moves: tuple[str, str]) -> list[dict[str, object]]:
    return [body(kind, "mon_ivy", amount) for kind, amount in moves]


def test_a_batch_that_crosses_twice_emits_twice_and_a_refused_one_nothing(
    client: TestClient,
) -> None:
    topup(client, "mon_ivy", "100.00")
    monitor(client, user_id="mon_ivy", condition="below", threshold="50")
    start = newest(client)
    moves = (("purchase", "60.00"), ("topup", "30.00"), ("purchase", "30.00"))

    refused = client.post(
        "/transaction/batch", json={"transactions": _items(*moves, ("purchase", "999.00"))}
    )
    problem(refused, 422, "batch_failed")
    assert crossings(client, start) == []

    accepted = client.post("/transaction/batch", json={"transactions": _items(*moves)})
    assert accepted.status_code == 201, accepted.text
    assert [crossed(data) for data in crossings(client, start)] == [
        ("mon_ivy", "below", "40.00"),
        ("mon_ivy", "below", "40.00"),
    ]


def test_an_idempotent_replay_emits_nothing(client: TestClient) -> None:
    monitor(client, user_id="mon_jon", condition="above", threshold="5")
    start = newest(client)
    headers = {"Idempotency-Key": "mon-jon-1"}

    first = post(client, "topup", "mon_jon", "6.00", headers=headers)
    again = post(client, "topup", "mon_jon", "6.00", headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert [crossed(data) for data in crossings(client, start)] == [("mon_jon", "above", "6.00")]


def test_a_deleted_monitor_emits_nothing_more(client: TestClient) -> None:
    watch = monitor(client, user_id="mon_kim", condition="above", threshold="5")
    kept = monitor(client, user_id="mon_kim", condition="above", threshold="7")
    start = newest(client)

    deleted = client.delete(f"/admin/monitors/{watch['id']}")
    topup(client, "mon_kim", "10.00")

    assert deleted.status_code == 204
    assert [data["monitor_id"] for data in crossings(client, start)] == [kept["id"]]
    problem(client.get(f"/admin/monitors/{watch['id']}"), 404, "monitor_not_found")
    problem(client.delete(f"/admin/monitors/{watch['id']}"), 404, "monitor_not_found")


def test_monitors_are_created_read_listed_in_pages_and_deleted(client: TestClient) -> None:
    made = [
        monitor(client, condition="above", threshold=100),
        monitor(client, user_id="mon_lea", condition="below", threshold="0.5"),
        monitor(client, asset_code="DI", condition="below", threshold="7.25"),
    ]

    assert made[0]["threshold"] == "100.00"
    assert made[1] | {"id": None, "created_at": None} == {
        "id": None,
        "asset_code": "GC",
        "user_id": "mon_lea",
        "condition": "below",
        "threshold": "0.50",
        "created_at": None,
    }
    assert client.get(f"/admin/monitors/{made[2]['id']}").json() == made[2]
    first = client.get("/admin/monitors", params={"limit": 2}).json()
    rest = client.get("/admin/monitors", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert first["items"] + rest["items"] == made
    assert rest["next_cursor"] is None
    problem(client.get("/admin/monitors", params={"cursor": "nonsense"}), 422, "validation_error")
    problem(client.get("/admin/monitors", params={"limit": 1001}), 422, "validation_error")


@pytest.mark.parametrize(
    "fields",
    [
        {"condition": "above", "threshold": "1.001"},  # more decimals than GC's scale
        {"condition": "above", "threshold": 0},
        {"condition": "above", "threshold": "-5"},
        {"condition": "above", "threshold": "1e3"},
        {"condition": "between", "threshold": "5"},
        {"condition": "above"},
        {"condition": "above", "threshold": "5", "asset_code": "XX"},
        {"condition": "above", "threshold": "5", "user_id": "no spaces"},
        {"condition": "above", "threshold": "5", "colour": "red"},
    ],
)
def test_a_malformed_monitor_is_a_validation_error(
    client: TestClient, fields: dict[str, object]
) -> None:
    response = client.post("/admin/monitors", json={"asset_code": "GC", **fields})

    problem(response, 422, "validation_error")
    assert client.get("/admin/monitors").json()["items"] == []


def test_the_number_of_monitors_is_bounded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wallet.service.monitors.MONITORS_MAX", 2)
    monitor(client, condition="above", threshold=1)
    monitor(client, condition="above", threshold=2)

    refused = client.post(
        "/admin/monitors", json={"asset_code": "GC", "condition": "above", "threshold": 3}
    )

    assert "2 balance monitors already" in problem(refused, 422, "validation_error")["detail"]
    assert len(client.get("/admin/monitors").json()["items"]) == 2


# --- two processes racing across a threshold (PostgreSQL) --------------------------------------

RACERS = 8
MOVES_PER_RACER = 15
# Half the racers buy first, half top up first: the balance goes both above and below.
ORDERS = (("purchase", "topup"), ("topup", "purchase"))


def _race(
    url: str, user_id: str, kinds: tuple[str, str], rng: random.Random, refusals: list[str]
) -> None:
    """Pairs of a purchase and a top-up of the same random amount (in the order ``kinds``
    says): the balance wanders around where it started, never more than RACERS * 10.00 away
    from it, so nothing is refused."""
    with httpx.Client(base_url=url, timeout=60) as http:
        for _ in range(MOVES_PER_RACER):
            amount = rng.choice(("5.00", "10.00"))
            for kind in kinds:
                response = http.post("/transaction", json=body(kind, user_id, amount))
                if response.status_code != 201:
                    refusals.append(response.text)


# Several processes share one database on PostgreSQL.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_racing_writes_through_two_processes_emit_one_event_per_crossing(
    database_url: str, tmp_path: Path, seed: int
) -> None:
    servers = [
        ServerProcess(database_url, tmp_path / f"server{index}.log").start() for index in range(2)
    ]
    try:
        with httpx.Client(base_url=servers[0].url, timeout=60) as admin:
            above = monitor(admin, user_id="mon_race", condition="above", threshold="100")
            below = monitor(admin, condition="below", threshold="100")
            start = newest(admin)
            funded = admin.post("/transaction", json=body("topup", "mon_race", "100.00"))
            assert funded.status_code == 201, funded.text
            rngs = [random.Random(seed + index) for index in range(RACERS)]
            refusals: list[str] = []
            racers = [
                threading.Thread(
                    target=_race,
                    args=(
                        servers[index % 2].url,
                        "mon_race",
                        ORDERS[index // 2 % 2],
                        rngs[index],
                        refusals,
                    ),
                )
                for index in range(RACERS)
            ]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join()

            events = crossings(admin, start)
    finally:
        for server in servers:
            server.kill()

    entries = rows(
        database_url,
        "SELECT e.balance_before, e.balance_after FROM entries e"
        " JOIN accounts a ON a.id = e.account_id"
        " WHERE a.owner_type = 'user' AND a.owner_id = 'mon_race' AND a.asset_code = 'GC'",
    )
    threshold = 10_000
    ups = sum(1 for before, after in entries if before <= threshold < after)
    downs = sum(1 for before, after in entries if after < threshold <= before)
    assert refusals == []
    assert len(entries) == 1 + RACERS * MOVES_PER_RACER * 2
    # The first move after the funding starts at the threshold, so it crosses one way or the
    # other; the race crosses many times more.
    assert ups + downs >= 1
    print(f"seed {seed}: {ups} crossings up, {downs} down")
    assert [e["monitor_id"] for e in events].count(above["id"]) == ups, seed
    assert [e["monitor_id"] for e in events].count(below["id"]) == downs, seed
    assert {e["user_id"] for e in events} == {"mon_race"}
    assert all(
        Decimal(e["balance"]) > 100 if e["condition"] == "above" else Decimal(e["balance"]) < 100
        for e in events
    )
