"""The bank workload against a real server process: concurrent clients run every flow (top-up,
bonus, purchase, refund, hold place/capture/release, batch) with random users, amounts and retries
of the same key, while readers check every snapshot of the books; then the audit.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.support.server import ServerProcess

from .bank import Journal, Load, audit, fund, replay_all, stored
from .checks import new_user

pytestmark = pytest.mark.slow

CLIENTS = 6
LOAD_S = 4.0
USERS = 6


def test_bank_workload_keeps_the_books_and_loses_nothing(
    server: ServerProcess, database_url: str, seed: int
) -> None:
    users = [new_user() for _ in range(USERS)]
    fund(server.url, users)
    baseline = stored(database_url)
    journal = Journal()

    load = Load(server.url, database_url, users, journal, clients=CLIENTS, seed=seed).start()
    time.sleep(LOAD_S)
    load.finish()

    assert not journal.problems, (seed, journal.problems[:10])
    assert not journal.unanswered, (seed, journal.unanswered)
    assert journal.timeouts == 0, seed
    # Every flow ran and was decided, and readers read while it did.
    statuses = set(journal.statuses)
    assert {(200, None), (201, None)} <= statuses, (seed, journal.summary())
    paths = {s.path.rsplit("/", 1)[-1] for s in journal.sent.values() if s.status in (200, 201)}
    assert {"transaction", "batch", "holds", "capture", "release"} <= paths, (seed, paths)
    refunds = [s for s in journal.acknowledged.values() if (s.payload or {}).get("refund_of")]
    assert refunds, (seed, journal.summary())
    assert journal.reads > 10, journal.summary()
    assert journal.replays_checked > 0, journal.summary()

    problems = audit(database_url, journal, baseline)
    sample = random.Random(seed).sample(sorted(journal.sent), min(100, len(journal.sent)))
    problems += replay_all(server.url, journal, sample)
    assert problems == [], (seed, journal.summary(), problems[:20])
    print(f"bank workload, seed {seed}: {journal.summary()}")
