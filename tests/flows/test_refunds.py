"""Refunds: full and partial, both directions, never more than the original, never of a refund."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.server import ServerProcess
from wallet.config import Settings
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService

from .factories import (
    assert_invariants,
    balance,
    count_transactions,
    purchase,
    query,
    topup,
    transact,
)


def refund(client: TestClient, refund_of: str, **body: Any) -> httpx.Response:
    response: httpx.Response = transact(
        client, transaction_type="refund", refund_of=refund_of, **body
    )
    return response


def test_a_purchase_refund_gives_the_funds_back_from_the_treasury(
    client: TestClient, database_url: str
) -> None:
    topup(client, "alice", 100)
    bought = purchase(client, "alice", 40)
    assert bought["refunded_amount"] == "0.00"
    assert bought["refund_of"] is None
    response = refund(client, bought["id"], description="Item never delivered")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["transaction_type"] == "refund"
    assert body["refund_of"] == bought["id"]
    assert body["refunded_amount"] == "0.00"
    assert (body["user_id"], body["asset_code"], body["amount"]) == ("alice", "GC", "40.00")
    assert body["balance_after"] == "100.00"
    assert [(e["account_id"], e["amount"]) for e in body["entries"]] == [
        ("treasury", "-40.00"),
        ("alice", "40.00"),
    ]
    assert client.get(f"/transaction/{bought['id']}").json()["refunded_amount"] == "40.00"
    assert balance(client, "alice") == "100.00"
    history = client.get("/transaction/alice/history", params={"transaction_type": "refund"})
    assert [item["id"] for item in history.json()["items"]] == [body["id"]]
    assert_invariants(database_url)


def test_partial_refunds_add_up_to_the_original_and_no_more(
    client: TestClient, database_url: str
) -> None:
    topup(client, "alice", 100)
    bought = purchase(client, "alice", "30.00")
    assert refund(client, bought["id"], amount="10.50").json()["amount"] == "10.50"
    too_much = refund(client, bought["id"], amount=20)
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "refund_exceeds_original"
    assert "19.50 GC left to refund, 20.00 asked" in too_much.json()["detail"]
    rest = refund(client, bought["id"])
    assert rest.status_code == 201
    assert rest.json()["amount"] == "19.50"
    again = refund(client, bought["id"], amount="0.01")
    assert again.status_code == 422
    assert again.json()["code"] == "refund_exceeds_original"
    assert refund(client, bought["id"]).json()["code"] == "refund_exceeds_original"
    assert client.get(f"/transaction/{bought['id']}").json()["refunded_amount"] == "30.00"
    assert balance(client, "alice") == "100.00"
    assert_invariants(database_url)


def test_a_topup_refund_takes_the_funds_back_unless_they_are_spent(
    client: TestClient, database_url: str
) -> None:
    credited = topup(client, "alice", 50)
    purchase(client, "alice", 45)
    spent = refund(client, credited["id"], amount=10)
    assert spent.status_code == 422
    assert spent.json()["code"] == "insufficient_funds"
    assert spent.json()["detail"] == "alice has 5.00 GC, 10.00 needed"
    chargeback = refund(client, credited["id"], amount=5)
    assert chargeback.status_code == 201
    assert [(e["account_id"], e["amount"]) for e in chargeback.json()["entries"]] == [
        ("alice", "-5.00"),
        ("treasury", "5.00"),
    ]
    assert balance(client, "alice") == "0.00"
    bonus = transact(
        client, transaction_type="bonus", user_id="bob", asset_code="DI", amount="2.50"
    ).json()
    clawback = refund(client, bonus["id"], user_id="bob", asset_code="DI")
    assert clawback.status_code == 201
    assert clawback.json()["amount"] == "2.50"
    assert balance(client, "bob", "DI") == "0.00"
    assert_invariants(database_url)


def test_refunds_and_the_supply_are_not_refundable(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 20)
    bought = purchase(client, "alice", 10)
    first = refund(client, bought["id"], amount=5).json()
    response = refund(client, first["id"])
    assert response.status_code == 422
    assert response.json()["code"] == "not_refundable"
    assert response.json()["detail"] == "a refund transaction cannot be refunded"
    issuance = query(
        database_url, "SELECT id FROM transactions WHERE transaction_type = 'issuance'"
    )
    response = refund(client, issuance[0][0], amount=1)
    assert response.status_code == 422
    assert response.json()["code"] == "not_refundable"
    assert_invariants(database_url)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "bob"}, "user_id"),
        ({"asset_code": "DI"}, "asset_code"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": 0}, "amount"),
    ],
)
def test_a_refund_must_match_its_original(
    client: TestClient, database_url: str, body: dict[str, Any], field: str
) -> None:
    topup(client, "alice", 20)
    bought = purchase(client, "alice", 10)
    before = count_transactions(database_url)
    response = refund(client, bought["id"], **body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert count_transactions(database_url) == before


def test_malformed_refunds_and_flows(client: TestClient, database_url: str) -> None:
    before = count_transactions(database_url)
    response = refund(client, "no-such-transaction")
    assert response.status_code == 404
    assert response.json()["code"] == "transaction_not_found"
    response = transact(client, transaction_type="refund", amount=1)
    assert response.json()["errors"][0]["loc"] == ["body", "refund_of"]
    response = transact(
        client,
        transaction_type="topup",
        user_id="alice",
        asset_code="GC",
        amount=1,
        refund_of="x",
    )
    assert response.json()["errors"][0]["loc"] == ["body", "refund_of"]
    response = transact(client, transaction_type="purchase", user_id="alice", asset_code="GC")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "amount"]
    assert count_transactions(database_url) == before


def test_a_refund_is_idempotent(client: TestClient, database_url: str) -> None:
    topup(client, "alice", 20)
    bought = purchase(client, "alice", 10)
    headers = {"Idempotency-Key": "refund-1"}
    body = {"transaction_type": "refund", "refund_of": bought["id"], "amount": 4}
    first = client.post("/transaction", json=body, headers=headers)
    replay = client.post("/transaction", json={**body, "amount": "4.00"}, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    reused = client.post("/transaction", json={**body, "amount": 5}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert client.get(f"/transaction/{bought['id']}").json()["refunded_amount"] == "4.00"


def test_racing_full_refunds_in_one_process_exactly_one_wins(settings: Settings) -> None:
    service = WalletService(settings)
    service.start()
    try:

        async def race() -> list[Any]:
            credit = await service.transactions.post(
                TransactionInput("topup", "alice", "GC", amount=Decimal(100))
            )
            assert credit.transaction_id is not None
            refund_input = TransactionInput(
                "refund", None, None, None, refund_of=credit.transaction_id
            )
            return await asyncio.gather(
                *(service.transactions.post(refund_input) for _ in range(8))
            )

        outcomes = asyncio.run(race())
    finally:
        service.stop()
    assert sum(outcome.error is None for outcome in outcomes) == 1
    assert {o.error.code for o in outcomes if o.error is not None} == {"refund_exceeds_original"}
    assert_invariants(settings.database_url)


def test_racing_full_refunds_across_processes_exactly_one_wins(
    database_url: str, tmp_path: Path
) -> None:
    servers = [ServerProcess(database_url, tmp_path / f"server{i}.log").start() for i in range(2)]
    try:
        originals = []
        for n in range(3):
            response = httpx.post(
                f"{servers[0].url}/transaction",
                json={
                    "transaction_type": "topup",
                    "user_id": f"u{n}",
                    "asset_code": "GC",
                    "amount": 10,
                },
            )
            originals.append(response.json()["id"])
        results: list[tuple[str, int]] = []
        lock = threading.Lock()

        def refund_all(server: ServerProcess) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for original in originals:
                    response = http.post(
                        "/transaction",
                        json={"transaction_type": "refund", "refund_of": original},
                    )
                    with lock:
                        results.append((original, response.status_code))

        threads = [threading.Thread(target=refund_all, args=(s,)) for s in servers * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.kill()
    for original in originals:
        codes = sorted(code for tid, code in results if tid == original)
        assert codes == [201] + [422] * 5, (original, codes)
    assert_invariants(database_url)
