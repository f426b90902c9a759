"""Batches: in order, each item seeing the ones before it, all or none, idempotent as a whole."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
from fastapi.testclient import TestClient

from wallet.config import Settings
from wallet.service.transactions import TransactionInput
from wallet.service.wallet import WalletService

from .factories import assert_invariants, balance, count_transactions, purchase, topup


def item(kind: str, user_id: str, amount: Any, asset_code: str = "GC", **extra: Any) -> Any:
    return {
        "transaction_type": kind,
        "user_id": user_id,
        "asset_code": asset_code,
        "amount": amount,
        **extra,
    }


def batch(client: TestClient, *items: Any, **body: Any) -> httpx.Response:
    response: httpx.Response = client.post(
        "/transaction/batch", json={"transactions": list(items), **body}
    )
    return response


def test_a_trade_of_one_currency_for_another_is_one_batch(
    client: TestClient, database_url: str
) -> None:
    response = batch(
        client,
        item("purchase", "user_001", 10, "DI", description="Trade 10 Diamonds"),
        item("topup", "user_001", 1000, "GC", description="for 1,000 Gold Coins"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["id"], str)
    assert [
        (t["transaction_type"], t["asset_code"], t["amount"]) for t in body["transactions"]
    ] == [
        ("purchase", "DI", "10.00"),
        ("topup", "GC", "1000.00"),
    ]
    assert [t["balance_after"] for t in body["transactions"]] == ["40.00", "2000.00"]
    assert balance(client, "user_001", "DI") == "40.00"
    assert balance(client, "user_001", "GC") == "2000.00"
    for transaction in body["transactions"]:
        assert client.get(f"/transaction/{transaction['id']}").json() == transaction
    assert_invariants(database_url)


def test_each_item_sees_the_ones_before_it(client: TestClient, database_url: str) -> None:
    bought = purchase(client, "user_002", 100)
    response = batch(
        client,
        item("topup", "newbie", 10),
        item("purchase", "newbie", "7.50"),
        item("purchase", "newbie", "2.50"),
        {"transaction_type": "refund", "refund_of": bought["id"], "amount": 60},
        {"transaction_type": "refund", "refund_of": bought["id"]},
    )
    assert response.status_code == 201, response.text
    balances_after = [t["balance_after"] for t in response.json()["transactions"]]
    assert balances_after == ["10.00", "2.50", "0.00", "460.00", "500.00"]
    assert balance(client, "newbie") == "0.00"
    assert client.get(f"/transaction/{bought['id']}").json()["refunded_amount"] == "100.00"
    assert_invariants(database_url)


def _assert_failed(response: httpx.Response, index: int, code: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "batch_failed"
    assert [(e["index"], e["code"]) for e in problem["errors"]] == [(index, code)]


def test_a_failing_item_leaves_nothing_behind(client: TestClient, database_url: str) -> None:
    before = count_transactions(database_url)
    response = batch(
        client,
        item("topup", "newbie", 5),
        item("purchase", "user_001", 1),
        item("purchase", "newbie", 10),
    )
    _assert_failed(response, 2, "insufficient_funds")
    assert response.json()["errors"][0]["detail"] == "newbie has 5.00 GC, 10.00 needed"
    assert count_transactions(database_url) == before
    assert balance(client, "user_001") == "1000.00"
    # Not even an empty account: the user was never credited.
    assert client.get("/balance/newbie").json()["code"] == "user_not_found"
    assert_invariants(database_url)


def test_every_ledger_refusal_names_its_item(client: TestClient, database_url: str) -> None:
    bought = purchase(client, "user_001", 10)
    refund = {"transaction_type": "refund", "refund_of": bought["id"]}
    _assert_failed(batch(client, refund, refund), 1, "refund_exceeds_original")
    _assert_failed(batch(client, item("purchase", "ghost", 1)), 0, "user_not_found")
    response = batch(client, refund, {"transaction_type": "refund", "refund_of": "nope"})
    _assert_failed(response, 1, "transaction_not_found")
    first_refund = batch(client, refund).json()["transactions"][0]
    refund_of_refund = {"transaction_type": "refund", "refund_of": first_refund["id"]}
    _assert_failed(batch(client, refund_of_refund), 0, "not_refundable")
    assert_invariants(database_url)


def test_malformed_batches_are_validation_errors(client: TestClient, database_url: str) -> None:
    before = count_transactions(database_url)
    response = batch(client, item("topup", "a", 1), item("topup", "a", "1.001"))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["loc"] == ["body", "transactions", 1, "amount"]
    response = batch(client, item("topup", "a", 1, "XX"))
    assert response.json()["errors"][0]["loc"] == ["body", "transactions", 0, "asset_code"]
    response = batch(client, item("topup", "a", 1, idempotency_key="k"))
    assert response.json()["code"] == "validation_error"
    assert batch(client).json()["code"] == "validation_error"
    too_many = [item("topup", "a", 1)] * 101
    assert batch(client, *too_many).json()["code"] == "validation_error"
    assert batch(client, *too_many[:100]).status_code == 201
    assert count_transactions(database_url) == before + 100


def test_a_batch_is_idempotent_as_a_whole(client: TestClient, database_url: str) -> None:
    items = [item("topup", "alice", 5), item("purchase", "alice", 2)]
    first = batch(client, *items, idempotency_key="batch-1")
    replay = client.post(
        "/transaction/batch",
        json={"transactions": items},
        headers={"Idempotency-Key": "batch-1"},
    )
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert balance(client, "alice") == "3.00"
    reused = batch(client, items[0], idempotency_key="batch-1")
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"

    # A refusal is decided once: the same 422 comes back after the balance has grown.
    failing = [item("purchase", "alice", 10)]
    refused = batch(client, *failing, idempotency_key="batch-2")
    _assert_failed(refused, 0, "insufficient_funds")
    topup(client, "alice", 100)
    again = batch(client, *failing, idempotency_key="batch-2")
    assert again.json() == refused.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance(client, "alice") == "103.00"
    assert_invariants(database_url)


def test_a_failing_batch_spoils_no_neighbour_in_its_commit(settings: Settings) -> None:
    service = WalletService(settings)
    service.start()
    try:

        async def together() -> list[Any]:
            good = [TransactionInput("topup", f"p{n}", "GC", Decimal(1)) for n in range(20)]
            doomed = [
                TransactionInput("topup", "q", "GC", Decimal(1)),
                TransactionInput("purchase", "q", "GC", Decimal(2)),
            ]
            fine = [
                TransactionInput("topup", "r", "GC", Decimal(3)),
                TransactionInput("purchase", "r", "GC", Decimal(2)),
            ]
            return await asyncio.gather(
                *(service.transactions.post(g) for g in good[:10]),
                service.transactions.post_batch(doomed, None),
                service.transactions.post_batch(fine, None),
                *(service.transactions.post(g) for g in good[10:]),
            )

        outcomes = asyncio.run(together())
        assert [o.error is None for o in outcomes] == [True] * 10 + [False, True] + [True] * 10
        failed = outcomes[10].error
        assert failed is not None
        assert failed.code == "batch_failed"
        assert service.balances.get("r", "GC")["balance"] == "1.00"
        assert all(service.balances.get(f"p{n}", "GC")["balance"] == "1.00" for n in range(20))
    finally:
        service.stop()
    assert_invariants(settings.database_url)
