from fastapi.testclient import TestClient


def test_topup_then_purchase_moves_funds_and_balances_follow(client: TestClient) -> None:
    response = client.post(
        "/transaction",
        json={"transaction_type": "topup", "user_id": "alice", "asset_code": "GC", "amount": 100},
    )
    assert response.status_code == 201, response.text
    assert response.json()["balance_after"] == "100.00"
    response = client.post(
        "/transaction",
        json={
            "transaction_type": "purchase",
            "user_id": "alice",
            "asset_code": "GC",
            "amount": "25.50",
        },
    )
    assert response.status_code == 201, response.text
    assert client.get("/balance/alice/GC").json()["balance"] == "74.50"
