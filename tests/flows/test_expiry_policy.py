"""An asset's expiry policy (API.md, "Credits that expire"), on both backends: shown wherever an
asset is, set when an asset is added, changed by PATCH /admin/assets/{code} (at once in the
process that answers, within the refresh bound in another), seeded as 365 days for LP only on a
database whose LP the seed creates.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.flows.factories import query
from tests.support.factories import problem
from tests.support.rawdb import connect
from wallet.api import create_app
from wallet.api.app import refresh_assets
from wallet.config import Settings
from wallet.service.wallet import WalletService

SEEDED = {"DI": None, "GC": None, "LP": 365}


def policies(client: TestClient) -> dict[str, Any]:
    response = client.get("/assets")
    assert response.status_code == 200, response.text
    return {asset["code"]: asset["expires_after_days"] for asset in response.json()}


def test_a_new_database_gives_lp_365_days_and_gc_di_none(client: TestClient) -> None:
    assert policies(client) == SEEDED
    assert client.get("/assets").json()[2] == {
        "code": "LP",
        "name": "Loyalty Points",
        "scale": 2,
        "expires_after_days": 365,
    }


def test_an_existing_database_keeps_its_policy_when_seeded_again(
    settings: Settings, database_url: str
) -> None:
    """A database made before credits could expire has NULL everywhere (the migration sets
    nothing); the seed, run at every start, leaves the LP it did not create as it is."""
    with connect(database_url) as db:
        db.run("UPDATE assets SET expires_after_days = NULL")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert policies(client) == {"DI": None, "GC": None, "LP": None}
    assert query(database_url, "SELECT count(*) FROM assets WHERE expires_after_days IS NOT NULL")[
        0
    ] == (0,)


def test_an_asset_is_added_with_a_policy_or_none(client: TestClient) -> None:
    body = {"code": "XP", "name": "Season points", "scale": 0, "supply": 1000}
    added = client.post("/admin/assets", json={**body, "expires_after_days": 90})
    assert added.status_code == 201, added.text
    assert added.json() == {
        "code": "XP",
        "name": "Season points",
        "scale": 0,
        "expires_after_days": 90,
    }
    plain = client.post("/admin/assets", json={**body, "code": "XQ"})
    assert plain.status_code == 201, plain.text
    assert plain.json()["expires_after_days"] is None
    explicit_null = client.post(
        "/admin/assets", json={**body, "code": "XR", "expires_after_days": None}
    )
    assert explicit_null.json()["expires_after_days"] is None
    assert policies(client) == {**SEEDED, "XP": 90, "XQ": None, "XR": None}


@pytest.mark.parametrize("days", [0, -1, 3651, 1.5, "30", True, [30], {"days": 30}])
def test_a_policy_out_of_bounds_is_a_validation_error(client: TestClient, days: Any) -> None:
    body = {"code": "XP", "name": "Season points", "scale": 0, "supply": 1000}
    refused = client.post("/admin/assets", json={**body, "expires_after_days": days})
    problem(refused, 422, "validation_error")
    patched = client.patch("/admin/assets/GC", json={"expires_after_days": days})
    problem(patched, 422, "validation_error")
    assert policies(client) == SEEDED


def test_patch_changes_the_policy_and_answers_the_asset(client: TestClient) -> None:
    changed = client.patch("/admin/assets/GC", json={"expires_after_days": 30})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "code": "GC",
        "name": "Gold Coins",
        "scale": 2,
        "expires_after_days": 30,
    }
    assert policies(client)["GC"] == 30
    never = client.patch("/admin/assets/LP", json={"expires_after_days": None})
    assert never.json()["expires_after_days"] is None
    bounds = [client.patch("/admin/assets/DI", json={"expires_after_days": d}) for d in (1, 3650)]
    assert [b.json()["expires_after_days"] for b in bounds] == [1, 3650]
    assert policies(client) == {"DI": 3650, "GC": 30, "LP": None}


def test_patch_without_the_member_changes_nothing(client: TestClient) -> None:
    unchanged = client.patch("/admin/assets/LP", json={})
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["expires_after_days"] == 365
    assert policies(client) == SEEDED


def test_patch_refusals(client: TestClient) -> None:
    problem(
        client.patch("/admin/assets/ZZZ", json={"expires_after_days": 5}), 404, "asset_not_found"
    )
    problem(
        client.patch("/admin/assets/gc", json={"expires_after_days": 5}), 422, "validation_error"
    )
    problem(client.patch("/admin/assets/GC", json={"expires": 5}), 422, "validation_error")
    problem(client.patch("/admin/assets/GC", json=[5]), 422, "validation_error")
    duplicated = client.patch(
        "/admin/assets/GC",
        content=b'{"expires_after_days": 5, "expires_after_days": 6}',
        headers={"content-type": "application/json"},
    )
    problem(duplicated, 422, "validation_error")
    assert policies(client) == SEEDED


def test_the_catalogue_sees_a_patch_at_once_here_and_after_a_refresh_elsewhere(
    settings: Settings,
) -> None:
    """Two processes on one database: the one that answers the PATCH applies it at once; the
    other's catalogue has the old policy until its periodic refresh, which brings the new one."""
    here = WalletService(settings)
    there = WalletService(settings)
    there.start()
    try:
        with TestClient(create_app(settings, here), raise_server_exceptions=False) as client:
            assert (
                client.patch("/admin/assets/GC", json={"expires_after_days": 7}).status_code == 200
            )
            assert _cached_policy(here, "GC") == 7
            assert _cached_policy(there, "GC") is None

            async def one_pass() -> None:
                task = asyncio.create_task(refresh_assets(there, 0.0))
                while _cached_policy(there, "GC") is None:
                    await asyncio.sleep(0)
                task.cancel()

            asyncio.run(asyncio.wait_for(one_pass(), timeout=30))
            assert _cached_policy(there, "GC") == 7
    finally:
        there.stop()


def _cached_policy(service: WalletService, code: str) -> int | None:
    asset = service.assets.cached(code)
    assert asset is not None
    return asset.expires_after_days
