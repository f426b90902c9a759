"""`wallet export` as a real process on both backends: every entry of the range once, with exact
amounts, as CSV and as JSON lines; the range is [--since, --until); bad dates are usage errors.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import bonus, purchase, topup
from tests.test_cli import wallet
from wallet.api import create_app
from wallet.config import Settings
from wallet.service import export as export_service
from wallet.service.clock import parse_instant_us
from wallet.service.export import EXPORT_FIELDS, export_ledger
from wallet.storage import open_database

FAR_FUTURE = "2999-01-01T00:00:00Z"
GEM = {"code": "GEM", "name": "Gems", "scale": 0, "supply": "1000000"}
XP = {"code": "XP", "name": "Experience", "scale": 8, "supply": "1000"}

Row = dict[str, Any]


def _post_story(settings: Settings) -> list[dict[str, Any]]:
    """Six transactions of three assets and scales, each at a distinct instant, oldest first."""
    with TestClient(create_app(settings)) as client:
        for asset in (GEM, XP):
            assert client.post("/admin/assets", json=asset).status_code == 201
        return [
            _later(
                topup(
                    client,
                    "player_a",
                    "1234.56",
                    description='Crate "gold", x2',
                    metadata={"order_id": "A-1042", "note": 'a "quoted", comma'},
                )
            ),
            _later(purchase(client, "player_a", "0.01", description="line one\nline two")),
            _later(bonus(client, "user_001", "7", "GEM")),
            _later(topup(client, "player_b", "0.00000001", "XP", description="ünïcode ✓")),
            _later(purchase(client, "user_002", "499.99", metadata={"item": "sword ✓"})),
            _later(topup(client, "player_b", "999999.99")),
        ]


def _later(transaction: dict[str, Any]) -> dict[str, Any]:
    """Wait a little after a transaction, so that a range can fall between it and the next."""
    time.sleep(0.002)
    return transaction


def _expected(transactions: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """Each entry of the transactions, as the API shows it, keyed as the export prints it."""
    return Counter(
        (
            t["id"],
            t["transaction_type"],
            t["created_at"],
            e["account_type"],
            e["account_id"],
            t["asset_code"],
            e["amount"],
            e["balance_before"],
            e["balance_after"],
            t["user_id"],
            t["description"],
            json.dumps(t["metadata"], sort_keys=True),
        )
        for t in transactions
        for e in t["entries"]
    )


def _exported(rows: list[Row]) -> Counter[tuple[Any, ...]]:
    return Counter(
        tuple(
            json.dumps(row[field], sort_keys=True) if field == "metadata" else row[field]
            for field in EXPORT_FIELDS
            if field != "entry_id"
        )
        for row in rows
    )


def _export(database_url: str, since: str, until: str, output_format: str) -> list[Row]:
    result = wallet(
        "export", "--since", since, "--until", until, "--format", output_format,
        "--database-url", database_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "no progress bar when stderr is not a terminal"
    if output_format == "jsonl":
        return [json.loads(line) for line in result.stdout.splitlines()]
    reader = csv.DictReader(io.StringIO(result.stdout, newline=""))
    assert tuple(reader.fieldnames or ()) == EXPORT_FIELDS
    # CSV has no null: an empty user_id or description is the absent one. Metadata is one
    # column holding the object's JSON ("{}" when none).
    return [
        {**row, "entry_id": int(row["entry_id"]), "user_id": row["user_id"] or None,
         "description": row["description"] or None, "metadata": json.loads(row["metadata"])}
        for row in reader
    ]  # fmt: skip


@pytest.fixture
def story(settings: Settings) -> list[dict[str, Any]]:
    return _post_story(settings)


def test_every_entry_of_the_range_appears_once_with_exact_amounts(
    database_url: str, story: list[dict[str, Any]]
) -> None:
    for output_format in ("csv", "jsonl"):
        rows = _export(database_url, story[0]["created_at"], FAR_FUTURE, output_format)

        assert _exported(rows) == _expected(story), output_format
        assert len(rows) == 12
        ids = [row["entry_id"] for row in rows]
        assert ids == sorted(set(ids)), "in entry id order, each entry once"
        per_transaction = Counter(row["transaction_id"] for row in rows)
        assert set(per_transaction.values()) == {2}
        gem = next(r for r in rows if r["asset_code"] == "GEM" and r["account_type"] == "user")
        xp = next(r for r in rows if r["asset_code"] == "XP" and r["account_type"] == "user")
        assert (gem["amount"], gem["balance_after"]) == ("7", "7"), "scale 0: no decimal point"
        assert (xp["amount"], xp["balance_before"]) == ("0.00000001", "0.00000000")


def test_since_is_included_and_until_excluded(
    database_url: str, story: list[dict[str, Any]]
) -> None:
    since, until = story[1]["created_at"], story[4]["created_at"]

    for output_format in ("csv", "jsonl"):
        rows = _export(database_url, since, until, output_format)

        assert _exported(rows) == _expected(story[1:4]), output_format
        assert min(row["created_at"] for row in rows) == since


def test_an_empty_range_exports_nothing(database_url: str) -> None:
    for output_format, expected in (("csv", [",".join(EXPORT_FIELDS)]), ("jsonl", [])):
        result = wallet(
            "export", "--since", "2001-01-01", "--until", "2001-01-02",
            "--format", output_format, "--database-url", database_url,
        )  # fmt: skip

        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == expected, output_format


def test_the_output_file_holds_the_whole_export(
    database_url: str, story: list[dict[str, Any]], tmp_path: Path
) -> None:
    output = tmp_path / "ledger.jsonl"

    result = wallet(
        "export", "--since", story[0]["created_at"], "--until", FAR_FUTURE, "--format", "jsonl",
        "--output", str(output), "--database-url", database_url,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "Exported 12 entries" in result.stderr
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert _exported(rows) == _expected(story)
    assert list(tmp_path.iterdir()) == [output], "no partial file is left behind"


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("yesterday", "2026-01-01"),
        ("2026-01-01", "2026-13-01"),
        ("2026-01-01T25:00:00Z", "2026-01-02"),
        ("2026-01-02", "2026-01-01"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_bad_dates_are_usage_errors(tmp_path: Path, since: str, until: str) -> None:
    url = f"sqlite:///{tmp_path / 'never.db'}"

    result = wallet(
        "export", "--since", since, "--until", until, "--format", "csv", "--database-url", url
    )

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Error:" in result.stderr
    assert not (tmp_path / "never.db").exists(), "refused before the database is opened"


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("0001-01-01T00:00:00+23:59", "2026-01-01"),  # the year 0 in UTC
        ("2026-01-01", "9999-12-31T23:59:59-23:59"),  # the year 10000 in UTC
    ],
)
def test_instants_outside_the_years_1_to_9999_are_usage_errors(
    tmp_path: Path, since: str, until: str
) -> None:
    url = f"sqlite:///{tmp_path / 'never.db'}"

    result = wallet(
        "export", "--since", since, "--until", until, "--format", "csv", "--database-url", url
    )

    assert result.returncode == 2, result.stderr
    assert "years 1 to 9999" in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_a_missing_format_is_a_usage_error() -> None:
    result = wallet("export", "--since", "2026-01-01", "--until", "2026-01-02")

    assert result.returncode == 2
    assert "--format" in result.stderr


def test_pages_join_without_gap_or_overlap(
    database_url: str, story: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 entries in pages of 1, 2, 3 (the last page full) and 5 (the last page short)."""
    since = parse_instant_us(datetime.fromisoformat(story[0]["created_at"]))
    until = parse_instant_us(datetime.fromisoformat(FAR_FUTURE))
    database = open_database(Settings(database_url=database_url))
    try:
        for page_size in (1, 2, 3, 5):
            monkeypatch.setattr(export_service, "EXPORT_PAGE_SIZE", page_size)
            with export_ledger(database, since, until) as ledger:
                count = ledger.count()
                rows = list(ledger.rows())

            assert count == len(rows) == 12, page_size
            assert _exported(rows) == _expected(story), page_size
    finally:
        database.close()
