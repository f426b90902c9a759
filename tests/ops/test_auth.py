"""API keys and scopes: every route of the OpenAPI document with no key, a wrong key, a revoked
key and each scope; open mode; WALLET_AUTH=required; idempotency keys scoped per API key; the
refresh bound of revocation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.support.factories import problem
from tests.support.rawdb import connect
from wallet.api import create_app
from wallet.api.auth import required_scope
from wallet.config import Settings
from wallet.limits import AUTH_KEYS_REFRESH_S
from wallet.service.keys import KeyRing, Scope, create_api_key, hash_key, revoke_api_key
from wallet.service.wallet import WalletService
from wallet.storage import open_database

SAMPLE_PATH_VALUES = {
    "user_id": "user_001",
    "asset_code": "GC",
    "transaction_id": "no-such-transaction",
    "hold_id": "no-such-hold",
    "webhook_id": "no-such-webhook",
    "monitor_id": "no-such-monitor",
}
OPEN_PATHS = ["/", "/health", "/docs", "/openapi.json"]
TOPUP = {"transaction_type": "topup", "user_id": "user_001", "asset_code": "GC", "amount": "1.00"}


@dataclass
class Keys:
    read: str
    write: str
    admin: str
    revoked: str
    ids: dict[str, str]


def _create_keys(settings: Settings) -> Keys:
    database = open_database(settings)
    try:
        made = {
            scope.value: create_api_key(database, f"test-{scope.value}", [scope.value])
            for scope in Scope
        }
        revoked, revoked_key = create_api_key(database, "test-revoked", [s.value for s in Scope])
        revoke_api_key(database, revoked.id)
    finally:
        database.close()
    return Keys(
        read=made["read"][1],
        write=made["write"][1],
        admin=made["admin"][1],
        revoked=revoked_key,
        ids={scope: record.id for scope, (record, _) in made.items()},
    )


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return _create_keys(settings)


@pytest.fixture
def authed(settings: Settings, keys: Keys) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _operations(client: TestClient) -> list[tuple[str, str]]:
    document = client.get("/openapi.json").json()
    operations = []
    for path, methods in document["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)
        operations.extend((method.upper(), concrete) for method in methods)
    return operations


def _call(client: TestClient, method: str, path: str, **headers: str) -> Any:
    body = {} if method == "POST" else None
    return client.request(method, path, json=body, headers=headers)


def test_every_route_refuses_a_missing_wrong_or_revoked_key_and_honours_scopes(
    authed: TestClient, keys: Keys
) -> None:
    operations = _operations(authed)
    assert len(operations) >= 14
    wrong = "wk_000000000000_" + "A" * 43
    scoped = {"read": keys.read, "write": keys.write, "admin": keys.admin}
    for method, path in operations:
        needed = required_scope(method, path)
        if needed is None:
            assert _call(authed, method, path).status_code == 200, path
            continue
        for headers in (
            {},
            {"Authorization": f"Bearer {wrong}"},
            {"Authorization": "Bearer not-a-key"},
            {"X-API-Key": wrong},
            {"Authorization": f"Bearer {keys.revoked}"},
            {"Authorization": f"Basic {keys.admin}"},
        ):
            response = _call(authed, method, path, **headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert response.headers["content-type"] == "application/problem+json"
        for scope, key in scoped.items():
            for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
                response = _call(authed, method, path, **headers)
                if scope == needed:
                    assert response.status_code not in (401, 403), (method, path, response.text)
                else:
                    assert response.status_code == 403, (method, path, scope, response.text)
                    assert response.json()["code"] == "forbidden"


def test_open_paths_stay_open(authed: TestClient) -> None:
    for path in OPEN_PATHS:
        assert authed.get(path).status_code == 200, path
    assert authed.get("/health").json()["auth"] == "enabled"


def test_the_openapi_document_describes_the_security_scheme(authed: TestClient) -> None:
    document = authed.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    post = document["paths"]["/transaction"]["post"]
    assert post["x-required-scope"] == "write"
    assert {"401", "403"} <= set(post["responses"])
    assert document["paths"]["/health"]["get"]["security"] == []


def test_without_keys_the_service_runs_open_and_says_so(client: TestClient) -> None:
    assert client.get("/health").json()["auth"] == "disabled"
    assert client.get("/balance/user_001").status_code == 200
    assert client.post("/transaction", json=TOPUP).status_code == 201


def test_auth_required_refuses_everything_protected_even_without_keys(database_url: str) -> None:
    settings = Settings(database_url=database_url, auth="required")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/health").json()["auth"] == "enabled"
        response = client.get("/assets")
        assert response.status_code == 401
        assert client.post("/transaction", json=TOPUP).status_code == 401


def test_idempotency_keys_are_scoped_per_api_key(authed: TestClient, settings: Settings) -> None:
    database = open_database(settings)
    try:
        _, other = create_api_key(database, "other-writer", ["write"])
    finally:
        database.close()
    authed.app.state.service.keys.refresh()  # type: ignore[attr-defined]
    first_key = _create_keys(settings).write
    authed.app.state.service.keys.refresh()  # type: ignore[attr-defined]
    headers = {"Idempotency-Key": "order-1"}
    first = authed.post(
        "/transaction", json=TOPUP, headers={**headers, "Authorization": f"Bearer {first_key}"}
    )
    again = authed.post(
        "/transaction", json=TOPUP, headers={**headers, "Authorization": f"Bearer {first_key}"}
    )
    theirs = authed.post("/transaction", json=TOPUP, headers={**headers, "X-API-Key": other})
    assert [first.status_code, again.status_code, theirs.status_code] == [201, 201, 201]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != first.json()["id"]


def test_a_revoked_key_is_refused_within_the_refresh_bound(settings: Settings) -> None:
    now = [0.0]
    database = open_database(settings)
    try:
        record, key = create_api_key(database, "soon-revoked", ["read"])
        ring = KeyRing(database, required=False, refresh_s=5.0, clock=lambda: now[0])
        ring.refresh()
        assert ring.caller(key) is not None
        assert ring.caller(key[:-1] + ("B" if key[-1] != "B" else "C")) is None
        revoke_api_key(database, record.id)
        now[0] = 4.9
        assert not ring.stale()
        now[0] = 5.0
        assert ring.stale()
        ring.refresh()
        assert ring.caller(key) is None
        assert ring.enforced, "revoking the last key does not open the service again"
    finally:
        database.close()


def test_only_a_hash_of_the_key_is_stored(settings: Settings) -> None:
    database = open_database(settings)
    try:
        record, key = create_api_key(database, "hashed", ["read"])
        with database.reading() as session:
            rows = session.all("SELECT * FROM api_keys")
    finally:
        database.close()
    assert re.fullmatch(r"wk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    assert record.key_sha256 == hash_key(key)
    assert not any(key in str(value) for row in rows for value in row)


@pytest.mark.parametrize("auth", ["auto", "required"])
def test_keys_unreadable_at_start_refuse_every_protected_route_until_they_are_read(
    database_url: str, auth: str
) -> None:
    """Fail closed: an unreadable keys table never opens the service, nor answers 401 to the
    key holders; protected routes answer 503 until a read succeeds."""
    settings = Settings(database_url=database_url, auth=auth)  # type: ignore[arg-type]
    with connect(database_url) as raw:
        raw.run("ALTER TABLE api_keys RENAME TO api_keys_away")
    now = [0.0]
    service = WalletService(settings)
    service.keys = KeyRing(service.database, required=auth == "required", clock=lambda: now[0])
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        for method, path in [("GET", "/balance/user_001/GC"), ("GET", "/assets")]:
            problem(client.request(method, path), 503, "unavailable")
        refused = client.post("/transaction", json=TOPUP)
        assert problem(refused, 503, "unavailable")["request_id"] == refused.headers["x-request-id"]
        assert refused.headers["Retry-After"] == "1"
        assert client.get("/balance/user_001/GC").status_code == 503, "still closed"
        with connect(database_url) as raw:
            raw.run("ALTER TABLE api_keys_away RENAME TO api_keys")
        now[0] += AUTH_KEYS_REFRESH_S
        if auth == "auto":
            assert client.get("/balance/user_001/GC").status_code == 200, "read: empty, open"
        else:
            problem(client.get("/balance/user_001/GC"), 401, "unauthorized")


def test_a_failed_refresh_of_an_empty_table_closes_the_service_until_a_read_succeeds(
    settings: Settings,
) -> None:
    now = [0.0]
    database = open_database(settings)
    try:
        ring = KeyRing(database, required=False, refresh_s=5.0, clock=lambda: now[0])
        ring.refresh()
        assert not ring.enforced, "read, and empty: open"
        with connect(settings.database_url) as raw:
            raw.run("ALTER TABLE api_keys RENAME TO api_keys_away")
        now[0] = 5.0
        ring.refresh()
        assert ring.enforced
        assert ring.unknown
        with connect(settings.database_url) as raw:
            raw.run("ALTER TABLE api_keys_away RENAME TO api_keys")
        now[0] = 10.0
        ring.refresh()
        assert not ring.enforced
        assert not ring.unknown
    finally:
        database.close()


def test_a_websocket_never_reaches_the_app(settings: Settings) -> None:
    """No route speaks WebSocket; one added later would still be refused at the edge, before
    authentication could be skipped."""
    app = create_app(settings.model_copy(update={"auth": "required"}))
    reached = []

    async def probe(websocket: WebSocket) -> None:
        reached.append(True)
        await websocket.accept()
        await websocket.send_text("in")

    app.add_api_websocket_route("/ws-probe", probe)
    with TestClient(app) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws-probe"):
            pass
        assert refused.value.code == 1008
    assert reached == []
