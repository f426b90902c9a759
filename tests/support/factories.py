"""Small helpers that build ledger data through the HTTP API and read it back.

They assert the happy path (a top-up answers 201) so that a test reads as its story, and return
the parsed JSON a user would look at. ``problem`` checks the RFC 9457 shape of an error answer.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
from fastapi.testclient import TestClient

PROBLEM_JSON = "application/problem+json"
# A response amount: a string with exactly the asset's scale of decimals (2 for the seed assets).
MONEY_AT_SCALE_2 = re.compile(r"^-?[0-9]+\.[0-9]{2}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

# The seed's opening balances (API.md: user_001 and user_002 start with non-zero balances).
SEED_BALANCES = {
    "user_001": {"GC": "1000.00", "DI": "50.00", "LP": "200.00"},
    "user_002": {"GC": "500.00", "DI": "10.00", "LP": "75.00"},
}
SEED_ASSETS = {
    "GC": {"code": "GC", "name": "Gold Coins", "scale": 2, "expires_after_days": None},
    "DI": {"code": "DI", "name": "Diamonds", "scale": 2, "expires_after_days": None},
    "LP": {"code": "LP", "name": "Loyalty Points", "scale": 2, "expires_after_days": 365},
}


def body(
    transaction_type: str, user_id: str, amount: object, asset: str = "GC", **extra: object
) -> dict[str, object]:
    return {
        "transaction_type": transaction_type,
        "user_id": user_id,
        "asset_code": asset,
        "amount": amount,
        **extra,
    }


def post(
    client: TestClient,
    transaction_type: str,
    user_id: str,
    amount: object,
    asset: str = "GC",
    *,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> httpx.Response:
    payload = body(transaction_type, user_id, amount, asset, **extra)
    response: httpx.Response = client.post("/transaction", json=payload, headers=headers)
    return response


def post_raw(client: TestClient, content: bytes | str, content_type: str) -> httpx.Response:
    headers = {"Content-Type": content_type}
    response: httpx.Response = client.post("/transaction", content=content, headers=headers)
    return response


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def topup(
    client: TestClient, user_id: str, amount: object, asset: str = "GC", **extra: object
) -> dict[str, Any]:
    return _created(
        client.post("/transaction", json=body("topup", user_id, amount, asset, **extra))
    )


def bonus(
    client: TestClient, user_id: str, amount: object, asset: str = "GC", **extra: object
) -> dict[str, Any]:
    return _created(
        client.post("/transaction", json=body("bonus", user_id, amount, asset, **extra))
    )


def purchase(
    client: TestClient, user_id: str, amount: object, asset: str = "GC", **extra: object
) -> dict[str, Any]:
    return _created(
        client.post("/transaction", json=body("purchase", user_id, amount, asset, **extra))
    )


def balance(client: TestClient, user_id: str, asset: str = "GC") -> str:
    response = client.get(f"/balance/{user_id}/{asset}")
    assert response.status_code == 200, response.text
    value: str = response.json()["balance"]
    return value


def history_page(client: TestClient, user_id: str, **params: object) -> dict[str, Any]:
    response = client.get(f"/transaction/{user_id}/history", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def history_ids(client: TestClient, user_id: str, page_size: int = 500) -> list[str]:
    """Every transaction id of a user, newest first, following the cursor to the end."""
    ids: list[str] = []
    params: dict[str, object] = {"limit": page_size}
    while True:
        page = history_page(client, user_id, **params)
        ids.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            return ids
        params["cursor"] = page["next_cursor"]


def is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check an RFC 9457 problem with the contract's code; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    assert response.headers.get("x-request-id"), "every response carries X-Request-ID"
    details: dict[str, Any] = response.json()
    assert details["code"] == code, details
    assert details["status"] == status
    assert details["type"] == "about:blank"
    assert is_text(details["title"]), details
    assert is_text(details["detail"]), details
    return details


def validation_locations(response: httpx.Response) -> list[list[str | int]]:
    """The locations a 422 validation_error names, after checking its shape."""
    details = problem(response, 422, "validation_error")
    errors = details["errors"]
    assert isinstance(errors, list), details
    assert errors, details
    for error in errors:
        assert is_text(error["msg"]), error
        assert is_text(error["type"]), error
    return [error["loc"] for error in errors]


def entries_by_account(transaction: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["account_type"], e["account_id"]): e for e in transaction["entries"]}


def check_transaction(
    transaction: dict[str, Any],
    *,
    transaction_type: str,
    user_id: str,
    asset: str,
    amount: str,
    balance_after: str,
) -> None:
    """The documented Transaction shape, with the entries a user would check.

    Only the fields the contract names are looked at: new fields may be added later.
    """
    assert is_text(transaction["id"]), transaction
    assert transaction["transaction_type"] == transaction_type
    assert transaction["status"] == "completed"
    assert transaction["user_id"] == user_id
    assert transaction["asset_code"] == asset
    assert transaction["amount"] == amount
    assert transaction["balance_after"] == balance_after
    assert TIMESTAMP.match(transaction["created_at"]), transaction["created_at"]
    entries = transaction["entries"]
    assert len(entries) == 2, entries
    for entry in entries:
        for field in ("amount", "balance_before", "balance_after"):
            assert MONEY_AT_SCALE_2.match(entry[field]), entry
        assert Decimal(entry["balance_before"]) + Decimal(entry["amount"]) == Decimal(
            entry["balance_after"]
        ), entry
    assert sum(Decimal(e["amount"]) for e in entries) == 0, "entries sum to zero"
    by_account = entries_by_account(transaction)
    user_entry = by_account[("user", user_id)]
    treasury_entry = by_account[("system", "treasury")]
    signed = Decimal(amount) if transaction_type in ("topup", "bonus") else -Decimal(amount)
    assert Decimal(user_entry["amount"]) == signed
    assert Decimal(treasury_entry["amount"]) == -signed
    assert user_entry["balance_after"] == balance_after, "balance_after is the user's"
