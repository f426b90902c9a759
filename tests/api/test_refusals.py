"""What a careful payments API refuses, each as one 422 validation_error that names what is wrong
(never a 500, never a silent acceptance): an instant out of range, a JSON member sent twice, an
amount outside the decimal grammar, a number too long to convert. And a 405 names the methods its
path takes.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import SEED_BALANCES, problem, validation_locations

# --- Instants -----------------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_an_instant_outside_the_years_1_to_9999_is_a_validation_error(
    client: TestClient, as_of: str
) -> None:
    """Valid RFC 3339, but the offset takes it to the year 10000 or 0 in UTC."""
    response = client.get("/balance/user_001/GC", params={"as_of": as_of})

    assert validation_locations(response) == [["query", "as_of"]]
    assert "years 1 to 9999" in response.json()["detail"]
    assert client.get("/balance/user_001/GC").status_code == 200, "the connection goes on"


def test_the_first_and_last_instants_are_answered_in_rfc_3339(client: TestClient) -> None:
    first = client.get("/balance/user_001/GC", params={"as_of": "0001-01-01T00:00:00Z"})
    last = client.get("/balance/user_001/GC", params={"as_of": "9999-12-31T23:59:59.999999Z"})

    assert first.status_code == 200, first.text
    assert first.json()["as_of"] == "0001-01-01T00:00:00.000000Z"
    assert first.json()["balance"] == "0.00"
    assert last.status_code == 200, last.text
    assert last.json()["as_of"] == "9999-12-31T23:59:59.999999Z"
    assert last.json()["balance"] == SEED_BALANCES["user_001"]["GC"]


# --- 405 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/holds", "GET, POST"),
        ("PUT", "/transaction", "POST"),
        ("GET", "/transaction", "POST"),
        ("PUT", "/balance/user_001/GC", "GET"),
        ("DELETE", "/transaction/batch", "GET, POST"),  # GET: a transaction whose id is batch
        ("GET", "/holds/some-hold/capture", "POST"),
        ("PATCH", "/admin/assets", "POST"),
        ("POST", "/health", "GET"),
        ("DELETE", "/console/", "GET, HEAD"),
    ],
)
def test_a_405_lists_the_methods_its_path_takes(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)

    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed
