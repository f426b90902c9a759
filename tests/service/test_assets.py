"""The asset catalogue, on both backends: an asset added by another process is read at once
wherever the ledger already holds rows of it, and an operator's write that the database cannot
complete is a 503, never a 500.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import problem
from wallet.api import create_app
from wallet.config import Settings
from wallet.service.assets import AssetCatalog, new_asset
from wallet.storage import open_database
from wallet.storage.database import sqlite_path

GEMS = new_asset("ZZ", "Gems", 3, Decimal(1_000_000))


def test_an_asset_added_elsewhere_is_read_at_once_where_the_ledger_has_rows_of_it(
    client: TestClient, settings: Settings
) -> None:
    """This process loaded its catalogue before the asset existed: the transactions, balances
    and holds another process wrote in it are still answered, in the asset's own scale."""
    database = open_database(settings)
    try:
        AssetCatalog(database).add([GEMS])
    finally:
        database.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        created = other.post(
            "/transaction",
            json={"transaction_type": "topup", "user_id": "gem_user", "asset_code": "ZZ",
                  "amount": "1.5"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        hold = other.post(
            "/holds", json={"user_id": "gem_user", "asset_code": "ZZ", "amount": "0.5"}
        )
        assert hold.status_code == 201, hold.text

    transaction = client.get(f"/transaction/{created.json()['id']}")
    assert (transaction.status_code, transaction.json()["amount"]) == (200, "1.500")
    history = client.get("/transaction/gem_user/history")
    assert history.status_code == 200, history.text
    assert [t["amount"] for t in history.json()["items"]] == ["0.500", "1.500"]
    balances = client.get("/balance/gem_user")
    assert balances.status_code == 200, balances.text
    assert {b["asset_code"]: b["balance"] for b in balances.json()["balances"]}["ZZ"] == "1.000"
    assert client.get(f"/holds/{hold.json()['id']}").json()["amount"] == "0.500"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_adding_an_asset_while_the_database_is_locked_is_a_503_and_writes_nothing(
    client: TestClient, settings: Settings
) -> None:
    """SQLite: another connection holds the write lock past the busy timeout."""
    holder = sqlite3.connect(sqlite_path(settings.database_url), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        blocked = client.post(
            "/admin/assets", json={"code": "ZZ", "name": "Gems", "scale": 3, "supply": "1000"}
        )
        problem(blocked, 503, "unavailable")
        assert "Retry-After" in blocked.headers
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "ZZ" not in {a["code"] for a in client.get("/assets").json()}
    added = client.post(
        "/admin/assets", json={"code": "ZZ", "name": "Gems", "scale": 3, "supply": "1000"}
    )
    assert added.status_code == 201, added.text
