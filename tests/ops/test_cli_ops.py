"""The operators' commands as real processes on both backends: keys, assets (and their expiry
policy) and export."""

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
        ["assets", "set"],
        ["users", "lots"],
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


def test_an_asset_is_added_with_an_expiry_policy_and_changed(database_url: str) -> None:
    args = ["--code", "XP", "--name", "Season points", "--scale", "0", "--supply", "1000"]
    added = wallet("assets", "add", *args, "--expires-after-days", "90", "--database-url",
                   database_url)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.endswith("; credits expire after 90 days.\n")
    listed = wallet("assets", "list", "--database-url", database_url).stdout.splitlines()
    assert "XP  Season points  scale 0  supply 1000  credits expire after 90 days" in listed
    assert (
        "LP  Loyalty Points  scale 2  supply 1000000000000.00  credits expire after 365 days"
        in (listed)
    )
    assert "GC  Gold Coins  scale 2  supply 1000000000000.00  credits never expire" in listed

    never = wallet("assets", "set", "XP", "--expires-after-days", "never", "--database-url",
                   database_url)  # fmt: skip
    assert never.returncode == 0, never.stderr
    assert never.stdout == "XP (Season points): credits never expire from now on.\n"
    days = wallet("assets", "set", "GC", "--expires-after-days", "3650", "--database-url",
                  database_url)  # fmt: skip
    assert days.stdout == "GC (Gold Coins): credits expire after 3650 days from now on.\n"
    listed = wallet("assets", "list", "--database-url", database_url).stdout
    assert "XP  Season points  scale 0  supply 1000  credits never expire" in listed
    assert "GC  Gold Coins  scale 2  supply 1000000000000.00  credits expire after 3650 days" in (
        listed
    )


@pytest.mark.parametrize("days", ["0", "3651", "-1", "1.5", "soon", ""])
def test_assets_set_refuses_what_is_no_policy(database_url: str, days: str) -> None:
    refused = wallet("assets", "set", "GC", "--expires-after-days", days, "--database-url",
                     database_url)  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--expires-after-days" in refused.stderr


def test_assets_set_of_an_unknown_asset_is_asset_not_found(database_url: str) -> None:
    unknown = wallet("assets", "set", "ZZZ", "--expires-after-days", "5", "--database-url",
                     database_url)  # fmt: skip
    missing = wallet("assets", "set", "GC", "--database-url", database_url)
    assert unknown.returncode == 65
    assert "asset_not_found" in unknown.stderr
    assert missing.returncode == 2


def test_users_lots_lists_the_open_lots_soonest_first(database_url: str) -> None:
    """The seed's LP opening of user_001 is a lot (LP: 365 days on a new database)."""
    as_json = wallet("users", "lots", "user_001", "LP", "--json", "--database-url", database_url)
    text = wallet("users", "lots", "user_001", "LP", "--database-url", database_url)
    none = wallet("users", "lots", "user_001", "GC", "--database-url", database_url)

    assert as_json.returncode == 0, as_json.stderr
    [lot] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (lot["amount"], lot["remaining"]) == ("200.00", "200.00")
    assert set(lot) == {"id", "amount", "remaining", "expires_at", "transaction_id"}
    assert text.stdout == (
        f"{lot['expires_at']}  200.00 of 200.00  lot {lot['id']}  credit {lot['transaction_id']}\n"
    )
    assert (none.returncode, none.stdout) == (0, "")
    unknown_user = wallet("users", "lots", "nobody", "LP", "--database-url", database_url)
    unknown_asset = wallet("users", "lots", "user_001", "ZZZ", "--database-url", database_url)
    bad_user = wallet("users", "lots", "no body", "LP", "--database-url", database_url)
    assert (unknown_user.returncode, unknown_asset.returncode, bad_user.returncode) == (65, 65, 2)
    assert "user_not_found" in unknown_user.stderr
    assert "asset_not_found" in unknown_asset.stderr
