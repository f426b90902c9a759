"""Idempotency keys: a retry replays the first answer and creates nothing; a key is decided once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import (
    balance,
    body,
    history_ids,
    post,
    problem,
    topup,
    validation_locations,
)

REPLAYED = "idempotent-replayed"


def test_body_key_replays_the_first_answer_and_creates_nothing(client: TestClient) -> None:
    first = post(client, "purchase", "user_001", "25.00", idempotency_key="order-1")
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    assert first.json()["idempotency_key"] == "order-1"
    history = history_ids(client, "user_001")

    again = post(client, "purchase", "user_001", "25.00", idempotency_key="order-1")

    assert again.status_code == 201
    assert again.headers[REPLAYED] == "true"
    assert again.content == first.content
    assert balance(client, "user_001") == "975.00"
    assert history_ids(client, "user_001") == history


def test_header_key_replays_and_either_source_names_the_same_key(client: TestClient) -> None:
    key = {"Idempotency-Key": "topup-7"}
    first = post(client, "topup", "hdr", "10.00", headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["idempotency_key"] == "topup-7"

    by_header = post(client, "topup", "hdr", "10.00", headers=key)
    by_body = post(client, "topup", "hdr", "10.00", idempotency_key="topup-7")
    by_both = post(client, "topup", "hdr", "10.00", headers=key, idempotency_key="topup-7")

    for replay in (by_header, by_body, by_both):
        assert replay.status_code == 201
        assert replay.headers[REPLAYED] == "true"
        assert replay.content == first.content
    assert balance(client, "hdr") == "10.00"
    assert history_ids(client, "hdr") == [first.json()["id"]]


def test_header_and_body_keys_that_differ_are_a_mismatch(client: TestClient) -> None:
    response = post(
        client, "topup", "mm", "1.00", headers={"Idempotency-Key": "a"}, idempotency_key="b"
    )

    problem(response, 400, "idempotency_key_mismatch")
    problem(client.get("/balance/mm"), 404, "user_not_found")
    # The mismatch decided nothing: both keys are still free.
    assert post(client, "topup", "mm", "1.00", idempotency_key="a").status_code == 201
    assert post(client, "topup", "mm", "1.00", idempotency_key="b").status_code == 201
    assert balance(client, "mm") == "2.00"


DIFFERENT_PAYLOADS = {
    "amount": body("topup", "reuse", "5.01"),
    "user": body("topup", "reuse2", "5.00"),
    "asset": body("topup", "reuse", "5.00", "DI"),
    "type": body("bonus", "reuse", "5.00"),
    "description": body("topup", "reuse", "5.00", description="another"),
}


def test_same_key_with_a_different_payload_is_reused(
    client: TestClient, subtests: pytest.Subtests
) -> None:
    first = topup(client, "reuse", "5.00", idempotency_key="k-reuse")

    for name, payload in DIFFERENT_PAYLOADS.items():
        with subtests.test(name):
            response = client.post("/transaction", json={**payload, "idempotency_key": "k-reuse"})
            problem(response, 422, "idempotency_key_reused")

    assert balance(client, "reuse") == "5.00"
    assert balance(client, "reuse", "DI") == "0.00"
    assert history_ids(client, "reuse") == [first["id"]]
    problem(client.get("/balance/reuse2"), 404, "user_not_found")


def test_number_and_string_of_one_amount_are_the_same_payload(client: TestClient) -> None:
    first = post(client, "topup", "same", 100, idempotency_key="k-same")
    assert first.status_code == 201, first.text

    for amount in ("100.00", 100.0, "100", 100.00):
        replay = post(client, "topup", "same", amount, idempotency_key="k-same")
        assert replay.status_code == 201, amount
        assert replay.headers[REPLAYED] == "true"
        assert replay.content == first.content
    assert balance(client, "same") == "100.00"


def test_a_refusal_is_replayed_even_after_the_balance_has_grown(client: TestClient) -> None:
    topup(client, "poor", "10.00")
    refused = post(client, "purchase", "poor", "25.00", idempotency_key="k-poor")
    details = problem(refused, 422, "insufficient_funds")
    assert REPLAYED not in refused.headers

    topup(client, "poor", "100.00")
    history = history_ids(client, "poor")
    replay = post(client, "purchase", "poor", "25.00", idempotency_key="k-poor")

    assert problem(replay, 422, "insufficient_funds") == details
    assert replay.headers[REPLAYED] == "true"
    assert balance(client, "poor") == "110.00"
    assert history_ids(client, "poor") == history
    # A new attempt takes a new key.
    assert post(client, "purchase", "poor", "25.00", idempotency_key="k-poor-2").status_code == 201
    assert balance(client, "poor") == "85.00"


def test_an_unknown_user_refusal_is_kept_for_its_key(client: TestClient) -> None:
    refused = post(client, "purchase", "later", "1.00", idempotency_key="k-later")
    details = problem(refused, 404, "user_not_found")

    topup(client, "later", "5.00")
    replay = post(client, "purchase", "later", "1.00", idempotency_key="k-later")

    assert problem(replay, 404, "user_not_found") == details
    assert replay.headers[REPLAYED] == "true"
    assert balance(client, "later") == "5.00"


def test_a_validation_error_does_not_consume_the_key(client: TestClient) -> None:
    invalid = [
        body("topup", "free", "1.234", idempotency_key="k-free"),
        body("topup", "free", "1.00", "XX", idempotency_key="k-free"),
        body("topup", "free", "0", idempotency_key="k-free"),
        {**body("topup", "free", "1.00", idempotency_key="k-free"), "extra": 1},
    ]
    for payload in invalid:
        validation_locations(client.post("/transaction", json=payload))

    created = post(client, "topup", "free", "3.00", idempotency_key="k-free")

    assert created.status_code == 201, created.text
    assert REPLAYED not in created.headers
    assert balance(client, "free") == "3.00"


BAD_KEYS = {
    "256 characters": "k" * 256,
    "empty": "",
    "control character": "key\x01",
    "tab": "key\tone",
    "leading space": " key",
    "trailing space": "key ",
    "not ASCII": "ключ",
}


def test_bad_keys_are_validation_errors(client: TestClient, subtests: pytest.Subtests) -> None:
    for name, key in BAD_KEYS.items():
        with subtests.test(f"body: {name}"):
            response = post(client, "topup", "badkey", "1.00", idempotency_key=key)
            assert ["body", "idempotency_key"] in validation_locations(response)
        with subtests.test(f"header: {name}"):
            headers = {"Idempotency-Key": key.encode("utf-8")}
            response = client.post(
                "/transaction", json=body("topup", "badkey", "1.00"), headers=headers
            )
            assert ["header", "Idempotency-Key"] in validation_locations(response)

    problem(client.get("/balance/badkey"), 404, "user_not_found")


def test_longest_and_widest_keys_are_accepted(client: TestClient) -> None:
    longest = "k" * 255
    printable = "".join(chr(c) for c in range(0x21, 0x7F))
    for key in (longest, printable, "with inner spaces"):
        created = post(client, "topup", "keys", "1.00", headers={"Idempotency-Key": key})
        assert created.status_code == 201, created.text
        assert created.json()["idempotency_key"] == key
        replay = post(client, "topup", "keys", "1.00", idempotency_key=key)
        assert replay.headers[REPLAYED] == "true"
    assert balance(client, "keys") == "3.00"


def test_client_keys_do_not_collide_with_the_seed_keys(client: TestClient) -> None:
    # The seed posted user_001's opening balance with this key, in the system's own scope.
    created = post(client, "topup", "user_001", "1.00", idempotency_key="opening:user_001:GC")

    assert created.status_code == 201, created.text
    assert REPLAYED not in created.headers
    assert balance(client, "user_001") == "1001.00"
