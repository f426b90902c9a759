"""SQLite: closing the database (the service stopping) while a reader on another thread is in
the middle of a statement lets that statement finish on its connection, and closes the
connection when the reader gives it back; the database refuses new reads once closed.

Before, close() closed every connection at once, under a reader still stepping one: the read
failed ("Cannot operate on a closed database"), or the whole process died of a segmentation
fault (seen in CI when a hold sweep was reading as a test's app stopped).
"""

from __future__ import annotations

import threading
import time

import pytest

from wallet.config import Settings
from wallet.domain.errors import Unavailable
from wallet.storage.database import SQLiteDatabase

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

ROWS = 3_000_000
SLOW_COUNT = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    " SELECT count(*) FROM n"
)


def test_a_read_in_progress_outlives_the_close_and_later_reads_are_refused(
    database_url: str,
) -> None:
    database = SQLiteDatabase(Settings(database_url=database_url))
    reading = threading.Event()
    outcome: list[object] = []

    def read() -> None:
        try:
            with database.reading() as session:
                reading.set()
                row = session.one(SLOW_COUNT, (ROWS,))
                outcome.append(None if row is None else row[0])
        except Exception as error:  # reported by the test below
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert reading.wait(10)
    time.sleep(0.05)  # the count is under way
    database.close()
    reader.join(60)

    assert not reader.is_alive()
    assert outcome == [ROWS]
    with pytest.raises(Unavailable), database.reading():
        pass
