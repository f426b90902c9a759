"""GET /admin/assets/{code}/activity on both backends: sums to the cent per UTC day and type,
days with nothing, the window's bounds, the admin scope, and malformed requests.

Transactions are posted on chosen days by moving the service's clock forward (never back, so
every entry is newer than the seed's), and the report is read at a chosen "now".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.clock import ManualClock
from tests.support.factories import problem, purchase, topup
from wallet.api import create_app
from wallet.config import Settings
from wallet.service.keys import create_api_key
from wallet.service.wallet import WalletService
from wallet.storage import open_database

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
TYPES = ["topup", "bonus", "purchase", "refund", "hold", "capture", "release", "expiry"]


class Clock:
    """Whole UTC days after today's, on the service's clock."""

    def __init__(self) -> None:
        self.manual = ManualClock()
        self.tomorrow = (self.manual.now_us() // DAY_US + 1) * DAY_US

    def day(self, offset: int) -> str:
        return (
            date(1970, 1, 1) + timedelta(microseconds=self.tomorrow + offset * DAY_US)
        ).isoformat()

    def write_on(self, offset: int, hour: int = 1) -> None:
        self.manual.set(self.tomorrow + offset * DAY_US + hour * HOUR_US)

    def report_on(self, offset: int) -> None:
        self.manual.set(self.tomorrow + offset * DAY_US + 12 * HOUR_US)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    """The service on the test's clock."""
    service = WalletService(settings, clock=clock.manual)
    with TestClient(create_app(settings, service), raise_server_exceptions=False) as test_client:
        yield test_client


def _activity(client: TestClient, asset: str = "GC", **params: object) -> dict[str, Any]:
    response = client.get(f"/admin/assets/{asset}/activity", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _totals(report: dict[str, Any], day: str) -> dict[str, tuple[int, str]]:
    (found,) = [d for d in report["daily"] if d["date"] == day]
    return {kind: (t["count"], t["amount"]) for kind, t in found["activity"].items()}


def test_sums_and_counts_per_day_and_type_to_the_cent(client: TestClient, clock: Clock) -> None:
    clock.write_on(0)
    topup(client, "user_001", "0.10")
    topup(client, "user_002", "0.20")
    client.post(
        "/transaction",
        json={"transaction_type": "bonus", "user_id": "user_001", "asset_code": "GC", "amount": 5},
    )
    topup(client, "user_001", "7.00", asset="DI")
    clock.write_on(2)
    bought = purchase(client, "user_001", "3.33")
    purchase(client, "user_002", "1.01")
    refund = client.post(
        "/transaction",
        json={"transaction_type": "refund", "refund_of": bought["id"], "amount": 0.5},
    )
    assert refund.status_code == 201, refund.text
    hold = client.post("/holds", json={"user_id": "user_001", "asset_code": "GC", "amount": "2.00"})
    assert hold.status_code == 201, hold.text
    assert client.post(f"/holds/{hold.json()['id']}/capture", json={"amount": "1.25"}).is_success

    clock.report_on(3)
    report = _activity(client, days=4)

    assert report["asset_code"] == "GC"
    assert report["days"] == 4
    assert (report["from"], report["to"]) == (clock.day(0), clock.day(3))
    assert report["transaction_types"] == TYPES
    assert [d["date"] for d in report["daily"]] == [clock.day(i) for i in range(4)]
    nothing = dict.fromkeys(TYPES, (0, "0.00"))
    assert _totals(report, clock.day(0)) == {
        **nothing,
        "topup": (2, "0.30"),
        "bonus": (1, "5.00"),
    }
    assert _totals(report, clock.day(1)) == nothing
    assert _totals(report, clock.day(2)) == {
        **nothing,
        "purchase": (2, "4.34"),
        "refund": (1, "0.50"),
        "hold": (1, "2.00"),
        "capture": (1, "1.25"),
        "release": (1, "0.75"),
    }
    assert _totals(report, clock.day(3)) == nothing
    assert _totals(_activity(client, "DI", days=4), clock.day(0))["topup"] == (1, "7.00")


def test_the_window_is_the_last_days_today_included(client: TestClient, clock: Clock) -> None:
    clock.write_on(0)
    topup(client, "user_001", "1.00")
    clock.report_on(0)
    assert [d["date"] for d in _activity(client, days=1)["daily"]] == [clock.day(0)]
    assert len(_activity(client)["daily"]) == 30
    assert len(_activity(client, days=90)["daily"]) == 90
    clock.report_on(1)
    (only,) = _activity(client, days=1)["daily"]
    assert only["date"] == clock.day(1)
    assert only["activity"]["topup"] == {"count": 0, "amount": "0.00"}


@pytest.mark.parametrize("days", ["0", "91", "-1", "x", "1.5", ""])
def test_days_outside_1_to_90_is_a_validation_error(client: TestClient, days: str) -> None:
    response = client.get("/admin/assets/GC/activity", params={"days": days})
    problem(response, 422, "validation_error")


def test_an_unknown_or_malformed_asset(client: TestClient) -> None:
    problem(client.get("/admin/assets/ZZ/activity"), 404, "asset_not_found")
    problem(client.get("/admin/assets/gc/activity"), 422, "validation_error")


@pytest.fixture
def keyed(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    database = open_database(settings)
    try:
        keys = {
            scope: create_api_key(database, f"activity-{scope}", [scope])[1]
            for scope in ("read", "write", "admin")
        }
    finally:
        database.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client, keys


def test_the_admin_scope_is_required(keyed: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = keyed
    path = "/admin/assets/GC/activity"
    problem(client.get(path), 401, "unauthorized")
    for scope in ("read", "write"):
        headers = {"Authorization": f"Bearer {keys[scope]}"}
        problem(client.get(path, headers=headers), 403, "forbidden")
    response = client.get(path, headers={"Authorization": f"Bearer {keys['admin']}"})
    assert response.status_code == 200, response.text


def test_openapi_documents_the_report_and_its_errors(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/admin/assets/{asset_code}/activity"]
    get = operation["get"]
    assert get["x-required-scope"] == "admin"
    days = next(p for p in get["parameters"] if p["name"] == "days")
    assert (days["schema"]["minimum"], days["schema"]["maximum"]) == (1, 90)
    for status, code in (("404", "asset_not_found"), ("422", "validation_error")):
        examples = get["responses"][status]["content"]["application/problem+json"]["examples"]
        assert code in examples
    ok = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ActivityRead"}
