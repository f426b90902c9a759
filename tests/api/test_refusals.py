"""What a careful payments API refuses, each as one 422 validation_error that names what is wrong
(never a 500, never a silent acceptance): an instant out of range, a JSON member sent twice, an
amount outside the decimal grammar, a number too long to convert. And a 405 names the methods its
path takes.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from tests.support.factories import (
    SEED_BALANCES,
    balance,
    post_raw,
    problem,
    validation_locations,
)
from wallet.api.jsonbody import loads_exact
from wallet.api.models import AssetCreate, BatchCreate, HoldCapture, HoldCreate, TransactionCreate
from wallet.limits import AMOUNT_LENGTH_MAX, REQUEST_BODY_BYTES_MAX

JSON = "application/json"


def _post(client: TestClient, path: str, raw: bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"content-type": JSON})


def _messages(response: httpx.Response) -> str:
    return " ".join(error["msg"] for error in problem(response, 422, "validation_error")["errors"])


def _hold(client: TestClient, amount: str = "10.00") -> str:
    response = client.post(
        "/holds", json={"user_id": "user_001", "asset_code": "GC", "amount": amount}
    )
    assert response.status_code == 201, response.text
    hold_id: str = response.json()["id"]
    return hold_id


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


# --- A member twice -----------------------------------------------------------------------------

DUPLICATED_MEMBERS = {
    "transaction (the hot route)": (
        "/transaction",
        b'{"transaction_type":"topup","user_id":"twice","asset_code":"GC",'
        b'"amount":"1.00","amount":"900.00"}',
        "amount",
    ),
    "batch item": (
        "/transaction/batch",
        b'{"transactions":[{"transaction_type":"topup","user_id":"twice","asset_code":"GC",'
        b'"amount":"1.00","user_id":"user_001"}]}',
        "user_id",
    ),
    "batch": (
        "/transaction/batch",
        b'{"transactions":[{"transaction_type":"topup","user_id":"twice","asset_code":"GC",'
        b'"amount":"1.00"}],"idempotency_key":"a","idempotency_key":"b"}',
        "idempotency_key",
    ),
    "hold": (
        "/holds",
        b'{"user_id":"twice","asset_code":"GC","amount":"1.00","user_id":"user_001"}',
        "user_id",
    ),
    "new asset": (
        "/admin/assets",
        b'{"code":"GEM","name":"Gems","scale":0,"supply":"1000","supply":"5"}',
        "supply",
    ),
}


@pytest.mark.parametrize("case", DUPLICATED_MEMBERS, ids=list(DUPLICATED_MEMBERS))
def test_a_member_sent_twice_is_a_validation_error_naming_it(client: TestClient, case: str) -> None:
    path, raw, member = DUPLICATED_MEMBERS[case]

    response = _post(client, path, raw)

    assert validation_locations(response)[0][0] == "body"
    assert f"'{member}'" in _messages(response)
    problem(client.get("/balance/twice"), 404, "user_not_found")
    assert balance(client, "user_001") == SEED_BALANCES["user_001"]["GC"]
    assert client.get("/holds", params={"user_id": "user_001"}).json()["items"] == []
    assert "GEM" not in [asset["code"] for asset in client.get("/assets").json()]


def test_a_capture_with_a_member_twice_is_refused_and_the_hold_stays_pending(
    client: TestClient,
) -> None:
    hold_id = _hold(client)

    response = _post(client, f"/holds/{hold_id}/capture", b'{"amount":"1.00","amount":"10.00"}')

    assert "'amount'" in _messages(response)
    assert client.get(f"/holds/{hold_id}").json()["status"] == "pending"


def test_a_member_twice_at_any_depth_is_refused_and_once_per_object_is_not(
    client: TestClient,
) -> None:
    item = b'{"transaction_type":"topup","user_id":"twice","asset_code":"GC","amount":"1.00"'
    deep = b'{"transactions":[' + item + b"}," + item + b',"description":"x","description":"y"}]}'
    once = b'{"transactions":[' + item + b"}," + item + b"}]}"

    assert "'description'" in _messages(_post(client, "/transaction/batch", deep))
    problem(client.get("/balance/twice"), 404, "user_not_found")

    assert _post(client, "/transaction/batch", once).status_code == 201
    assert balance(client, "twice") == "2.00"


NOT_OBJECTS = [b"3.338056479714416e-60", b"0.0", b"5", b"[]", b'"{}"', b"true"]


@pytest.mark.parametrize("raw", NOT_OBJECTS, ids=[raw.decode() for raw in NOT_OBJECTS])
@pytest.mark.parametrize("action", ["capture", "release"])
def test_a_body_that_is_not_an_object_is_refused_and_the_hold_stays_pending(
    client: TestClient, action: str, raw: bytes
) -> None:
    # Every field of a capture or a release is optional; a number with a fraction (a Decimal to
    # the model) was once read as an empty object, and captured the whole hold.
    hold_id = _hold(client)

    response = _post(client, f"/holds/{hold_id}/{action}", raw)

    assert validation_locations(response) == [["body"]]
    assert "JSON object" in _messages(response)
    assert client.get(f"/holds/{hold_id}").json()["status"] == "pending"


@pytest.mark.parametrize("path", ["/transaction", "/transaction/batch", "/holds", "/admin/assets"])
def test_every_body_must_be_an_object(client: TestClient, path: str) -> None:
    for raw in NOT_OBJECTS:
        response = _post(client, path, raw)

        assert validation_locations(response) == [["body"]], raw
        assert "JSON object" in _messages(response)


# --- The amount grammar (API.md, "Money") -------------------------------------------------------

REFUSED_AMOUNT_STRINGS = [" 5", "5 ", "\n1.00\t", "1e3", "1,000", "+5", ".5", "5.", "1.000"]


@pytest.mark.parametrize("amount", REFUSED_AMOUNT_STRINGS)
def test_an_amount_string_outside_the_grammar_is_refused_everywhere(
    client: TestClient, amount: str
) -> None:
    hold_id = _hold(client)
    sent = {
        "/transaction": {
            "transaction_type": "topup",
            "user_id": "grammar",
            "asset_code": "GC",
            "amount": amount,
        },
        "/holds": {"user_id": "user_001", "asset_code": "GC", "amount": amount},
        f"/holds/{hold_id}/capture": {"amount": amount},
        "/admin/assets": {"code": "GEM", "name": "Gems", "scale": 2, "supply": amount},
    }
    for path, body in sent.items():
        response = client.post(path, json=body)
        field = "supply" if path == "/admin/assets" else "amount"
        assert ["body", field] in validation_locations(response), (path, response.text)

    problem(client.get("/balance/grammar"), 404, "user_not_found")
    assert client.get(f"/holds/{hold_id}").json()["status"] == "pending"


def test_decimals_count_as_written_and_a_replay_compares_minor_units(client: TestClient) -> None:
    """A JSON number 1.000 has three decimals; 100 and "100.00" are still one payload."""
    sent = {"transaction_type": "topup", "user_id": "same", "asset_code": "GC"}
    raw = b'{"transaction_type":"topup","user_id":"same","asset_code":"GC","amount":1.000}'

    assert ["body", "amount"] in validation_locations(post_raw(client, raw, JSON))
    problem(client.get("/balance/same"), 404, "user_not_found")

    first = client.post("/transaction", json={**sent, "amount": 100, "idempotency_key": "k"})
    again = client.post("/transaction", json={**sent, "amount": "100.00", "idempotency_key": "k"})
    other = client.post("/transaction", json={**sent, "amount": "100.01", "idempotency_key": "k"})

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    problem(other, 422, "idempotency_key_reused")
    assert balance(client, "same") == "100.00"


# --- Numbers too long to convert ----------------------------------------------------------------


def _longest_number(prefix: bytes, suffix: bytes, first: bytes, fill: bytes) -> bytes:
    """The body with the longest number that fits in REQUEST_BODY_BYTES_MAX."""
    room = REQUEST_BODY_BYTES_MAX - len(prefix) - len(suffix) - len(first)
    return prefix + first + fill * room + suffix


TRANSACTION_PREFIX = b'{"transaction_type":"topup","user_id":"long","asset_code":"GC","amount":'
# (body before the number, after it, the model that reads it, where the refusal points)
LONG_NUMBER_BODIES: dict[str, tuple[bytes, bytes, type[BaseModel], list[str | int]]] = {
    "transaction": (TRANSACTION_PREFIX, b"}", TransactionCreate, ["amount"]),
    "batch item": (
        b'{"transactions":[' + TRANSACTION_PREFIX[:-1] + b":",
        b"}]}",
        BatchCreate,
        ["transactions", 0, "amount"],
    ),
    "hold": (b'{"user_id":"long","asset_code":"GC","amount":', b"}", HoldCreate, ["amount"]),
    "capture": (b'{"amount":', b"}", HoldCapture, ["amount"]),
    "new asset": (
        b'{"code":"GEM","name":"Gems","scale":2,"supply":',
        b"}",
        AssetCreate,
        ["supply"],
    ),
}
# A fraction (1.000…0, a Decimal) and an integer (999…9).
LONG_NUMBER_FORMS = {"fraction": (b"1.", b"0"), "integer": (b"9", b"9")}


@pytest.mark.parametrize("form", LONG_NUMBER_FORMS)
@pytest.mark.parametrize("case", LONG_NUMBER_BODIES)
def test_a_64_kib_number_is_refused_by_the_model_without_being_converted(
    case: str, form: str
) -> None:
    prefix, suffix, model, location = LONG_NUMBER_BODIES[case]
    raw = _longest_number(prefix, suffix, *LONG_NUMBER_FORMS[form])
    assert len(raw) == REQUEST_BODY_BYTES_MAX

    started = time.process_time()
    with pytest.raises(ValidationError) as refused:
        model.model_validate(loads_exact(raw))
    spent_s = time.process_time() - started

    print(f"{case}, {form}: refused in {spent_s * 1000:.2f} ms of CPU")
    errors = refused.value.errors()
    assert [error["loc"] for error in errors] == [tuple(location)], errors
    assert f"at most {AMOUNT_LENGTH_MAX} characters" in errors[0]["msg"]
    assert spent_s < 0.05, "the bound is a few microseconds; 50 ms cannot be reached by chance"


def test_a_64_kib_amount_is_a_validation_error_on_every_route(client: TestClient) -> None:
    hold_id = _hold(client)
    paths = {
        "transaction": "/transaction",
        "batch item": "/transaction/batch",
        "hold": "/holds",
        "capture": f"/holds/{hold_id}/capture",
        "new asset": "/admin/assets",
    }
    for case, path in paths.items():
        prefix, suffix, _, location = LONG_NUMBER_BODIES[case]
        for first, fill in LONG_NUMBER_FORMS.values():
            response = _post(client, path, _longest_number(prefix, suffix, first, fill))
            assert validation_locations(response) == [["body", *location]], (case, first)
            assert f"at most {AMOUNT_LENGTH_MAX} characters" in _messages(response)

    problem(client.get("/balance/long"), 404, "user_not_found")
    assert client.get(f"/holds/{hold_id}").json()["status"] == "pending"
    assert "GEM" not in [asset["code"] for asset in client.get("/assets").json()]


def test_a_number_of_the_longest_length_is_read(client: TestClient) -> None:
    amount = b"1." + b"0" * (AMOUNT_LENGTH_MAX - 2)
    raw = TRANSACTION_PREFIX + amount + b"}"
    data: dict[str, Any] = loads_exact(raw)

    assert TransactionCreate.model_validate(data).amount == 1
    # Forty characters of which 38 decimals: more than the scale, refused as such.
    response = post_raw(client, raw, JSON)
    assert "decimal places" in _messages(response)


# --- 405 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/holds", "GET, POST"),
        ("PUT", "/transaction", "POST"),
        ("GET", "/transaction", "POST"),
        ("PUT", "/balance/user_001/GC", "GET"),
        # Not GET: /transaction/{transaction_id} matches too, but the literal template wins.
        ("DELETE", "/transaction/batch", "POST"),
        ("GET", "/holds/some-hold/capture", "POST"),
        ("PATCH", "/admin/assets", "POST"),
        ("POST", "/health", "GET"),
        ("DELETE", "/console/", "GET, HEAD"),
        ("DELETE", "/docs", "GET"),
    ],
)
def test_a_405_lists_the_methods_its_path_takes(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)

    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed
