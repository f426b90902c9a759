"""The read side of the contract: service status, assets, balances, transactions, history, docs."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factories import (
    SEED_ASSETS,
    SEED_BALANCES,
    bonus,
    history_ids,
    history_page,
    problem,
    purchase,
    topup,
    validation_locations,
)
from wallet import __version__

# --- status -------------------------------------------------------------------------------------


def test_root_says_the_service_is_up(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "ok"
    assert answer["service"] == "wallet"
    assert answer["version"] == __version__


def test_health_names_the_backend_and_its_latency(client: TestClient, backend: str) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["database"]["status"] == "ok"
    assert health["database"]["backend"] == backend
    latency_ms = health["database"]["latency_ms"]
    assert isinstance(latency_ms, int | float)
    assert 0 <= latency_ms < 5_000
    assert health["version"] == __version__


def test_assets_are_the_seeded_three(client: TestClient) -> None:
    response = client.get("/assets")

    assert response.status_code == 200
    assets = {asset["code"]: asset for asset in response.json()}
    assert set(assets) == set(SEED_ASSETS)
    for code, expected in SEED_ASSETS.items():
        assert {field: assets[code][field] for field in expected} == expected


# --- balances -----------------------------------------------------------------------------------


def test_balances_of_the_seeded_users(client: TestClient) -> None:
    for user_id, expected in SEED_BALANCES.items():
        response = client.get(f"/balance/{user_id}")
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["user_id"] == user_id
        assert {b["asset_code"]: b["balance"] for b in answer["balances"]} == expected
        assert all(b["user_id"] == user_id for b in answer["balances"])
        for asset, amount in expected.items():
            single = client.get(f"/balance/{user_id}/{asset}").json()
            # The openings are top-ups: LP's (365 days on a new database) is a lot.
            expiring = single.pop("expiring")
            assert single == {
                "user_id": user_id,
                "asset_code": asset,
                "balance": amount,
                "held": "0.00",
                "frozen": False,
            }
            assert [lot["amount"] for lot in expiring] == ([amount] if asset == "LP" else [])


def test_balances_include_zeros_for_assets_never_touched(client: TestClient) -> None:
    bonus(client, "newcomer", "12.30", "LP")

    answer = client.get("/balance/newcomer").json()

    balances = {b["asset_code"]: b["balance"] for b in answer["balances"]}
    assert balances == {"GC": "0.00", "DI": "0.00", "LP": "12.30"}
    assert client.get("/balance/newcomer/DI").json()["balance"] == "0.00"


# --- one transaction ----------------------------------------------------------------------------


def test_transaction_by_id_is_what_the_post_answered(client: TestClient) -> None:
    created = topup(client, "reader", "7.25", description="for reading")

    response = client.get(f"/transaction/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


# --- history ------------------------------------------------------------------------------------


def test_seeded_history_explains_the_opening_balances(client: TestClient) -> None:
    page = history_page(client, "user_001")

    assert page["user_id"] == "user_001"
    assert page["next_cursor"] is None
    openings = {item["asset_code"]: item for item in page["items"]}
    assert {code: item["balance_after"] for code, item in openings.items()} == (
        SEED_BALANCES["user_001"]
    )
    assert {item["transaction_type"] for item in page["items"]} == {"topup"}


def _make_history(client: TestClient, user_id: str, count: int) -> list[str]:
    """``count`` top-ups of 1.00, 2.00, …; their ids, newest first."""
    return [topup(client, user_id, f"{n}.00")["id"] for n in range(1, count + 1)][::-1]


def test_history_is_newest_first_in_pages_of_50_by_default(client: TestClient) -> None:
    newest_first = _make_history(client, "pager", 55)

    first = history_page(client, "pager")
    second = history_page(client, "pager", cursor=first["next_cursor"])

    assert [item["id"] for item in first["items"]] == newest_first[:50]
    assert first["items"][0]["amount"] == "55.00"
    assert first["next_cursor"] is not None
    assert [item["id"] for item in second["items"]] == newest_first[50:]
    assert second["next_cursor"] is None
    # The n-th top-up of n.00 leaves 1 + 2 + … + n.
    assert first["items"][0]["balance_after"] == "1540.00"
    assert [item["balance_after"] for item in second["items"]] == [
        "15.00",
        "10.00",
        "6.00",
        "3.00",
        "1.00",
    ]


def test_cursor_pages_through_every_item_exactly_once(client: TestClient) -> None:
    newest_first = _make_history(client, "walker", 23)

    for limit in (1, 7, 23):
        seen = history_ids(client, "walker", page_size=limit)
        assert seen == newest_first, limit
    last_page = history_page(client, "walker", limit=23)
    assert last_page["next_cursor"] is None, "a full last page has no cursor to an empty one"


def test_paging_is_stable_while_new_transactions_arrive(client: TestClient) -> None:
    newest_first = _make_history(client, "busy", 10)

    first = history_page(client, "busy", limit=4)
    newer = topup(client, "busy", "0.50")
    rest = history_ids_from(client, "busy", first["next_cursor"], limit=4)

    assert [item["id"] for item in first["items"]] + rest == newest_first
    assert history_ids(client, "busy")[0] == newer["id"]


def history_ids_from(client: TestClient, user_id: str, cursor: str, limit: int) -> list[str]:
    ids: list[str] = []
    next_cursor: str | None = cursor
    while next_cursor is not None:
        page = history_page(client, user_id, limit=limit, cursor=next_cursor)
        ids.extend(item["id"] for item in page["items"])
        next_cursor = page["next_cursor"]
    return ids


def test_history_filters_by_asset_and_type(client: TestClient) -> None:
    mixed: list[dict[str, Any]] = [
        topup(client, "mixed", "10.00", "GC"),
        bonus(client, "mixed", "5.00", "LP"),
        purchase(client, "mixed", "2.00", "GC"),
        topup(client, "mixed", "3.00", "DI"),
        bonus(client, "mixed", "1.00", "GC"),
    ]

    def ids(**filters: object) -> list[str]:
        return [item["id"] for item in history_page(client, "mixed", **filters)["items"]]

    def expected(asset: str | None = None, kind: str | None = None) -> list[str]:
        return [
            t["id"]
            for t in reversed(mixed)
            if asset in (None, t["asset_code"]) and kind in (None, t["transaction_type"])
        ]

    assert ids(asset_code="GC") == expected(asset="GC")
    assert ids(transaction_type="bonus") == expected(kind="bonus")
    assert ids(transaction_type="purchase") == expected(kind="purchase")
    assert ids(asset_code="GC", transaction_type="bonus") == expected("GC", "bonus")
    assert ids(asset_code="DI", transaction_type="purchase") == []
    assert len(history_page(client, "mixed", limit=500)["items"]) == len(mixed)
    assert len(history_page(client, "mixed", limit=1)["items"]) == 1
    # Paging keeps the filter.
    first = history_page(client, "mixed", asset_code="GC", limit=2)
    rest = history_page(client, "mixed", asset_code="GC", limit=2, cursor=first["next_cursor"])
    paged = [item["id"] for item in first["items"] + rest["items"]]
    assert paged == expected(asset="GC")
    assert rest["next_cursor"] is None


BAD_CURSORS = {
    "not base64": "%%%",
    "base64 of nonsense": base64.urlsafe_b64encode(b"hello").decode(),
    "negative position": base64.urlsafe_b64encode(b"seq:-1").decode(),
    "position too large": base64.urlsafe_b64encode(b"seq:" + b"9" * 30).decode(),
    "not UTF-8": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "too long": "A" * 1000,
}


# --- errors -------------------------------------------------------------------------------------

HISTORY = "/transaction/user_001/history"


def test_read_errors(client: TestClient, subtests: pytest.Subtests) -> None:
    """Every refusal of the read side, on the seeded database (reads write nothing)."""
    not_found = {
        "balances of an unknown user": ("/balance/nobody", "user_not_found"),
        "balance of an unknown user": ("/balance/nobody/GC", "user_not_found"),
        "history of an unknown user": ("/transaction/nobody/history", "user_not_found"),
        "filtered history of an unknown user": (
            "/transaction/nobody/history?asset_code=GC",
            "user_not_found",
        ),
        "balance in an unknown asset": ("/balance/user_001/XX", "asset_not_found"),
        "balance in an unknown long asset": ("/balance/user_001/ZZZZZZZZZZ", "asset_not_found"),
        "history in an unknown asset": (f"{HISTORY}?asset_code=XX", "asset_not_found"),
        "unknown transaction": (f"/transaction/{uuid.uuid4()}", "transaction_not_found"),
        "unknown transaction, not a uuid": ("/transaction/not-an-id", "transaction_not_found"),
    }
    for name, (url, code) in not_found.items():
        with subtests.test(name):
            problem(client.get(url), 404, code)

    invalid: dict[str, tuple[str, dict[str, str], list[str]]] = {
        "user id with a space": ("/balance/bad%20user", {}, ["path", "user_id"]),
        "user id of 129 characters": (f"/balance/{'u' * 129}/GC", {}, ["path", "user_id"]),
        "history of a bad user id": ("/transaction/bad%20user/history", {}, ["path", "user_id"]),
        "transaction id with a NUL": ("/transaction/a%00b", {}, ["path", "transaction_id"]),
        "transaction id not ASCII": ("/transaction/%F0%9F%8E%AE", {}, ["path", "transaction_id"]),
        "unknown transaction type": (
            HISTORY,
            {"transaction_type": "transfer"},
            ["query", "transaction_type"],
        ),
        **{
            f"limit {limit}": (HISTORY, {"limit": limit}, ["query", "limit"])
            for limit in ("501", "0", "-1", "ten")
        },
        **{
            f"cursor {name}": (HISTORY, {"cursor": cursor}, ["query", "cursor"])
            for name, cursor in BAD_CURSORS.items()
        },
    }
    for name, (url, params, location) in invalid.items():
        with subtests.test(name):
            assert location in validation_locations(client.get(url, params=params))


SEGMENTS = st.text(max_size=140) | st.sampled_from(["user_001", "GC", "XX", "\x00", "%", "?"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=SEGMENTS, second=SEGMENTS, query=SEGMENTS)
def test_no_read_gets_a_500(client: TestClient, first: str, second: str, query: str) -> None:
    one, two = quote(first, safe=""), quote(second, safe="")
    for url, params in (
        (f"/balance/{one}", {}),
        (f"/balance/{one}/{two}", {}),
        (f"/transaction/{one}", {}),
        (f"/transaction/{one}/history", {"cursor": query}),
        ("/transaction/user_001/history", {"asset_code": query, "limit": second}),
        ("/transaction/user_001/history", {"transaction_type": query}),
    ):
        response = client.get(url, params=params)
        assert response.status_code in (200, 404, 405, 422), (url, params, response.text)


# --- documentation ------------------------------------------------------------------------------

# The error codes of API.md that the service has today.
CONTRACT_ERROR_CODES = {
    "idempotency_key_mismatch": 400,
    "user_not_found": 404,
    "asset_not_found": 404,
    "transaction_not_found": 404,
    "payload_too_large": 413,
    "validation_error": 422,
    "insufficient_funds": 422,
    "idempotency_key_reused": 422,
    "unavailable": 503,
}
CONTRACT_PATHS = {
    "/": {"get"},
    "/health": {"get"},
    "/assets": {"get"},
    "/balance/{user_id}": {"get"},
    "/balance/{user_id}/{asset_code}": {"get"},
    "/transaction": {"post"},
    "/transaction/{transaction_id}": {"get"},
    "/transaction/{user_id}/history": {"get"},
}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    # An optional body is documented as anyOf [the model, null]: the model carries the examples.
    for option in schema.get("anyOf", ()):
        if "$ref" in option:
            schema = option
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def test_openapi_documents_every_endpoint_with_examples(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "openapi.json" in docs.text

    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    for path, methods in CONTRACT_PATHS.items():
        assert methods <= set(paths.get(path, {})), path

    documented: dict[str, int] = {}
    request_examples: list[Any] = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]["application/json"]
                schema = _resolve(document, content["schema"])
                examples = schema.get("examples") or list(content.get("examples", {}).values())
                assert examples, f"{where} has no request body example"
                if where == "POST /transaction":
                    request_examples.extend(examples)
            for status, answer in operation["responses"].items():
                if int(status) < 400 or path == "/health":
                    continue
                examples = answer["content"]["application/problem+json"]["examples"]
                assert examples, f"{where} {status} has no example"
                for code, example in examples.items():
                    assert example["value"]["code"] == code, where
                    assert example["value"]["status"] == int(status), where
                    assert example["value"]["detail"], where
                    documented[code] = int(status)

    assert {code: documented.get(code) for code in CONTRACT_ERROR_CODES} == CONTRACT_ERROR_CODES
    # The request examples are not just documentation: each one is accepted as it stands.
    # (A refund example names a transaction of the docs, not of this database.)
    for example in request_examples:
        if example["transaction_type"] == "refund":
            continue
        created = client.post("/transaction", json=example)
        assert created.status_code == 201, (example, created.text)
