"""SQLite: the group-commit writer's WAL is copied into the database file by a thread of its own.

What an operator can see: soon after writes stop, the database file alone (a copy of it without
its WAL) holds every acknowledged transaction, although the WAL is far below the size at which
the writer would checkpoint itself; and the thread ends with the service.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.reliability.checks import opened
from wallet.limits import SQLITE_WAL_FILE_BYTES_MAX, SQLITE_WAL_PAGES_MAX
from wallet.storage.database import sqlite_path

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

CATCH_UP_WAIT_S = 10.0


def transactions_in(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        row = connection.execute("SELECT count(*) FROM transactions").fetchone()
    return int(row[0])


def transactions_in_file_alone(database: Path, scratch: Path) -> int | None:
    """The transactions a copy of the database file holds without its WAL: those checkpointed.
    None if the copy caught a checkpoint halfway (its pages then do not yet agree)."""
    copy = scratch / "without-wal.db"
    for leftover in scratch.glob("without-wal.db*"):
        leftover.unlink()
    shutil.copyfile(database, copy)
    try:
        return transactions_in(copy)
    except sqlite3.DatabaseError:
        return None


def wal_pages(database: Path) -> int:
    """The WAL file's size in frames (a 32-byte header, then a 24-byte header per page)."""
    wal = database.with_name(database.name + "-wal")
    if not wal.exists():
        return 0
    with closing(sqlite3.connect(database)) as connection:
        (page_size,) = connection.execute("PRAGMA page_size").fetchone()
    return (wal.stat().st_size - 32) // (page_size + 24)


def checkpointers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "wallet-checkpointer"}


def test_committed_pages_reach_the_database_file_without_the_writer(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    database = Path(sqlite_path(database_url))
    for number in range(30):
        body = {
            "transaction_type": "topup",
            "user_id": f"player_{number % 7}",
            "asset_code": "GC",
            "amount": "2.50",
        }
        assert client.post("/transaction", json=body).status_code == 201
    expected = transactions_in(database)  # read through the WAL: everything acknowledged
    assert expected >= 30
    # Far below the writer's own bound: only the checkpointer can have copied these pages.
    assert wal_pages(database) < SQLITE_WAL_PAGES_MAX // 4

    deadline = time.monotonic() + CATCH_UP_WAIT_S
    alone = transactions_in_file_alone(database, tmp_path)
    while alone != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        alone = transactions_in_file_alone(database, tmp_path)
    assert alone == expected


def test_the_checkpointer_ends_with_the_service(client: TestClient) -> None:
    body = {"transaction_type": "topup", "user_id": "p1", "asset_code": "GC", "amount": "1"}
    assert client.post("/transaction", json=body).status_code == 201
    serving = checkpointers()
    assert serving
    client.__exit__(None, None, None)
    assert not serving & checkpointers()


def test_the_writer_checkpoints_itself_only_as_a_bound(database_url: str) -> None:
    with opened(database_url) as database:
        writer = database.connect_writer(sustained=True)
        try:
            assert writer.session.one("PRAGMA wal_autocheckpoint") == (SQLITE_WAL_PAGES_MAX,)
            limit = writer.session.one("PRAGMA journal_size_limit")
            assert limit == (SQLITE_WAL_FILE_BYTES_MAX,)
        finally:
            writer.close()
        # A connection for a few units of work (the CLI's) keeps SQLite's defaults, no thread.
        before = checkpointers()
        writer = database.connect_writer()
        try:
            assert writer.session.one("PRAGMA wal_autocheckpoint") == (1000,)
            assert checkpointers() == before
        finally:
            writer.close()
