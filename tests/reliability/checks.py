"""Helpers for the reliability tests: firing requests at once from real threads, reading a
user's whole history over HTTP, and checking the books with the service's own verifier.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from wallet.config import Settings
from wallet.service.verify import verify_ledger
from wallet.storage import Database, open_database

T = TypeVar("T")
R = TypeVar("R")

HTTP_TIMEOUT_S = 60.0
BARRIER_TIMEOUT_S = 30.0
ASSETS = ("GC", "DI", "LP")
# Built once and shared: a client builds its own in about 30 ms otherwise, which would dominate
# tests that open a connection per thread. (The service is plain HTTP on localhost.)
_TLS_CONTEXT = ssl.create_default_context()


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None
    transaction_id: str | None
    replayed: bool
    json: dict[str, Any]


def answer_of(response: httpx.Response) -> Answer:
    payload: dict[str, Any] = response.json()
    return Answer(
        status=response.status_code,
        code=payload.get("code"),
        transaction_id=payload.get("id") if response.status_code == 201 else None,
        replayed=response.headers.get("Idempotent-Replayed") == "true",
        json=payload,
    )


def poster(payload: dict[str, Any], key: str | None = None) -> Callable[[httpx.Client], Answer]:
    headers = {"Idempotency-Key": key} if key is not None else {}

    def post(client: httpx.Client) -> Answer:
        return answer_of(client.post("/transaction", json=payload, headers=headers))

    return post


def new_user() -> str:
    return f"rel_{uuid.uuid4().hex[:12]}"


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"


def body(kind: str, user_id: str, amount: str, asset_code: str = "GC") -> dict[str, Any]:
    return {
        "transaction_type": kind,
        "user_id": user_id,
        "asset_code": asset_code,
        "amount": amount,
    }


def http_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S, verify=_TLS_CONTEXT)


def topup(base_url: str, user_id: str, amount: str, asset_code: str = "GC") -> dict[str, Any]:
    with http_client(base_url) as client:
        response = client.post("/transaction", json=body("topup", user_id, amount, asset_code))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def at_once(base_urls: Sequence[str], calls: Sequence[Callable[[httpx.Client], T]]) -> list[T]:
    """Run each call on its own thread and HTTP connection, all released by one barrier.

    Call ``i`` talks to ``base_urls[i % len(base_urls)]``. Every connection is opened (with a
    health check) before the barrier, so the requests themselves leave together.
    """
    barrier = threading.Barrier(len(calls))

    def run(index: int, call: Callable[[httpx.Client], T]) -> T:
        with http_client(base_urls[index % len(base_urls)]) as client:
            assert client.get("/health").status_code == 200
            barrier.wait(BARRIER_TIMEOUT_S)
            return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, index, call) for index, call in enumerate(calls)]
        return [future.result() for future in futures]


def for_each(
    base_url: str, items: Sequence[T], call: Callable[[httpx.Client, T], R], threads: int = 4
) -> list[tuple[T, R]]:
    """``call`` on every item, spread over a few threads with a connection each."""

    def run(chunk: Sequence[T]) -> list[tuple[T, R]]:
        with http_client(base_url) as client:
            return [(item, call(client, item)) for item in chunk]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        chunks = pool.map(run, [items[n::threads] for n in range(threads)])
        return [pair for chunk in chunks for pair in chunk]


def history(client: httpx.Client, user_id: str) -> list[dict[str, Any]]:
    """Every transaction of a user, newest first, following the cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 500}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get(f"/transaction/{user_id}/history", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def balance(client: httpx.Client, user_id: str, asset_code: str) -> Decimal:
    response = client.get(f"/balance/{user_id}/{asset_code}")
    assert response.status_code == 200, response.text
    return Decimal(response.json()["balance"])


def signed_amount(transaction: dict[str, Any]) -> Decimal:
    """The change a transaction made to its user's balance."""
    amount = Decimal(transaction["amount"])
    return -amount if transaction["transaction_type"] == "purchase" else amount


@contextmanager
def opened(database_url: str) -> Iterator[Database]:
    database = open_database(Settings(database_url=database_url, seed=False))
    try:
        yield database
    finally:
        database.close()


def assert_ledger_ok(database_url: str) -> None:
    """The service's verifier finds every balance explained by entries and every asset whole."""
    with opened(database_url) as database:
        report = verify_ledger(database)
    assert report.ok, report.problems
    assert report.problems == []
    assert report.accounts_checked > 0
    assert report.transactions_checked > 0
