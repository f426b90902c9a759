"""Concurrency against a real server process: many real threads and connections at one instant.

What a client must be able to rely on when requests race: no overdraft, exactly one transaction
per idempotency key, no write lost or doubled, and the books balancing afterwards.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess

from .checks import (
    ASSETS,
    Answer,
    answer_of,
    assert_ledger_ok,
    at_once,
    balance,
    body,
    for_each,
    history,
    http_client,
    new_key,
    new_user,
    poster,
    signed_amount,
    topup,
)

pytestmark = pytest.mark.slow


# --- racing purchases --------------------------------------------------------------------------


def check_racing_purchases(base_urls: Sequence[str]) -> None:
    """100.00 GC, 50 purchases of 10.00 at once: exactly ten succeed, nothing overdraws."""
    user_id = new_user()
    topup(base_urls[0], user_id, "100.00")

    answers = at_once(base_urls, [poster(body("purchase", user_id, "10.00"))] * 50)

    statuses = Counter((a.status, a.code) for a in answers)
    assert statuses == {(201, None): 10, (422, "insufficient_funds"): 40}
    balances_after = sorted(Decimal(a.json["balance_after"]) for a in answers if a.status == 201)
    assert balances_after == [Decimal(10 * n) for n in range(10)]
    with http_client(base_urls[0]) as client:
        assert client.get(f"/balance/{user_id}/GC").json()["balance"] == "0.00"
        purchases = [t for t in history(client, user_id) if t["transaction_type"] == "purchase"]
    assert sorted(t["id"] for t in purchases) == sorted(
        a.json["id"] for a in answers if a.status == 201
    )


def test_racing_purchases_never_overdraw(server: ServerProcess, database_url: str) -> None:
    check_racing_purchases([server.url])
    assert_ledger_ok(database_url)


# --- one idempotency key, many requests ----------------------------------------------------------


def check_one_key_at_once(base_urls: Sequence[str], requests: int) -> None:
    """The same key and payload at once: one transaction, and every answer is it (the writer
    sees a key earlier in its unit of work, or already stored, and replays its outcome)."""
    user_id = new_user()
    topup(base_urls[0], user_id, "5.00")
    key = new_key()
    payload = body("topup", user_id, "7.25")

    answers = at_once(base_urls, [poster(payload, key)] * requests)

    assert {a.status for a in answers} == {201}, [a.json for a in answers]
    created = [a for a in answers if a.status == 201]
    assert created, "at least one request completes"
    assert len({a.transaction_id for a in created}) == 1
    assert all(a.json == created[0].json for a in created), "a replay is the first answer again"
    assert len([a for a in created if not a.replayed]) == 1, "one original, the rest replays"
    transaction_id = created[0].transaction_id

    with http_client(base_urls[0]) as client:
        with_key = [t for t in history(client, user_id) if t["idempotency_key"] == key]
        assert [t["id"] for t in with_key] == [transaction_id]
        assert balance(client, user_id, "GC") == Decimal("12.25")
        # Whoever asks later, on whichever process, gets the replay.
        for base_url in base_urls:
            with http_client(base_url) as other:
                again = answer_of(
                    other.post("/transaction", json=payload, headers={"Idempotency-Key": key})
                )
            assert (again.status, again.transaction_id, again.replayed) == (
                201,
                transaction_id,
                True,
            )


def test_one_idempotency_key_at_once_creates_one_transaction(
    server: ServerProcess, database_url: str
) -> None:
    check_one_key_at_once([server.url], requests=30)
    assert_ledger_ok(database_url)


# --- a mixed load over several users and every asset ---------------------------------------------

OPENING = Decimal("50.00")


@dataclass(frozen=True)
class Sent:
    payload: dict[str, Any]
    answer: Answer


def random_amount(rng: random.Random) -> str:
    return f"{Decimal(rng.randint(1, 2_000)) / 100:.2f}"


def mixed_requests(base_url: str, users: Sequence[str], count: int, seed: int) -> list[Sent]:
    rng = random.Random(seed)
    sent: list[Sent] = []
    with http_client(base_url) as client:
        for _ in range(count):
            kind = rng.choice(["topup", "bonus", "purchase", "purchase"])
            payload = body(kind, rng.choice(users), random_amount(rng), rng.choice(ASSETS))
            sent.append(Sent(payload, answer_of(client.post("/transaction", json=payload))))
    return sent


def check_mixed_load(base_urls: Sequence[str], threads: int, requests_per_thread: int) -> None:
    """Top-ups, bonuses and purchases from many threads over shared users and treasuries."""
    users = [new_user() for _ in range(4)]
    for user_id in users:
        for asset_code in ASSETS:
            topup(base_urls[0], user_id, f"{OPENING}", asset_code)

    seed = random.randrange(2**32)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [
            pool.submit(
                mixed_requests, base_urls[n % len(base_urls)], users, requests_per_thread, seed + n
            )
            for n in range(threads)
        ]
        sent = [item for future in futures for item in future.result()]

    statuses = Counter((s.answer.status, s.answer.code) for s in sent)
    assert set(statuses) <= {(201, None), (422, "insufficient_funds")}, (seed, statuses)
    assert statuses[(201, None)] > len(sent) // 2, (seed, statuses)
    created = {s.answer.json["id"]: s for s in sent if s.answer.status == 201}
    assert len(created) == statuses[(201, None)], "every transaction id is new"

    with http_client(base_urls[0]) as client:
        # Every balance is the opening plus exactly the acknowledged changes: none lost, none
        # added, none doubled.
        for user_id in users:
            for asset_code in ASSETS:
                expected = OPENING + sum(
                    (
                        signed_amount(s.answer.json)
                        for s in created.values()
                        if s.payload["user_id"] == user_id and s.payload["asset_code"] == asset_code
                    ),
                    Decimal(0),
                )
                assert balance(client, user_id, asset_code) == expected, (seed, user_id)
        listed = Counter(t["id"] for user_id in users for t in history(client, user_id))
    assert all(count == 1 for count in listed.values())
    assert set(created) <= set(listed)
    assert len(listed) == len(created) + len(users) * len(ASSETS)

    def fetch(client: httpx.Client, transaction_id: str) -> httpx.Response:
        return client.get(f"/transaction/{transaction_id}")

    for transaction_id, response in for_each(base_urls[-1], sorted(created), fetch):
        assert response.status_code == 200, response.text
        assert response.json() == created[transaction_id].answer.json
        assert response.json()["amount"] == created[transaction_id].payload["amount"]


def test_mixed_load_keeps_the_books_balanced(server: ServerProcess, database_url: str) -> None:
    check_mixed_load([server.url], threads=8, requests_per_thread=50)
    assert_ledger_ok(database_url)


# --- two server processes on one PostgreSQL database ---------------------------------------------


@pytest.fixture
def second_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, tmp_path / "second-server.log").start()
    yield process
    process.kill()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_processes_on_one_database_never_overdraw(
    server: ServerProcess, second_server: ServerProcess, database_url: str
) -> None:
    urls = [server.url, second_server.url]
    check_racing_purchases(urls)
    check_one_key_at_once(urls, requests=20)
    check_mixed_load(urls, threads=6, requests_per_thread=30)
    assert_ledger_ok(database_url)
