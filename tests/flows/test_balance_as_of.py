"""Balance at a past instant: the entries' running balances, correct at the edges."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from .factories import purchase, topup


def _parse(created_at: str) -> datetime:
    return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _as_of(client: TestClient, user_id: str, moment: datetime, asset: str = "GC") -> str:
    response = client.get(
        f"/balance/{user_id}/{asset}", params={"as_of": moment.isoformat().replace("+00:00", "Z")}
    )
    assert response.status_code == 200, response.text
    assert response.json()["as_of"] == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    value: str = response.json()["balance"]
    return value


def test_balance_follows_the_entries_at_every_edge(client: TestClient) -> None:
    first = _parse(topup(client, "alice", 100)["created_at"])
    second = _parse(purchase(client, "alice", "30.25")["created_at"])
    tick = timedelta(microseconds=1)
    assert _as_of(client, "alice", first - tick) == "0.00"
    assert _as_of(client, "alice", first) == "100.00"
    assert _as_of(client, "alice", second - tick) == "100.00"
    assert _as_of(client, "alice", second) == "69.75"
    assert _as_of(client, "alice", second + timedelta(days=365)) == "69.75"
    # An account the user never had in an asset is 0 at any instant.
    assert _as_of(client, "alice", second, "DI") == "0.00"


def test_time_zones_name_the_same_instant(client: TestClient) -> None:
    created = _parse(topup(client, "bob", 5)["created_at"])
    in_paris = (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f+01:00")
    response = client.get("/balance/bob/GC", params={"as_of": in_paris})
    assert response.json()["balance"] == "5.00"
    shifted = (created - timedelta(hours=5, microseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%f-05:00")
    assert client.get("/balance/bob/GC", params={"as_of": shifted}).json()["balance"] == "0.00"


def test_without_as_of_the_balance_is_now_and_carries_no_instant(client: TestClient) -> None:
    topup(client, "carol", 7)
    body = client.get("/balance/carol/GC").json()
    assert body == {
        "user_id": "carol",
        "asset_code": "GC",
        "balance": "7.00",
        "held": "0.00",
        "frozen": False,
        "expiring": [],
    }


def test_errors(client: TestClient) -> None:
    response = client.get("/balance/nobody/GC", params={"as_of": "2026-01-01T00:00:00Z"})
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"
    response = client.get("/balance/user_001/XX", params={"as_of": "2026-01-01T00:00:00Z"})
    assert response.status_code == 404
    assert response.json()["code"] == "asset_not_found"
    response = client.get("/balance/user_001/GC", params={"as_of": "yesterday"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
