"""Metadata, the caller's references, on both backends: every validation rule, what is kept and
shown, idempotency with metadata, and finding transactions by it (GET /transactions and the
history), alone and with other filters, a page at a time while writes go on.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.flows.factories import query
from tests.support.factories import body, problem, topup

ORDER = {"order_id": "A-1042", "store": "ios"}


def _items(client: TestClient, path: str = "/transactions", **params: object) -> list[Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def _error_locations(response: Any) -> list[list[Any]]:
    problem(response, 422, "validation_error")
    return [error["loc"] for error in response.json()["errors"]]


# --- validation -----------------------------------------------------------------------------

TOO_MANY = {f"k{n}": "v" for n in range(21)}


@pytest.mark.parametrize(
    ("metadata", "location"),
    [
        (TOO_MANY, ["body", "metadata"]),
        ({"": "v"}, ["body", "metadata", "", "[key]"]),
        ({"k" * 41: "v"}, ["body", "metadata", "k" * 41, "[key]"]),
        ({"order id": "v"}, ["body", "metadata", "order id", "[key]"]),
        ({"ordér": "v"}, ["body", "metadata", "ordér", "[key]"]),
        ({"order_id": "v" * 501}, ["body", "metadata", "order_id"]),
        ({"order_id": "a\x00b"}, ["body", "metadata", "order_id"]),
        ({"order_id": 1042}, ["body", "metadata", "order_id"]),
        ({"order_id": None}, ["body", "metadata", "order_id"]),
        ({"order_id": {"nested": "no"}}, ["body", "metadata", "order_id"]),
        (["order_id", "A-1042"], ["body", "metadata"]),
        ("order_id=A-1042", ["body", "metadata"]),
    ],
)
def test_malformed_metadata_is_a_validation_error_naming_the_member(
    client: TestClient, metadata: object, location: list[str]
) -> None:
    writes = {
        "a top-up": ("/transaction", body("topup", "meta_bad", "1.00", metadata=metadata)),
        "a hold": (
            "/holds",
            {"user_id": "user_001", "asset_code": "GC", "amount": "1", "metadata": metadata},
        ),
        "a batch item": (
            "/transaction/batch",
            {"transactions": [body("topup", "meta_bad", "1.00", metadata=metadata)]},
        ),
    }
    for write, (path, payload) in writes.items():
        locations = _error_locations(client.post(path, json=payload))
        if write == "a batch item":
            expected = ["body", "transactions", 0, *location[1:]]
        else:
            expected = location
        assert expected in locations, (write, locations)
    assert client.get("/balance/meta_bad").status_code == 404, "nothing was written"


def test_the_bounds_themselves_are_accepted(client: TestClient) -> None:
    widest = {f"{n:02d}" + "k" * 38: "é" * 500 for n in range(20)}
    assert topup(client, "meta_wide", "1.00", metadata=widest)["metadata"] == widest
    every_character = {"A-Za-z0-9_.-": "", "x": 'any text: ünïcode, spaces, "quotes"'}
    created = topup(client, "meta_wide", "1.00", metadata=every_character)
    assert created["metadata"] == every_character


# --- kept and shown -----------------------------------------------------------------------------


def test_metadata_is_kept_with_its_transaction_and_shown_everywhere(client: TestClient) -> None:
    created = topup(client, "meta_shown", "10.00", metadata=ORDER)
    assert created["metadata"] == ORDER
    assert client.get(f"/transaction/{created['id']}").json()["metadata"] == ORDER
    [in_history] = _items(client, "/transaction/meta_shown/history")
    assert in_history["metadata"] == ORDER
    plain = topup(client, "meta_shown", "1.00")
    assert plain["metadata"] == {}
    seeded = _items(client, "/transaction/user_001/history")
    assert all(item["metadata"] == {} for item in seeded), "older transactions show {}"


def test_a_refund_and_batch_items_carry_their_own_metadata(client: TestClient) -> None:
    bought = topup(client, "meta_refund", "10.00", metadata={"order_id": "R-1"})
    refund = client.post(
        "/transaction",
        json={
            "transaction_type": "refund",
            "refund_of": bought["id"],
            "amount": "4.00",
            "metadata": {"ticket": "SUP-7"},
        },
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["metadata"] == {"ticket": "SUP-7"}
    batch = client.post(
        "/transaction/batch",
        json={
            "transactions": [
                body("purchase", "meta_refund", "1.00", metadata={"item": "sword"}),
                body("bonus", "meta_refund", "2.00"),
            ]
        },
    )
    assert batch.status_code == 201, batch.text
    first, second = batch.json()["transactions"]
    assert (first["metadata"], second["metadata"]) == ({"item": "sword"}, {})
    assert client.get(f"/transaction/{bought['id']}").json()["metadata"] == {"order_id": "R-1"}


def test_a_hold_and_the_transactions_it_makes_carry_its_metadata(client: TestClient) -> None:
    topup(client, "meta_hold", "50.00")
    placed = client.post(
        "/holds",
        json={"user_id": "meta_hold", "asset_code": "GC", "amount": "20", "metadata": ORDER},
    )
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["metadata"] == ORDER
    captured = client.post(f"/holds/{hold['id']}/capture", json={"amount": "15"}).json()
    assert captured["metadata"] == ORDER
    assert len(captured["transactions"]) == 3, "hold, capture, release of the rest"
    for transaction_id in captured["transactions"]:
        assert client.get(f"/transaction/{transaction_id}").json()["metadata"] == ORDER
    found = _items(client, **{"metadata[order_id]": "A-1042", "user_id": "meta_hold"})
    assert sorted(t["transaction_type"] for t in found) == ["capture", "hold", "release"]


def test_stored_metadata_never_changes(client: TestClient, database_url: str) -> None:
    created = topup(client, "meta_fixed", "1.00", metadata=ORDER)
    topup(client, "meta_fixed", "9.00")
    hold = client.post(
        "/holds",
        json={"user_id": "meta_fixed", "asset_code": "GC", "amount": "1", "metadata": ORDER},
    ).json()
    for sql in (
        f"UPDATE transactions SET metadata = '{{}}' WHERE id = '{created['id']}'",
        "UPDATE transaction_metadata SET value = 'B-1' WHERE value = 'A-1042'",
        "DELETE FROM transaction_metadata WHERE value = 'A-1042'",
        f"UPDATE holds SET metadata = NULL WHERE id = '{hold['id']}'",
    ):
        with pytest.raises((psycopg.Error, sqlite3.Error), match=r"metadata|append-only"):
            query(database_url, sql)
    assert client.get(f"/transaction/{created['id']}").json()["metadata"] == ORDER


# --- idempotency --------------------------------------------------------------------------------


def test_metadata_is_part_of_the_idempotency_payload(client: TestClient) -> None:
    key = {"Idempotency-Key": "meta-key-1"}
    first = client.post(
        "/transaction",
        json=body("topup", "meta_idem", "5.00", metadata={"a": "1", "b": "2"}),
        headers=key,
    )
    assert first.status_code == 201
    same_in_another_order = client.post(
        "/transaction",
        json=body("topup", "meta_idem", "5.00", metadata={"b": "2", "a": "1"}),
        headers=key,
    )
    assert same_in_another_order.status_code == 201
    assert same_in_another_order.headers["Idempotent-Replayed"] == "true"
    assert same_in_another_order.content == first.content
    for other in ({"a": "1", "b": "3"}, {"a": "1"}, None):
        extra = {} if other is None else {"metadata": other}
        reused = client.post(
            "/transaction", json=body("topup", "meta_idem", "5.00", **extra), headers=key
        )
        problem(reused, 422, "idempotency_key_reused")
    empty_key = {"Idempotency-Key": "meta-key-2"}
    plain = client.post("/transaction", json=body("topup", "meta_idem", "5.00"), headers=empty_key)
    with_empty = client.post(
        "/transaction", json=body("topup", "meta_idem", "5.00", metadata={}), headers=empty_key
    )
    assert with_empty.headers.get("Idempotent-Replayed") == "true", "{} is no metadata at all"
    assert with_empty.content == plain.content
    assert len(_items(client, "/transaction/meta_idem/history")) == 2


# --- finding transactions -----------------------------------------------------------------------


def test_find_the_transactions_of_an_order_across_users(client: TestClient) -> None:
    order = {"order_id": "X-77"}
    mine = topup(client, "meta_find_a", "3.00", metadata={**order, "store": "ios"})
    theirs = topup(client, "meta_find_b", "4.00", metadata=order, asset="DI")
    topup(client, "meta_find_b", "5.00", metadata={"order_id": "X-78"})
    topup(client, "meta_find_c", "6.00")
    found = _items(client, **{"metadata[order_id]": "X-77"})
    assert [t["id"] for t in found] == [theirs["id"], mine["id"]], "newest first"
    assert _items(client, **{"metadata[order_id]": "X-7"}) == [], "values match exactly"


def test_every_filter_alone_and_together(client: TestClient) -> None:
    campaign = {"campaign": "winter"}
    made = [
        topup(client, "meta_f1", "1.00", metadata={**campaign, "store": "ios"}),
        topup(client, "meta_f1", "2.00", metadata={**campaign, "store": "web"}, asset="DI"),
        topup(client, "meta_f2", "3.00", metadata={**campaign, "store": "ios"}),
        client.post(
            "/transaction", json=body("purchase", "meta_f1", "0.50", metadata=campaign)
        ).json(),
    ]
    ids = [t["id"] for t in made]

    def found(**params: object) -> list[str]:
        return [t["id"] for t in _items(client, **{"metadata[campaign]": "winter", **params})]

    assert found() == ids[::-1]
    assert found(user_id="meta_f1") == [ids[3], ids[1], ids[0]]
    assert found(asset_code="DI") == [ids[1]]
    assert found(transaction_type="purchase") == [ids[3]]
    assert found(**{"metadata[store]": "ios"}) == [ids[2], ids[0]]
    assert found(**{"metadata[store]": "ios", "user_id": "meta_f2"}) == [ids[2]]
    assert found(**{"metadata[store]": "ios", "metadata[campaign]": "summer"}) == []
    both = {"metadata[store]": "ios", "asset_code": "GC", "transaction_type": "topup"}
    assert found(**both) == [ids[2], ids[0]]
    history = _items(
        client, "/transaction/meta_f1/history", **{"metadata[store]": "web", "limit": 10}
    )
    assert [t["id"] for t in history] == [ids[1]]
    without_metadata = _items(client, user_id="meta_f2", limit=10)
    assert [t["id"] for t in without_metadata] == [ids[2]]
    assert [t["id"] for t in _items(client, transaction_type="purchase", user_id="meta_f1")] == [
        ids[3]
    ]


@pytest.mark.parametrize(
    ("query", "what"),
    [
        ("metadata[a]=1&metadata[b]=2&metadata[c]=3&metadata[d]=4", "a fourth metadata filter"),
        ("metadata[bad key]=1", "a malformed key"),
        ("metadata[]=1", "an empty key"),
        ("metadata[a]=1&metadata[a]=2", "a filter given twice"),
        ("order_id=A-1042", "an unknown parameter"),
        ("limit=5&limit=6", "a parameter given twice"),
        ("metadata[a]=" + "v" * 501, "a value too long"),
        ("metadata[a]=%00", "a NUL in a value"),
        ("transaction_type=gift", "an unknown kind"),
        ("limit=0", "a page of nothing"),
        ("cursor=bm90LWEtY3Vyc29y", "a cursor we never gave out"),
    ],
)
def test_bad_filters_are_refused_never_ignored(client: TestClient, query: str, what: str) -> None:
    for path in ("/transactions", "/transaction/user_001/history"):
        response = client.get(f"{path}?{query}")
        problem(response, 422, "validation_error")
        assert response.json()["errors"], (path, what)


def test_three_metadata_filters_are_allowed(client: TestClient) -> None:
    tags = {"a": "1", "b": "2", "c": "3"}
    made = topup(client, "meta_three", "1.00", metadata=tags)
    topup(client, "meta_three", "1.00", metadata={"a": "1", "b": "2"})
    query = {f"metadata[{k}]": v for k, v in tags.items()}
    assert [t["id"] for t in _items(client, **query)] == [made["id"]]


def test_paging_across_users_while_writes_go_on_has_no_duplicate_and_no_gap(
    client: TestClient,
) -> None:
    """Every transaction with the reference that existed when the reader began is on exactly
    one page, whatever is written meanwhile (new ones come before the first page)."""
    reference = {"campaign": "paging"}
    before = [
        topup(client, f"meta_page_{n % 7}", f"{n + 1}.00", metadata=reference)["id"]
        for n in range(23)
    ]
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 200:
            response = client.post(
                "/transaction",
                json=body("topup", f"meta_page_{n % 5}", "1.00", metadata=reference),
            )
            assert response.status_code == 201, response.text
            written.append(response.json()["id"])
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[str] = []
    cursor: str | None = None
    try:
        while True:
            params: dict[str, object] = {"metadata[campaign]": "paging", "limit": 4}
            if cursor is not None:
                params["cursor"] = cursor
            page = client.get("/transactions", params=params).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        thread.join()
    assert len(seen) == len(set(seen)), "no transaction on two pages"
    assert set(before) <= set(seen), "no transaction that existed at the start was skipped"
    assert set(seen) <= set(before) | set(written)
    everything = [t["id"] for t in _items(client, **{"metadata[campaign]": "paging"}, limit=500)]
    assert len(everything) == len(before) + len(written)
    assert set(everything) == set(before) | set(written)
