"""Admin endpoints: an asset's supply adds up, adding an asset (409 when it exists), verify."""

from __future__ import annotations

from fastapi.testclient import TestClient

GEM = {"code": "GEM", "name": "Gems", "scale": 0, "supply": "1000000"}


def test_supply_adds_up_with_users_and_pending_holds(client: TestClient) -> None:
    hold = {"user_id": "user_001", "asset_code": "GC", "amount": "5.00"}
    assert client.post("/holds", json=hold).status_code == 201

    supply = client.get("/admin/assets/GC/supply").json()

    assert supply == {
        "asset_code": "GC",
        "supply": "1000000000000.00",
        "treasury": "999999998500.00",
        "users": "1495.00",
        "pending_holds": "5.00",
        "expired": "0.00",
        "adds_up": True,
    }
    assert client.get("/admin/assets/XX/supply").json()["code"] == "asset_not_found"


def test_an_asset_is_added_with_its_supply_once(client: TestClient) -> None:
    created = client.post("/admin/assets", json=GEM)
    again = client.post("/admin/assets", json=GEM)

    assert created.status_code == 201, created.text
    assert created.json() == {"code": "GEM", "name": "Gems", "scale": 0, "expires_after_days": None}
    assert again.status_code == 409
    assert again.json()["code"] == "asset_exists"
    assert "GEM" in [a["code"] for a in client.get("/assets").json()]
    supply = client.get("/admin/assets/GEM/supply").json()
    assert (supply["treasury"], supply["users"], supply["adds_up"]) == ("1000000", "0", True)
    topup = {"transaction_type": "topup", "user_id": "user_001", "asset_code": "GEM", "amount": 3}
    assert client.post("/transaction", json=topup).status_code == 201
    assert client.get("/admin/verify").json() == {
        "ok": True,
        "accounts_checked": 15,
        "transactions_checked": 11,
        "problems": [],
    }


def test_a_malformed_asset_is_refused(client: TestClient) -> None:
    for bad in (
        {**GEM, "code": "gem"},
        {**GEM, "code": "G"},
        {**GEM, "scale": 9},
        {**GEM, "supply": "0"},
        {**GEM, "supply": "1.5"},
        {**GEM, "supply": "1e30"},
        {**GEM, "extra": 1},
    ):
        response = client.post("/admin/assets", json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["code"] == "validation_error"
    assert "GEM" not in [a["code"] for a in client.get("/assets").json()]
