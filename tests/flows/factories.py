"""Small factories and checks shared by the flow tests: HTTP calls and the ledger's invariants,
recomputed from the database itself.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from wallet.service.expiry import SweepPass
from wallet.storage.database import postgresql_conninfo, sqlite_path


def transact(client: TestClient, **body: Any) -> Any:
    return client.post("/transaction", json=body)


def topup(client: TestClient, user_id: str, amount: Any, asset_code: str = "GC") -> dict[str, Any]:
    response = transact(
        client, transaction_type="topup", user_id=user_id, asset_code=asset_code, amount=amount
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def purchase(
    client: TestClient, user_id: str, amount: Any, asset_code: str = "GC"
) -> dict[str, Any]:
    response = transact(
        client, transaction_type="purchase", user_id=user_id, asset_code=asset_code, amount=amount
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def balance(client: TestClient, user_id: str, asset_code: str = "GC") -> str:
    response = client.get(f"/balance/{user_id}/{asset_code}")
    assert response.status_code == 200, response.text
    value: str = response.json()["balance"]
    return value


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(sqlite_path(database_url))
        try:
            return list(connection.execute(sql).fetchall())
        finally:
            connection.close()
    with psycopg.connect(postgresql_conninfo(database_url)) as pg:
        return list(pg.execute(sql).fetchall())


def count_transactions(database_url: str) -> int:
    return int(query(database_url, "SELECT count(*) FROM transactions")[0][0])


def assert_invariants(database_url: str) -> None:
    """Entries sum to zero per transaction, balances equal their entries, no balance below zero
    but issuance, and each asset's accounts (issuance aside) add up to its supply.
    """
    unbalanced = query(
        database_url,
        "SELECT transaction_id FROM entries GROUP BY transaction_id HAVING sum(amount_minor) <> 0",
    )
    assert unbalanced == []
    drifted = query(
        database_url,
        "SELECT a.id FROM accounts a LEFT JOIN entries e ON e.account_id = a.id"
        " GROUP BY a.id, a.balance_minor"
        " HAVING a.balance_minor <> coalesce(sum(e.amount_minor), 0)",
    )
    assert drifted == []
    negative = query(
        database_url,
        "SELECT id FROM accounts WHERE balance_minor < 0 AND owner_id <> 'issuance'",
    )
    assert negative == []
    supplies = query(
        database_url,
        "SELECT s.code, s.supply_minor, sum(a.balance_minor) FROM assets s"
        " JOIN accounts a ON a.asset_code = s.code"
        " AND NOT (a.owner_type = 'system' AND a.owner_id = 'issuance')"
        " GROUP BY s.code, s.supply_minor",
    )
    for code, supply, total in supplies:
        assert int(total) == int(supply), code
    in_holds = dict(
        query(
            database_url,
            "SELECT asset_code, balance_minor FROM accounts"
            " WHERE owner_type = 'system' AND owner_id = 'holds' AND balance_minor <> 0",
        )
    )
    pending = dict(
        query(
            database_url,
            "SELECT asset_code, sum(amount_minor) FROM holds WHERE status = 'pending'"
            " GROUP BY asset_code",
        )
    )
    assert {k: int(v) for k, v in in_holds.items()} == {k: int(v) for k, v in pending.items()}


def check_lots(database_url: str) -> None:
    """The ledger's invariants, and each account's open lots add up to its lots_open_minor, at
    most its balance."""
    assert_invariants(database_url)
    mismatched = query(
        database_url,
        "SELECT a.id FROM accounts a LEFT JOIN lots l"
        " ON l.account_id = a.id AND l.remaining_minor > 0"
        " GROUP BY a.id, a.lots_open_minor, a.balance_minor"
        " HAVING a.lots_open_minor <> coalesce(sum(l.remaining_minor), 0)"
        " OR (a.lots_open_minor > 0 AND a.lots_open_minor > a.balance_minor)",
    )
    assert mismatched == []


def sweep_lots(client: TestClient) -> SweepPass:
    """One pass of the lot expiry sweep of the client's app, on the app's loop."""
    service = client.app.state.service  # type: ignore[attr-defined]
    swept: SweepPass = client.portal.call(service.expiry.expire_due)  # type: ignore[union-attr]
    return swept
