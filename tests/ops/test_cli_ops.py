"""The operators' commands as real processes on both backends: keys, assets and export."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import wallet


@pytest.mark.parametrize(
    "command",
    [
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["assets"],
        ["assets", "list"],
        ["assets", "add"],
        ["export"],
    ],
)
def test_every_operations_command_explains_itself(command: list[str]) -> None:
    result = wallet(*command, "--help")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ")


def test_keys_are_created_shown_once_listed_and_revoked(database_url: str) -> None:
    created = wallet(
        "keys", "create", "--name", "game-eu", "--scope", "read", "--scope", "write",
        "--database-url", database_url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("wk_")
    key_id = key.split("_")[1]
    assert key_id in created.stderr
    assert "shown only this once" in created.stderr

    listed = wallet("keys", "list", "--json", "--database-url", database_url)
    assert listed.returncode == 0, listed.stderr
    assert key not in listed.stdout
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert record["id"] == key_id
    assert record["name"] == "game-eu"
    assert record["scopes"] == ["read", "write"]
    assert record["revoked_at"] is None

    revoked = wallet("keys", "revoke", key_id, "--database-url", database_url)
    assert revoked.returncode == 0, revoked.stderr
    text = wallet("keys", "list", "--database-url", database_url)
    assert "revoked" in text.stdout
    assert key not in text.stdout

    unknown = wallet("keys", "revoke", "000000000000", "--database-url", database_url)
    assert unknown.returncode == 2
    bad_scope = wallet("keys", "create", "--name", "x", "--scope", "root",
                       "--database-url", database_url)  # fmt: skip
    assert bad_scope.returncode == 2


def test_assets_are_listed_and_added_once(database_url: str) -> None:
    args = ["--code", "GEM", "--name", "Gems", "--scale", "0", "--supply", "1000000"]
    added = wallet("assets", "add", *args, "--database-url", database_url)
    again = wallet("assets", "add", *args, "--database-url", database_url)
    listed = wallet("assets", "list", "--database-url", database_url)

    assert added.returncode == 0, added.stderr
    assert again.returncode == 65, again.stderr
    assert "asset_exists" in again.stderr
    assert "GEM  Gems  scale 0  supply 1000000" in listed.stdout
    assert "GC  Gold Coins  scale 2  supply 1000000000000.00" in listed.stdout
    assert wallet("verify", "--database-url", database_url).returncode == 0
    bad = wallet("assets", "add", "--code", "gem", *args[2:], "--database-url", database_url)
    assert bad.returncode == 2
