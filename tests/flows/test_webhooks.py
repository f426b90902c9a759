"""Webhooks, end to end in one process: /admin/webhooks, and the relay runner delivering to a real
HTTP receiver in the test process, verified with the Standard Webhooks package. Time moves by
the manual clock; the receiver's switches make it fail, hang, redirect, or go away.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.receiver import Received, WebhookReceiver, verify, wait_until
from wallet.api import create_app
from wallet.config import Settings
from wallet.limits import RELAY_FAILING_MAX_S, RELAY_RETRY_FIRST_MAX_S
from wallet.service.events import render_event
from wallet.service.wallet import WalletService
from wallet.storage.events import StoredEvent

from .factories import query, topup

TIMEOUT_S = 1.0


@dataclass
class Hooks:
    client: TestClient
    clock: ManualClock
    receiver: WebhookReceiver
    database_url: str

    def create(self, event_types: list[str] | None = None, **body: Any) -> dict[str, Any]:
        body.setdefault("url", self.receiver.url)
        if event_types is not None:
            body["event_types"] = event_types
        response = self.client.post("/admin/webhooks", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, webhook_id: str) -> dict[str, Any]:
        response = self.client.get(f"/admin/webhooks/{webhook_id}")
        assert response.status_code == 200, response.text
        endpoint: dict[str, Any] = response.json()
        return endpoint

    def attempts(self, webhook_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/admin/webhooks/{webhook_id}/attempts")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def newest(self) -> int:
        return int(query(self.database_url, "SELECT coalesce(max(position), 0) FROM events")[0][0])

    def events_after(self, after: int) -> list[StoredEvent]:
        rows = query(
            self.database_url,
            "SELECT position, id, type, created_at_us, data FROM events"
            f" WHERE position > {int(after)} ORDER BY position",
        )
        return [StoredEvent(*row) for row in rows]

    def next_attempt_us(self, webhook_id: str) -> int:
        rows = query(
            self.database_url,
            f"SELECT next_attempt_us FROM event_relays WHERE id = '{webhook_id}'",
        )
        return int(rows[0][0])


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def hooks(database_url: str, seed: int, receiver: WebhookReceiver) -> Iterator[Hooks]:
    clock = ManualClock()
    settings = Settings(
        database_url=database_url,
        events_lease_s=3,
        events_relay_poll_s=0.02,
        # In this process: the tests move its clock (backoff, leases).
        events_relay="inline",
        webhook_timeout_s=TIMEOUT_S,
    )
    service = WalletService(settings, clock=clock, rng=random.Random(seed))
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        yield Hooks(client, clock, receiver, database_url)


def first_receipts(received: list[Received]) -> list[int]:
    """Positions in the order they first arrived (a retry of one arrives again)."""
    seen: list[int] = []
    for item in received:
        if item.position not in seen:
            seen.append(item.position)
    return seen


def test_events_after_creation_arrive_in_order_signed_and_as_rendered(hooks: Hooks) -> None:
    topup(hooks.client, "alice", 5)  # before the endpoint: never delivered
    endpoint = hooks.create(description="Fraud checks")
    assert endpoint["secret"].startswith("whsec_")
    start = endpoint["last_delivered_position"]
    assert start == hooks.newest()
    for amount in (10, 20, 30):
        topup(hooks.client, "alice", amount)
    hold = hooks.client.post("/holds", json={"user_id": "alice", "asset_code": "GC", "amount": 7})
    assert hold.status_code == 201
    newest = hooks.newest()
    assert newest >= start + 5  # three top-ups, the hold's transaction and hold.placed

    received = hooks.receiver.wait_for(lambda got: len(got) >= newest - start)
    stored = hooks.events_after(start)
    assert [r.position for r in received] == [e.position for e in stored]
    for item, event in zip(received, stored, strict=True):
        assert verify(item, endpoint["secret"])["id"] == event.id
        assert item.body == render_event(event)
        assert item.headers["webhook-id"] == event.id
        assert item.headers["content-type"] == "application/json"
        assert item.headers["webhook-signature"].startswith("v1,")
        assert item.path == "/hooks"
    assert {e.type for e in stored} == {"transaction.created", "hold.placed"}

    done = wait_until(lambda: hooks.get(endpoint["id"])["last_delivered_position"] == newest)
    assert done
    shown = hooks.get(endpoint["id"])
    assert "secret" not in shown
    assert "secret" not in hooks.client.get("/admin/webhooks").json()["items"][0]
    assert {k: shown[k] for k in ("url", "event_types", "description", "status")} == {
        "url": hooks.receiver.url,
        "event_types": ["*"],
        "description": "Fraud checks",
        "status": "enabled",
    }
    assert (shown["failing_since"], shown["last_error"]) == (None, None)
    attempts = hooks.attempts(endpoint["id"])
    assert [a["position"] for a in attempts] == list(range(newest, start, -1))
    assert {(a["status_code"], a["error"]) for a in attempts} == {(204, None)}


def test_an_endpoint_receives_only_the_types_it_asked_for(hooks: Hooks) -> None:
    holds_only = hooks.create(["hold.placed", "hold.released"])
    everything = hooks.create(["*"])
    topup(hooks.client, "bob", 50)
    hold = hooks.client.post("/holds", json={"user_id": "bob", "asset_code": "GC", "amount": 5})
    assert hold.status_code == 201
    assert hooks.client.post(f"/holds/{hold.json()['id']}/release").status_code == 200
    topup(hooks.client, "bob", 1)
    newest = hooks.newest()
    wait_until(
        lambda: all(
            hooks.get(e["id"])["last_delivered_position"] == newest
            for e in (holds_only, everything)
        )
    )
    by_secret: dict[str, list[dict[str, Any]]] = {
        holds_only["secret"]: [],
        everything["secret"]: [],
    }
    for item in hooks.receiver.snapshot():
        for secret, events in by_secret.items():
            try:
                events.append(verify(item, secret))
            except Exception:  # noqa: S112 - signed with the other endpoint's secret
                continue
    assert [e["type"] for e in by_secret[holds_only["secret"]]] == ["hold.placed", "hold.released"]
    assert [e["position"] for e in by_secret[everything["secret"]]] == [
        e.position for e in hooks.events_after(everything["last_delivered_position"])
    ]


def test_a_failing_receiver_is_retried_with_backoff_and_resumes_in_order(hooks: Hooks) -> None:
    hooks.receiver.mode = "fail"
    endpoint = hooks.create()
    webhook_id = endpoint["id"]
    for amount in (1, 2, 3):
        topup(hooks.client, "carol", amount)
    first = endpoint["last_delivered_position"] + 1

    failed = wait_until(lambda: hooks.attempts(webhook_id))
    assert (failed[0]["position"], failed[0]["status_code"]) == (first, 500)
    assert failed[0]["error"] == "HTTP 500"
    shown = hooks.get(webhook_id)
    assert shown["last_error"] == "HTTP 500"
    assert shown["failing_since"] == failed[0]["attempted_at"]
    assert shown["last_delivered_position"] == first - 1
    # The next attempt waits for the clock: between half of the first delay's bound and all of it.
    delay_us = hooks.next_attempt_us(webhook_id) - hooks.clock.now_us()
    assert RELAY_RETRY_FIRST_MAX_S / 2 * 1e6 <= delay_us <= RELAY_RETRY_FIRST_MAX_S * 1e6

    hooks.clock.advance(delay_us / 1e6)
    twice = wait_until(lambda: len(a := hooks.attempts(webhook_id)) >= 2 and a)
    assert [a["position"] for a in twice] == [first, first]
    second_delay_us = hooks.next_attempt_us(webhook_id) - hooks.clock.now_us()
    assert 1.5 * delay_us - 1000 <= second_delay_us <= 2 * delay_us + 1000
    assert hooks.get(webhook_id)["failing_since"] == shown["failing_since"]

    hooks.receiver.mode = "ok"
    hooks.clock.advance(second_delay_us / 1e6)
    newest = hooks.newest()
    wait_until(lambda: hooks.get(webhook_id)["last_delivered_position"] == newest)
    received = hooks.receiver.snapshot()
    assert [r.position for r in received] == [first, first, *range(first, newest + 1)]
    assert all(verify(r, endpoint["secret"]) for r in received)
    recovered = hooks.get(webhook_id)
    assert (recovered["failing_since"], recovered["last_error"]) == (None, None)
    assert hooks.next_attempt_us(webhook_id) == 0


def test_three_days_of_failure_disable_an_endpoint_and_enabling_resumes(hooks: Hooks) -> None:
    hooks.receiver.mode = "fail"
    endpoint = hooks.create()
    webhook_id = endpoint["id"]
    topup(hooks.client, "dave", 1)
    first = endpoint["last_delivered_position"] + 1
    wait_until(lambda: hooks.attempts(webhook_id))
    # Just short of three days: still enabled after the next failure.
    hooks.clock.advance(RELAY_FAILING_MAX_S - 1)
    wait_until(lambda: len(hooks.attempts(webhook_id)) >= 2)
    assert hooks.get(webhook_id)["status"] == "enabled"
    hooks.clock.advance(3600)
    wait_until(lambda: hooks.get(webhook_id)["status"] == "disabled")
    failed = len(hooks.attempts(webhook_id))
    assert hooks.get(webhook_id)["last_delivered_position"] == first - 1

    topup(hooks.client, "dave", 2)
    hooks.receiver.mode = "ok"
    enabled = hooks.client.patch(f"/admin/webhooks/{webhook_id}", json={"status": "enabled"})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["status"] == "enabled"
    assert enabled.json()["failing_since"] is None
    newest = hooks.newest()
    wait_until(lambda: hooks.get(webhook_id)["last_delivered_position"] == newest)
    positions = [r.position for r in hooks.receiver.snapshot()]
    assert positions == [first] * failed + list(range(first, newest + 1))


def test_replay_delivers_again_from_a_position(hooks: Hooks) -> None:
    endpoint = hooks.create()
    webhook_id = endpoint["id"]
    start = endpoint["last_delivered_position"]
    for amount in (1, 2, 3):
        topup(hooks.client, "erin", amount)
    newest = hooks.newest()
    hooks.receiver.wait_for(lambda got: len(got) == newest - start)

    replayed = hooks.client.post(f"/admin/webhooks/{webhook_id}/replay", json={"after": start + 1})
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["last_delivered_position"] == start + 1
    received = hooks.receiver.wait_for(lambda got: len(got) == 2 * (newest - start) - 1)
    assert [r.position for r in received] == [
        *range(start + 1, newest + 1),
        *range(start + 2, newest + 1),
    ]
    # Replay reaches events older than the endpoint too.
    assert hooks.client.post(f"/admin/webhooks/{webhook_id}/replay", json={"after": 0}).is_success
    older = hooks.receiver.wait_for(lambda got: any(r.position == 1 for r in got))
    assert older[2 * (newest - start) - 1].position == 1

    beyond = hooks.client.post(f"/admin/webhooks/{webhook_id}/replay", json={"after": 10**9})
    assert (beyond.status_code, beyond.json()["code"]) == (422, "validation_error")
    negative = hooks.client.post(f"/admin/webhooks/{webhook_id}/replay", json={"after": -1})
    assert negative.status_code == 422


def test_a_redirect_is_a_failure_and_is_not_followed(hooks: Hooks) -> None:
    hooks.receiver.mode = "redirect"
    endpoint = hooks.create()
    topup(hooks.client, "frank", 1)
    [attempt] = wait_until(lambda: hooks.attempts(endpoint["id"]))
    assert attempt["status_code"] == 307
    assert "redirects are not followed" in attempt["error"]
    assert [r.path for r in hooks.receiver.snapshot()] == ["/hooks"]


def test_a_slow_a_dropping_and_a_closed_receiver_fail_then_delivery_resumes(hooks: Hooks) -> None:
    hooks.receiver.mode = "slow"
    hooks.receiver.slow_s = TIMEOUT_S * 3
    endpoint = hooks.create()
    webhook_id = endpoint["id"]
    topup(hooks.client, "gina", 1)
    [slow] = wait_until(lambda: hooks.attempts(webhook_id))
    assert slow["error"] == f"no answer within {TIMEOUT_S:g} s"
    assert slow["status_code"] is None

    hooks.receiver.mode = "drop"
    hooks.clock.advance(RELAY_RETRY_FIRST_MAX_S)
    dropped = wait_until(lambda: len(a := hooks.attempts(webhook_id)) >= 2 and a)[0]
    assert dropped["status_code"] is None
    assert dropped["error"] == "the connection closed before an answer"

    hooks.receiver.down()
    hooks.clock.advance(2 * RELAY_RETRY_FIRST_MAX_S)
    closed = wait_until(lambda: len(a := hooks.attempts(webhook_id)) >= 3 and a)[0]
    assert closed["error"].startswith("ConnectionRefusedError")

    hooks.receiver.mode = "ok"
    hooks.receiver.up()
    hooks.clock.advance(4 * RELAY_RETRY_FIRST_MAX_S)
    newest = hooks.newest()
    wait_until(lambda: hooks.get(webhook_id)["last_delivered_position"] == newest)
    assert first_receipts(hooks.receiver.snapshot()) == list(
        range(endpoint["last_delivered_position"] + 1, newest + 1)
    )


def test_a_huge_answer_is_not_read_to_its_end(hooks: Hooks) -> None:
    hooks.receiver.mode = "huge"
    endpoint = hooks.create()
    topup(hooks.client, "hana", 1)
    topup(hooks.client, "hana", 2)
    newest = hooks.newest()
    wait_until(lambda: hooks.get(endpoint["id"])["last_delivered_position"] == newest)
    assert {a["status_code"] for a in hooks.attempts(endpoint["id"])} == {200}
    assert hooks.receiver.huge_sent < 2 * hooks.receiver.huge_bytes


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "/hooks",
        "http:/missing-slash",
        "https://",
        "",
        "http://example.com/" + "x" * 2100,
    ],
)
def test_only_http_and_https_urls_are_accepted(client: TestClient, url: str) -> None:
    created = client.post("/admin/webhooks", json={"url": url})
    assert (created.status_code, created.json()["code"]) == (422, "validation_error")
    ok = client.post("/admin/webhooks", json={"url": "https://example.com/hook"})
    assert ok.status_code == 201
    patched = client.patch(f"/admin/webhooks/{ok.json()['id']}", json={"url": url})
    assert (patched.status_code, patched.json()["code"]) == (422, "validation_error")
    assert client.get(f"/admin/webhooks/{ok.json()['id']}").json()["url"] == (
        "https://example.com/hook"
    )


def test_event_types_are_star_or_known_types(client: TestClient) -> None:
    for types in ([], ["*", "hold.placed"], ["nope"], ["hold.placed", "hold.placed"], "*"):
        response = client.post(
            "/admin/webhooks", json={"url": "https://example.com/h", "event_types": types}
        )
        assert response.status_code == 422, types
    created = client.post("/admin/webhooks", json={"url": "https://example.com/h"})
    assert created.json()["event_types"] == ["*"]
    changed = client.patch(
        f"/admin/webhooks/{created.json()['id']}", json={"event_types": ["hold.expired"]}
    )
    assert changed.json()["event_types"] == ["hold.expired"]


def test_unknown_webhooks_are_webhook_not_found_and_delete_removes_one(client: TestClient) -> None:
    calls = [
        ("GET", "/admin/webhooks/nope", None),
        ("PATCH", "/admin/webhooks/nope", {"status": "disabled"}),
        ("DELETE", "/admin/webhooks/nope", None),
        ("GET", "/admin/webhooks/nope/attempts", None),
        ("POST", "/admin/webhooks/nope/replay", {"after": 0}),
    ]
    for method, path, body in calls:
        response = client.request(method, path, json=body)
        assert (response.status_code, response.json()["code"]) == (404, "webhook_not_found")
    created = client.post("/admin/webhooks", json={"url": "https://example.com/h"}).json()
    assert client.delete(f"/admin/webhooks/{created['id']}").status_code == 204
    assert client.get(f"/admin/webhooks/{created['id']}").status_code == 404
    assert client.get("/admin/webhooks").json() == {"items": []}


def test_the_number_of_endpoints_is_bounded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wallet.service.webhooks.WEBHOOK_ENDPOINTS_MAX", 2)
    for _ in range(2):
        assert client.post("/admin/webhooks", json={"url": "https://example.com/h"}).is_success
    refused = client.post("/admin/webhooks", json={"url": "https://example.com/h"})
    assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
    assert "2 webhook endpoints" in refused.json()["detail"]


def test_a_deleted_endpoint_receives_nothing_more(hooks: Hooks) -> None:
    endpoint = hooks.create()
    topup(hooks.client, "ivan", 1)
    hooks.receiver.wait_for(lambda got: len(got) == 1)
    assert hooks.client.delete(f"/admin/webhooks/{endpoint['id']}").status_code == 204
    rows = query(hooks.database_url, "SELECT count(*) FROM delivery_attempts")
    assert rows[0][0] == 0
    # A second endpoint sees the next event; by then the deleted one's task has long stopped.
    other = hooks.create()
    topup(hooks.client, "ivan", 2)
    newest = hooks.newest()
    wait_until(lambda: hooks.get(other["id"])["last_delivered_position"] == newest)
    assert [r.position for r in hooks.receiver.snapshot()] == [newest - 1, newest]


def _metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and line.split("}")[0][len(name) + 1 :] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_deliveries_and_failures_and_show_the_lag(hooks: Hooks) -> None:
    hooks.receiver.mode = "fail"
    endpoint = hooks.create()
    relay = endpoint["id"]
    topup(hooks.client, "jack", 1)
    topup(hooks.client, "jack", 2)
    wait_until(lambda: hooks.attempts(relay))
    hooks.clock.advance(60)  # the oldest undelivered event is now a minute old, or more

    def lagging() -> str | None:
        text = hooks.client.get("/metrics").text
        seconds = _metric(text, "wallet_relay_lag_seconds", relay=relay)
        return text if seconds is not None and seconds >= 60 else None

    text = wait_until(lagging)
    assert _metric(text, "wallet_relay_deliveries_total", relay=relay, result="failed") >= 1
    assert _metric(text, "wallet_relay_failures_total", relay=relay) >= 1
    assert _metric(text, "wallet_relay_lag_positions", relay=relay) == 2

    hooks.receiver.mode = "ok"
    hooks.clock.advance(3600)
    newest = hooks.newest()
    wait_until(lambda: hooks.get(relay)["last_delivered_position"] == newest)

    def caught_up() -> str | None:
        text = hooks.client.get("/metrics").text
        positions = _metric(text, "wallet_relay_lag_positions", relay=relay)
        return text if positions == 0 else None

    text = wait_until(caught_up)
    assert _metric(text, "wallet_relay_lag_seconds", relay=relay) == 0
    assert _metric(text, "wallet_relay_deliveries_total", relay=relay, result="acknowledged") == 2

    assert hooks.client.delete(f"/admin/webhooks/{relay}").status_code == 204
    wait_until(lambda: f'relay="{relay}"' not in hooks.client.get("/metrics").text)
