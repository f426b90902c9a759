"""POST /transaction: the seed README's requests, the Transaction shape, every way a body can be
wrong, and the ledger's refusals, each leaving nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factories import (
    SEED_BALANCES,
    balance,
    body,
    check_transaction,
    entries_by_account,
    history_ids,
    post,
    post_raw,
    problem,
    purchase,
    topup,
    validation_locations,
)
from wallet.limits import REQUEST_BODY_BYTES_MAX

# The three request bodies of the seed README, byte for byte (its trailing spaces included).
README_TOPUP = """{
  "transaction_type": "topup",
  "user_id": "user_001",
  "asset_code": "GC",
  "amount": 100.00,
  "description": "Purchased 100 Gold Coins"
}"""
README_BONUS = """{
  "transaction_type": "bonus",
  "user_id": "user_001", 
  "asset_code": "LP",
  "amount": 50.00,
  "description": "Referral bonus"
}"""  # noqa: W291 - the README's trailing space, kept
README_PURCHASE = """{
  "transaction_type": "purchase",
  "user_id": "user_001",
  "asset_code": "GC", 
  "amount": 25.00,
  "description": "Bought in-game item"
}"""  # noqa: W291 - the README's trailing space, kept


README_REQUESTS = [
    (README_TOPUP, "GC", "100.00", "1000.00", "1100.00"),
    (README_BONUS, "LP", "50.00", "200.00", "250.00"),
    (README_PURCHASE, "GC", "25.00", "1100.00", "1075.00"),
]


def test_readme_requests_are_created_with_the_documented_shape(client: TestClient) -> None:
    for raw, asset, amount, balance_before, balance_after in README_REQUESTS:
        sent = json.loads(raw)
        response = post_raw(client, raw, "application/json")

        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/json")
        created = response.json()
        check_transaction(
            created,
            transaction_type=sent["transaction_type"],
            user_id="user_001",
            asset=asset,
            amount=amount,
            balance_after=balance_after,
        )
        assert created["description"] == sent["description"]
        assert created["idempotency_key"] is None
        user_entry = entries_by_account(created)[("user", "user_001")]
        assert user_entry["balance_before"] == balance_before
        assert balance(client, "user_001", asset) == balance_after
        assert client.get(f"/transaction/{created['id']}").json() == created
    assert balance(client, "user_001", "DI") == SEED_BALANCES["user_001"]["DI"], "untouched"


def test_consecutive_transactions_chain_balances(client: TestClient) -> None:
    first = topup(client, "chain", "10.00")
    second = purchase(client, "chain", "3.50")
    third = topup(client, "chain", "0.25")

    user_entries = [entries_by_account(t)[("user", "chain")] for t in (first, second, third)]
    assert [(e["balance_before"], e["amount"], e["balance_after"]) for e in user_entries] == [
        ("0.00", "10.00", "10.00"),
        ("10.00", "-3.50", "6.50"),
        ("6.50", "0.25", "6.75"),
    ]
    treasury_entries = [entries_by_account(t)[("system", "treasury")] for t in (first, second)]
    assert treasury_entries[1]["balance_before"] == treasury_entries[0]["balance_after"]
    assert [t["balance_after"] for t in (first, second, third)] == ["10.00", "6.50", "6.75"]
    assert balance(client, "chain") == "6.75"


EXACT_AMOUNTS = [
    (100, "100.00"),
    (100.5, "100.50"),
    ("100.50", "100.50"),
    # Binary floats would turn these into 28.999… or 114.999… minor units.
    (0.29, "0.29"),
    (1.15, "1.15"),
    ("0.01", "0.01"),
]


def test_amounts_parse_exactly(client: TestClient) -> None:
    for index, (amount, expected) in enumerate(EXACT_AMOUNTS):
        user_id = f"exact{index}"
        assert topup(client, user_id, amount)["amount"] == expected, amount
        assert balance(client, user_id) == expected, amount


def test_amount_of_exactly_one_billion_is_accepted_both_ways(client: TestClient) -> None:
    check_transaction(
        topup(client, "whale", 1_000_000_000),
        transaction_type="topup",
        user_id="whale",
        asset="GC",
        amount="1000000000.00",
        balance_after="1000000000.00",
    )
    spent = purchase(client, "whale", "1000000000")

    assert spent["amount"] == "1000000000.00"
    assert spent["balance_after"] == "0.00"
    assert balance(client, "whale") == "0.00"


def _user_001_body(**changes: object) -> dict[str, object]:
    return {**body("topup", "user_001", "1.00"), **changes}


BAD_BODIES = {
    "unknown field": (_user_001_body(amout="1.00"), ["body", "amout"]),
    "missing amount": (
        {"transaction_type": "topup", "user_id": "user_001", "asset_code": "GC"},
        ["body", "amount"],
    ),
    "amount 0": (_user_001_body(amount=0), ["body", "amount"]),
    "amount '0.00'": (_user_001_body(amount="0.00"), ["body", "amount"]),
    "negative amount": (_user_001_body(amount=-5), ["body", "amount"]),
    "negative amount string": (_user_001_body(amount="-5.00"), ["body", "amount"]),
    "amount 1e30": (_user_001_body(amount=1e30), ["body", "amount"]),
    "amount over a billion": (_user_001_body(amount="1000000000.01"), ["body", "amount"]),
    "amount over a billion, number": (_user_001_body(amount=1000000000.01), ["body", "amount"]),
    "more decimals than the scale": (_user_001_body(amount="1.234"), ["body", "amount"]),
    "more decimals than the scale, number": (_user_001_body(amount=1.234), ["body", "amount"]),
    "amount not a number": (_user_001_body(amount="abc"), ["body", "amount"]),
    "amount in exponent notation string": (_user_001_body(amount="1e2"), ["body", "amount"]),
    "amount true": (_user_001_body(amount=True), ["body", "amount"]),
    "amount null": (_user_001_body(amount=None), ["body", "amount"]),
    "amount a list": (_user_001_body(amount=[1]), ["body", "amount"]),
    "amount with 400 digits": (_user_001_body(amount=10**400), ["body", "amount"]),
    "user_id with a space": (_user_001_body(user_id="user 001"), ["body", "user_id"]),
    "user_id with a slash": (_user_001_body(user_id="user/001"), ["body", "user_id"]),
    "user_id not ASCII": (_user_001_body(user_id="usér"), ["body", "user_id"]),
    "empty user_id": (_user_001_body(user_id=""), ["body", "user_id"]),
    "user_id of 129 characters": (_user_001_body(user_id="u" * 129), ["body", "user_id"]),
    "description of 501 characters": (
        _user_001_body(description="d" * 501),
        ["body", "description"],
    ),
    "description with a NUL": (_user_001_body(description="a\x00b"), ["body", "description"]),
    "unknown asset": (_user_001_body(asset_code="XX"), ["body", "asset_code"]),
    "lower-case asset": (_user_001_body(asset_code="gc"), ["body", "asset_code"]),
    "unknown transaction_type": (
        _user_001_body(transaction_type="transfer"),
        ["body", "transaction_type"],
    ),
    "upper-case transaction_type": (
        _user_001_body(transaction_type="TOPUP"),
        ["body", "transaction_type"],
    ),
    "body is a list": ([_user_001_body()], ["body"]),
}


BAD_RAW_BODIES = {
    "NaN literal": (
        b'{"transaction_type": "topup", "user_id": "u", "asset_code": "GC", "amount": NaN}'
    ),
    "Infinity literal": (
        b'{"transaction_type": "topup", "user_id": "u", "asset_code": "GC", "amount": Infinity}'
    ),
    "integer literal of 5000 digits": (
        b'{"transaction_type": "topup", "user_id": "u", "asset_code": "GC", "amount": '
        + b"9" * 5000
        + b"}"
    ),
    "exponent beyond any Decimal": (
        b'{"transaction_type": "topup", "user_id": "u", "asset_code": "GC",'
        b' "amount": 1e999999999999999999999}'
    ),
    "malformed JSON": b'{"transaction_type": "topup", "user_id": ',
    "not UTF-8": b'{"transaction_type": "top\xff\xfe"}',
    "nested too deep": b"[" * 20_000 + b"]" * 20_000,
    "empty body": b"",
}


# JSON numbers, as literals, that no float could carry: each is refused as an amount.
BAD_AMOUNT_LITERALS = {
    "exponent beyond any float": b"1e999999",
    "exponent far below a minor unit": b"1e-999999999",
    "a digit far past the scale": b"1." + b"0" * 5000 + b"1",
}
NON_JSON_CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded"]


def test_bad_bodies_are_validation_errors_naming_their_location(
    client: TestClient, subtests: pytest.Subtests
) -> None:
    """Every malformed body is one 422 validation_error, and none of them leaves a trace."""
    history_before = history_ids(client, "user_001")
    for name, (sent, location) in BAD_BODIES.items():
        with subtests.test(name):
            assert location in validation_locations(client.post("/transaction", json=sent))
    for name, raw in BAD_RAW_BODIES.items():
        with subtests.test(name):
            locations = validation_locations(post_raw(client, raw, "application/json"))
            assert all(location[0] == "body" for location in locations), locations
    for name, literal in BAD_AMOUNT_LITERALS.items():
        with subtests.test(name):
            raw = b'{"transaction_type": "topup", "user_id": "u", "asset_code": "GC", "amount": '
            response = post_raw(client, raw + literal + b"}", "application/json")
            assert ["body", "amount"] in validation_locations(response)
    for content_type in NON_JSON_CONTENT_TYPES:
        with subtests.test(content_type):
            text = json.dumps(body("topup", "user_001", "1.00"))
            assert ["body"] in validation_locations(post_raw(client, text, content_type))

    assert balance(client, "user_001") == SEED_BALANCES["user_001"]["GC"]
    assert history_ids(client, "user_001") == history_before
    problem(client.get("/balance/u"), 404, "user_not_found")


def test_body_over_64_kib_is_payload_too_large(client: TestClient) -> None:
    padding = "x" * REQUEST_BODY_BYTES_MAX
    raw = json.dumps(body("topup", "big", "5.00", description=padding))
    problem(post_raw(client, raw, "application/json"), 413, "payload_too_large")

    # Without a Content-Length the limit holds too, counted while the body is read.
    def chunks() -> Iterator[bytes]:
        yield raw.encode()

    streamed = client.post(
        "/transaction", content=chunks(), headers={"Content-Type": "application/json"}
    )
    problem(streamed, 413, "payload_too_large")
    problem(client.get("/balance/big"), 404, "user_not_found")


def test_body_of_exactly_64_kib_is_read(client: TestClient) -> None:
    head = json.dumps(body("topup", "edge", "5.00"))[:-1] + ', "description": "'
    raw = head + "x" * (REQUEST_BODY_BYTES_MAX - len(head) - 2) + '"}'
    assert len(raw.encode()) == REQUEST_BODY_BYTES_MAX

    # Read, parsed, and refused for its description, not for its size.
    response = post_raw(client, raw, "application/json")
    assert ["body", "description"] in validation_locations(response)


def test_longest_user_id_and_description_are_accepted(client: TestClient) -> None:
    user_id = "A-z.0_9:@" + "x" * 119  # 128 characters, every allowed kind
    created = topup(client, user_id, "1.50", description="d" * 500)

    assert created["user_id"] == user_id
    assert created["description"] == "d" * 500
    assert balance(client, user_id) == "1.50"


def test_insufficient_funds_leaves_balance_and_history_unchanged(client: TestClient) -> None:
    history_before = history_ids(client, "user_001")

    response = post(client, "purchase", "user_001", "1000.01")

    details = problem(response, 422, "insufficient_funds")
    assert "1000.00" in details["detail"], "the detail says what the user has"
    assert "1000.01" in details["detail"], "the detail says what was needed"
    assert balance(client, "user_001") == "1000.00"
    assert history_ids(client, "user_001") == history_before


def test_purchases_spend_down_to_zero_and_no_further(client: TestClient) -> None:
    assert purchase(client, "user_002", "500.00")["balance_after"] == "0.00"
    details = problem(post(client, "purchase", "user_002", "0.01"), 422, "insufficient_funds")
    assert "0.00" in details["detail"]
    assert balance(client, "user_002") == "0.00"

    # A user exists in every asset once credited in one; the others hold nothing to spend.
    topup(client, "gc_only", "5.00", "GC")
    problem(post(client, "purchase", "gc_only", "1.00", "DI"), 422, "insufficient_funds")
    assert balance(client, "gc_only", "DI") == "0.00"


def test_purchase_by_a_never_credited_user_is_user_not_found(client: TestClient) -> None:
    problem(post(client, "purchase", "stranger", "1.00"), 404, "user_not_found")

    # The failed purchase opened no account: the user still does not exist.
    problem(client.get("/balance/stranger"), 404, "user_not_found")
    problem(client.get("/transaction/stranger/history"), 404, "user_not_found")


def test_every_response_carries_a_request_id_and_echoes_the_callers(client: TestClient) -> None:
    answers = [
        client.get("/"),
        client.get("/balance/user_001"),
        client.get("/balance/nobody"),
        client.get("/no/such/route"),
        client.delete("/transaction"),
        post(client, "topup", "rid", "1.00"),
        post(client, "topup", "rid", "0"),
        post_raw(client, b"{" * (REQUEST_BODY_BYTES_MAX + 1), "application/json"),
    ]
    ids = [response.headers.get("x-request-id") for response in answers]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), "each request gets its own id"
    # Routes and methods that do not exist are problems too.
    assert answers[3].status_code == 404
    assert answers[3].headers["content-type"].startswith("application/problem+json")
    assert answers[4].status_code == 405
    assert answers[4].headers["content-type"].startswith("application/problem+json")

    traced = {"X-Request-ID": "trace-42"}
    echoed = [
        client.get("/health", headers=traced),
        client.post("/transaction", json={}, headers=traced),
        client.post("/transaction", json=body("topup", "rid", "1"), headers=traced),
    ]
    assert [r.status_code for r in echoed] == [200, 422, 201]
    assert [r.headers["x-request-id"] for r in echoed] == ["trace-42"] * 3


def test_an_unexpected_error_is_a_problem_with_the_request_id(client: TestClient) -> None:
    """A bug answers 500 internal_error, never a stack trace, and still carries the id."""

    def broken() -> None:
        raise RuntimeError("a bug")

    app: FastAPI = client.app  # type: ignore[assignment]
    app.add_api_route("/test-only/broken", broken)

    response = client.get("/test-only/broken", headers={"X-Request-ID": "trace-500"})

    problem(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "trace-500"
    assert "a bug" not in response.text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
FIELD_VALUES = {
    "transaction_type": st.sampled_from(["topup", "bonus", "purchase", "refund", ""]) | JSON_VALUES,
    "user_id": st.sampled_from(["user_001", "user_002", "fuzz", "x" * 129]) | JSON_VALUES,
    "asset_code": st.sampled_from(["GC", "DI", "LP", "XX"]) | JSON_VALUES,
    "amount": st.sampled_from(["1.00", "0.5", "1.234", "-1", "1e3"])
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | JSON_VALUES,
    "description": st.sampled_from(["\x00", "\U0001f3ae", "d" * 501]) | st.text(max_size=30),
    "idempotency_key": st.text(max_size=8) | JSON_VALUES,
}
FUZZ_BODIES = st.fixed_dictionaries(
    {},
    optional={**FIELD_VALUES, "extra": JSON_VALUES},
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sent=FUZZ_BODIES)
def test_no_body_gets_a_500(client: TestClient, sent: dict[str, object]) -> None:
    response = client.post("/transaction", json=sent)

    assert response.status_code in (201, 404, 422), response.text
    if response.status_code != 201:
        assert response.json()["code"] in (
            "validation_error",
            "user_not_found",
            "insufficient_funds",
            "idempotency_key_reused",
        )
