"""/metrics: the Prometheus exposition counts requests, transactions, refusals, replays, units of
work, batches, the write queue and holds.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

TOPUP = {"transaction_type": "topup", "user_id": "user_001", "asset_code": "GC", "amount": "5.00"}
TOO_MUCH = {**TOPUP, "transaction_type": "purchase", "amount": "999999.00"}
HOLD = {"user_id": "user_001", "asset_code": "DI", "amount": "1.00"}


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_what_the_service_did(client: TestClient) -> None:
    assert (
        client.post("/transaction", json=TOPUP, headers={"Idempotency-Key": "m-1"}).status_code
        == 201
    )
    replay = client.post("/transaction", json=TOPUP, headers={"Idempotency-Key": "m-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert client.post("/transaction", json=TOO_MUCH).status_code == 422
    assert client.post("/transaction", json={"amount": 1}).status_code == 422
    assert client.post("/holds", json=HOLD).status_code == 201
    assert client.get("/balance/user_001/GC").status_code == 200
    assert client.get("/no/such/path").status_code == 404

    samples = _samples(client)

    assert (
        _value(samples, "wallet_transactions_total", transaction_type="topup", asset_code="GC") == 1
    )
    assert (
        _value(samples, "wallet_transactions_total", transaction_type="hold", asset_code="DI") == 1
    )
    assert _value(samples, "wallet_idempotent_replays_total") == 1
    assert _value(samples, "wallet_refusals_total", code="insufficient_funds") == 1
    assert _value(samples, "wallet_refusals_total", code="validation_error") == 1
    route = "/balance/{user_id}/{asset_code}"
    assert (
        _value(samples, "wallet_http_requests_total", method="GET", route=route, status="200") == 1
    )
    assert (
        _value(
            samples, "wallet_http_requests_total", method="POST", route="/transaction", status="201"
        )
        == 2
    )
    assert (
        _value(samples, "wallet_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    assert (
        _value(
            samples,
            "wallet_http_request_duration_seconds_count",
            method="POST",
            route="/transaction",
        )
        == 4
    )
    assert _value(samples, "wallet_db_unit_of_work_seconds_count") >= 3
    assert _value(samples, "wallet_write_batch_size_count") >= 3
    assert ("wallet_write_queue_depth", frozenset()) in samples
    assert _value(samples, "wallet_holds_pending", asset_code="DI") == 1
    assert ("wallet_holds_expired_total", frozenset()) in samples
    assert not any("user_001" in str(labels) for _, labels in samples)
