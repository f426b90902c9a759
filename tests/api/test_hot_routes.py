"""The hot routes (api/hot.py) serve well-formed POST /transaction, GET balance and GET history
requests themselves and hand everything else to the FastAPI routes: whichever serves a request,
the client gets the contract's answer, and a request that is refused changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.middleware.gzip import GZipMiddleware

from tests.support.factories import (
    balance,
    body,
    bonus,
    problem,
    purchase,
    topup,
    validation_locations,
)
from tests.support.server import ServerProcess
from wallet.api import create_app
from wallet.api.hot import HotRoutes
from wallet.config import Settings
from wallet.limits import REQUEST_BODY_BYTES_MAX
from wallet.service.cursors import encode_cursor
from wallet.service.wallet import WalletService


def test_a_body_that_is_not_declared_json_is_refused_by_the_route(client: TestClient) -> None:
    topup(client, "hot_ct", "10")
    raw = json.dumps(body("purchase", "hot_ct", "4")).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = client.post("/transaction", content=raw, headers={"Content-Type": content_type})
        problem(response, 422, "validation_error")
    assert balance(client, "hot_ct") == "10.00"
    # Without a Content-Type the body is not read as JSON, as on every route (and the batch).
    problem(client.post("/transaction", content=raw), 422, "validation_error")
    assert balance(client, "hot_ct") == "10.00"
    # Declared JSON with parameters is still JSON.
    declared = {"Content-Type": "Application/JSON; charset=utf-8"}
    assert client.post("/transaction", content=raw, headers=declared).status_code == 201
    assert balance(client, "hot_ct") == "6.00"


def test_a_malformed_idempotency_key_header_is_refused_and_changes_nothing(
    client: TestClient,
) -> None:
    topup(client, "hot_key", "10")
    payload = body("purchase", "hot_key", "4")
    for bad in ("", " leading-space", "x" * 256):
        response = client.post("/transaction", json=payload, headers={"Idempotency-Key": bad})
        problem(response, 422, "validation_error")
        assert ["header", "Idempotency-Key"] in validation_locations(response)
    assert balance(client, "hot_key") == "10.00"


def test_the_header_and_body_keys_must_agree(client: TestClient) -> None:
    topup(client, "hot_agree", "10")
    payload = body("purchase", "hot_agree", "4", idempotency_key="k-body")
    response = client.post("/transaction", json=payload, headers={"Idempotency-Key": "k-header"})
    problem(response, 400, "idempotency_key_mismatch")
    assert balance(client, "hot_agree") == "10.00"


def test_balance_reads_with_a_query_or_a_malformed_path_go_to_the_route(
    client: TestClient,
) -> None:
    topup(client, "hot_read", "10")
    now = client.get("/balance/hot_read/GC")
    assert now.status_code == 200
    assert now.json() == {
        "user_id": "hot_read",
        "asset_code": "GC",
        "balance": "10.00",
        "held": "0.00",
        "frozen": False,
        "expiring": [],
    }
    past = client.get("/balance/hot_read/GC", params={"as_of": "2000-01-01T00:00:00Z"})
    assert past.status_code == 200
    assert past.json()["balance"] == "0.00"
    assert past.json()["as_of"].startswith("2000-01-01T00:00:00")
    problem(client.get("/balance/hot_read/gc"), 422, "validation_error")
    problem(client.get("/balance/hot_read/XYZ"), 404, "asset_not_found")
    problem(client.get("/balance/nobody_here/GC"), 404, "user_not_found")
    # HEAD and other methods are the framework's to answer: not allowed here.
    assert client.request("DELETE", "/balance/hot_read/GC").status_code == 405


def test_a_bug_in_a_hot_route_is_a_problem_with_the_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service: WalletService = client.app.state.service  # type: ignore[attr-defined]

    def broken(*args: object) -> dict[str, str]:
        raise RuntimeError("a bug in the balance read")

    monkeypatch.setattr(service.balances, "get", broken)
    response = client.get("/balance/user_001/GC", headers={"X-Request-ID": "trace-hot"})
    problem(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "trace-hot"
    assert "a bug" not in response.text
    metrics = client.get("/metrics").text
    assert (
        'wallet_http_requests_total{method="GET",route="/balance/{user_id}/{asset_code}",'
        'status="500"} 1.0' in metrics
    )


def test_a_client_that_leaves_in_the_middle_of_its_body_posts_nothing(
    server: ServerProcess,
) -> None:
    """The body read so far is valid JSON, but the client never sent the rest it declared."""
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/transaction", json=body("topup", "hot_gone", "10")).status_code == 201
        part = json.dumps(body("purchase", "hot_gone", "4")).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(
                b"POST /transaction HTTP/1.1\r\nHost: wallet\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(part) + 10, part)
            )
            time.sleep(0.3)
        time.sleep(0.3)
        assert http.get("/balance/hot_gone/GC").json()["balance"] == "10.00"
        history = http.get("/transaction/hot_gone/history").json()
        assert [item["transaction_type"] for item in history["items"]] == ["topup"]
        # Counted as the client's leaving (499), not as an error of the service.
        metrics = http.get("/metrics").text
        assert 'route="/transaction",status="499"} 1.0' in metrics
        assert 'status="500"' not in metrics


def test_every_too_large_body_is_counted_as_a_refusal(client: TestClient) -> None:
    """Declared or streamed, on a hot route or a framework route: one payload_too_large each."""

    def chunks() -> Iterator[bytes]:
        for _ in range(REQUEST_BODY_BYTES_MAX // 1024 + 2):
            yield b" " * 1024

    json_type = {"Content-Type": "application/json"}
    too_large = b" " * (REQUEST_BODY_BYTES_MAX + 1)
    answers = [
        client.post("/transaction", content=too_large, headers=json_type),
        client.post("/transaction", content=chunks(), headers=json_type),
        client.post("/transaction/batch", content=chunks(), headers=json_type),
    ]
    for answer in answers:
        problem(answer, 413, "payload_too_large")
    assert 'wallet_refusals_total{code="payload_too_large"} 3.0' in client.get("/metrics").text


def _history_pages(client: TestClient, user_id: str) -> dict[str, str]:
    """A user with transactions of two assets and three kinds; query strings to page them."""
    topup(client, user_id, "50")
    topup(client, user_id, "7", asset="DI")
    bonus(client, user_id, "2")
    purchase(client, user_id, "5")
    purchase(client, user_id, "1", asset="DI")
    first = client.get(f"/transaction/{user_id}/history", params={"limit": 2}).json()
    assert first["next_cursor"], "five transactions make more than one page of two"
    return {
        "the first page": "",
        "two per page": "limit=2",
        "the second page": f"limit=2&cursor={first['next_cursor']}",
        "one asset": "asset_code=DI",
        "one kind": "transaction_type=purchase",
        "everything at once": "asset_code=GC&transaction_type=topup&limit=1",
        "the largest page": "limit=500",
        "a cursor we never gave out": "cursor=bm90LWEtY3Vyc29y",
        "a cursor with a digit that is not ASCII": "cursor=" + encode_cursor("\u00b2"),
        "a cursor beyond a BIGINT": "cursor=" + encode_cursor("9999999999999999999"),
        "an asset that does not exist": "asset_code=XYZ",
    }


def test_history_pages_are_the_same_whichever_route_serves_them(client: TestClient) -> None:
    """The same query with one character percent-encoded (which the hot route hands on, and
    which means the same once decoded) goes to the FastAPI route: both answers must be the same,
    refusals included."""
    queries = _history_pages(client, "hot_history")
    queries["a user never credited"] = ""
    for case, query in queries.items():
        user = "nobody_here" if case == "a user never credited" else "hot_history"
        hot = client.get(f"/transaction/{user}/history?{query}")
        # An empty query is the default limit, spelled out and encoded.
        encoded = f"%{ord(query[0]):02X}{query[1:]}" if query else "limit=%350"
        framework = client.get(f"/transaction/{user}/history?{encoded}")
        assert hot.status_code == framework.status_code, case
        assert hot.headers["content-type"] == framework.headers["content-type"], case
        if hot.status_code == 200:
            assert hot.content == framework.content, case
        else:
            hot_problem, framework_problem = hot.json(), framework.json()
            for field in ("code", "detail", "status", "errors"):
                assert hot_problem.get(field) == framework_problem.get(field), (case, field)
    everything = client.get("/transaction/hot_history/history").json()["items"]
    assert [item["transaction_type"] for item in everything] == [
        "purchase",
        "purchase",
        "bonus",
        "topup",
        "topup",
    ]


def test_the_hot_route_serves_plain_history_queries_and_hands_on_the_rest(
    client: TestClient,
) -> None:
    """Which requests the hot route keeps: called directly, with a stand-in for the framework."""
    service: WalletService = client.app.state.service  # type: ignore[attr-defined]
    queries = _history_pages(client, "hot_which")
    handed_on: list[str] = []

    async def framework(scope: dict[str, Any], receive: Any, send: Any) -> None:
        handed_on.append(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call(query: str) -> int:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/transaction/hot_which/history",
            "query_string": query.encode(),
            "headers": [],
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await HotRoutes(framework, service)(scope, receive, send)
        status: int = sent[0]["status"]
        return status

    for case, query in queries.items():
        expected = 404 if case == "an asset that does not exist" else None
        expected = 422 if case.startswith("a cursor") else expected
        assert asyncio.run(call(query)) == (expected or 200), case
    assert handed_on == []
    for query in (
        "limit=501",
        "limit=0",
        "limit=020",
        "limit=",
        "limit=2&limit=3",
        "as_of=2026-01-01",
        "asset_code=gc",
        "transaction_type=issuance",
        "cursor=a%3D",
        "cursor=a+b",
        "limit=2&",
    ):
        assert asyncio.run(call(query)) == 299, query
    assert len(handed_on) == 11


def test_a_framework_middleware_is_refused_since_it_would_miss_the_hot_routes(
    settings: Settings,
) -> None:
    """A CORS or GZip layer added the framework's way would wrap only what the hot routes hand
    on: the app says so at once instead of applying it to some requests.
    """
    app = create_app(settings)
    with pytest.raises(TypeError, match="edge"):
        app.add_middleware(GZipMiddleware)
