"""Failover: the primary's machine is lost under load, its synchronous standby is promoted, and
the service finds the new primary by itself, with nothing it acknowledged lost.

The test builds a primary and a synchronous standby (``tests/support/clusters.py``), starts two
service processes on libpq's multi-host DATABASE_URL (``target_session_attrs=read-write``), and
runs the bank workload against both. It SIGKILLs the primary's whole server at once, leaves the
service without a primary for NO_PRIMARY_S, then promotes the standby (``pg_ctl promote``).

What must hold: no answer is a 500 or a hang (the bank clients report any); while there is no
primary the service answers 503 ``unavailable``; both processes acknowledge writes again within
WRITES_RESUME_BOUND_S of the promotion; every acknowledged transaction is on the new primary;
every idempotency key replays its first answer on either process (a key whose answer was lost
is decided once); nothing is applied twice or unexplained; and ``wallet verify`` passes.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.clusters import ReplicatedPair, require_binaries
from tests.support.server import ServerProcess
from wallet.limits import DB_CONNECT_TIMEOUT_S, WRITE_RETRIES_MAX

from . import bank
from .checks import new_user

pytestmark = pytest.mark.slow

SERVERS = 2
CLIENTS_PER_SERVER = 3
USERS = 6
# The primary is killed once each process has had this many writes acknowledged.
ACKNOWLEDGED_BEFORE_KILL = 40
LOAD_START_TIMEOUT_S = 30.0
# How long the service runs with no primary at all, between the kill and the promotion.
NO_PRIMARY_S = 2.0
# Writes resume once a process reaches the new primary. The longest wait is that of a writer
# caught in a commit whose answer was lost: it asks whether the commit happened up to
# WRITE_RETRIES_MAX times, each waiting up to DB_CONNECT_TIMEOUT_S for a connection, before it
# answers 503 and takes the next batch, which then connects (at most DB_CONNECT_TIMEOUT_S per
# host). Doubled for a busy two-core machine.
WRITES_RESUME_BOUND_S = 2 * (WRITE_RETRIES_MAX + 2) * DB_CONNECT_TIMEOUT_S
# After the promotion the load runs until each process has acknowledged this many more writes.
ACKNOWLEDGED_AFTER_PROMOTION = 30


@pytest.fixture
def pair() -> Iterator[ReplicatedPair]:
    require_binaries()
    replicated = ReplicatedPair()
    try:
        replicated.create()
    except (RuntimeError, OSError, psycopg.Error) as error:
        replicated.remove()
        pytest.skip(f"cannot run a primary and a standby here: {error}")
    yield replicated
    replicated.remove()


def wait_for_acknowledged(journal: bank.Journal, count: int, timeout_s: float) -> float | None:
    """Seconds until ``journal`` holds ``count`` acknowledged writes; None past ``timeout_s``."""
    started = time.monotonic()
    while len(journal.acknowledged) < count:
        if time.monotonic() - started > timeout_s:
            return None
        time.sleep(0.02)
    return time.monotonic() - started


def merged(journals: list[bank.Journal]) -> bank.Journal:
    """One journal of every process's clients, for the audit of the shared database."""
    journal = bank.Journal()
    for each in journals:
        journal.sent |= each.sent
        journal.problems += each.problems
    return journal


def test_primary_lost_under_load_standby_promoted_nothing_acknowledged_lost(
    pair: ReplicatedPair, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    url = pair.url()
    servers = [ServerProcess(url, tmp_path / f"server{n}.log") for n in range(SERVERS)]
    try:
        for server in servers:
            server.start()
        users = [new_user() for _ in range(USERS)]
        bank.fund(servers[0].url, users)
        baseline = bank.stored(url)
        journals = [bank.Journal() for _ in servers]
        loads = [
            bank.Load(
                server.url,
                url,
                users,
                journal,
                clients=CLIENTS_PER_SERVER,
                seed=seed + n,
                snapshot_readers=1 if n == 0 else 0,
            ).start()
            for n, (server, journal) in enumerate(zip(servers, journals, strict=True))
        ]
        for journal in journals:
            under_way = wait_for_acknowledged(
                journal, ACKNOWLEDGED_BEFORE_KILL, LOAD_START_TIMEOUT_S
            )
            assert under_way is not None, (seed, "the load never got under way", journal.summary())

        pair.primary.kill()
        time.sleep(NO_PRIMARY_S)
        unavailable_before_promotion = [j.transient[(503, "unavailable")] for j in journals]
        at_promotion = [len(j.acknowledged) for j in journals]
        pair.standby.promote()
        resumed_s = [
            wait_for_acknowledged(journal, count + 1, WRITES_RESUME_BOUND_S)
            for journal, count in zip(journals, at_promotion, strict=True)
        ]
        for journal, count in zip(journals, at_promotion, strict=True):
            wait_for_acknowledged(
                journal, count + ACKNOWLEDGED_AFTER_PROMOTION, LOAD_START_TIMEOUT_S
            )
        for load in loads:
            load.finish()

        # No 500, no hang, nothing left undecided; 503 while there was no primary.
        for journal in journals:
            assert not journal.problems, (seed, journal.problems[:10])
            assert journal.timeouts == 0, (seed, journal.summary())
            assert not journal.unanswered, (seed, journal.summary())
        assert all(unavailable_before_promotion), (seed, unavailable_before_promotion)
        assert all(s is not None for s in resumed_s), (seed, resumed_s, WRITES_RESUME_BOUND_S)
        assert all(
            len(j.acknowledged) >= n + ACKNOWLEDGED_AFTER_PROMOTION
            for j, n in zip(journals, at_promotion, strict=True)
        ), (seed, [j.summary() for j in journals])

        # Every key, sent again to the other process: the first answer, marked replayed.
        problems: list[str] = []
        for n, journal in enumerate(journals):
            other = servers[(n + 1) % SERVERS]
            problems += bank.replay_all(other.url, journal, sorted(journal.sent))
        journal = merged(journals)
        problems += bank.audit(url, journal, baseline)
        assert problems == [], (seed, [j.summary() for j in journals], problems[:20])
    finally:
        for server in servers:
            server.kill()

    verified = subprocess.run(
        [sys.executable, "-m", "wallet.cli", "verify", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    resumed = ", ".join(f"{s:.2f} s" for s in resumed_s if s is not None)
    print(
        f"failover, seed {seed}: writes resumed {resumed} after the promotion"
        f" (bound {WRITES_RESUME_BOUND_S} s); 503s before it {unavailable_before_promotion}; "
        + "; ".join(j.summary() for j in journals)
    )
