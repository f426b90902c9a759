"""Whether the service can do its work: the database's round trip, for GET /health."""

import time

from wallet.storage import Database


def ping(database: Database) -> float:
    """Query the database; the round trip in milliseconds. Raises Unavailable."""
    started = time.perf_counter()
    with database.reading() as session:
        session.one("SELECT 1")
    return (time.perf_counter() - started) * 1000
