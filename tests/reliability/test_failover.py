"""Failover: the primary's machine is lost under load, its synchronous standby is promoted, and
the service finds the new primary by itself, with nothing it acknowledged lost.

The test builds a primary and a synchronous standby (``tests/support/clusters.py``), starts two
service processes on libpq's multi-host DATABASE_URL (``target_session_attrs=read-write``), and
runs the bank workload against both. It SIGKILLs the primary's whole server at once, leaves the
service without a primary until each process has refused a read, then promotes the standby
(``pg_ctl promote``).

What must hold: no answer is a 500 or a hang (the bank clients report any); while there is no
primary, reads are refused with 503 ``unavailable`` and Retry-After (writes wait while their
writer finds out whether the commit in doubt happened, within the same bound); both processes
acknowledge writes and answer reads again within RESUME_BOUND_S of the promotion; every
acknowledged transaction is on the new primary; every idempotency key replays its first answer
on either process (a key whose answer was lost is decided once); nothing is applied twice or
unexplained; and ``wallet verify`` passes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.clusters import ReplicatedPair
from tests.support.server import ServerProcess
from wallet.limits import DB_CONNECT_TIMEOUT_S, WRITE_RETRIES_MAX

from . import bank
from .checks import http_client, new_user

pytestmark = pytest.mark.slow

SERVERS = 2
CLIENTS_PER_SERVER = 3
USERS = 6
# The primary is killed once each process has had this many writes acknowledged.
ACKNOWLEDGED_BEFORE_KILL = 40
LOAD_START_TIMEOUT_S = 30.0
# Writes and reads resume once a process reaches the new primary. The longest wait is that of a
# writer caught in a commit whose answer was lost: it asks whether the commit happened up to
# WRITE_RETRIES_MAX times, each waiting up to DB_CONNECT_TIMEOUT_S for a reader's connection,
# before it answers 503 and takes the next batch, which then connects (at most
# DB_CONNECT_TIMEOUT_S per host). Doubled for a busy two-core machine. It also bounds a client's
# wait for one answer, since the requests behind that commit wait as long.
RESUME_BOUND_S = 2 * (WRITE_RETRIES_MAX + 2) * DB_CONNECT_TIMEOUT_S
# After the promotion the load runs until each process has acknowledged this many more writes.
ACKNOWLEDGED_AFTER_PROMOTION = 30


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def seconds_until(since: float, condition: Callable[[], bool], timeout_s: float) -> float | None:
    """Seconds from ``since`` until ``condition`` holds; None if it does not within
    ``timeout_s`` of ``since``."""
    if not wait_until(condition, timeout_s - (time.monotonic() - since)):
        return None
    return time.monotonic() - since


def acknowledged(journal: bank.Journal, count: int) -> Callable[[], bool]:
    return lambda: len(journal.acknowledged) >= count


def reads(base_url: str, user_id: str) -> bool:
    """Whether a read of a balance is answered (200) now."""
    with http_client(base_url) as client:
        return client.get(f"/balance/{user_id}").status_code == 200


def read_until_refused(base_url: str, user_id: str) -> list[tuple[int, str | None, bool]]:
    """Read a balance until the service refuses (there is no primary to read from); every answer
    as (status, code, Retry-After present). Empty if no refusal came in RESUME_BOUND_S."""
    answers = []
    deadline = time.monotonic() + RESUME_BOUND_S
    with http_client(base_url) as client:
        while time.monotonic() < deadline:
            response = client.get(f"/balance/{user_id}")
            code = response.json().get("code") if response.status_code >= 400 else None
            answers.append((response.status_code, code, "Retry-After" in response.headers))
            if response.status_code == 503:
                return answers
    return []


def seconds(values: Sequence[float | None]) -> str:
    return ", ".join("never" if value is None else f"{value:.2f} s" for value in values)


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
                client_timeout_s=RESUME_BOUND_S,
                seed=seed + n,
                snapshot_readers=1 if n == 0 else 0,
            ).start()
            for n, (server, journal) in enumerate(zip(servers, journals, strict=True))
        ]
        for journal in journals:
            under_way = wait_until(
                acknowledged(journal, ACKNOWLEDGED_BEFORE_KILL), LOAD_START_TIMEOUT_S
            )
            assert under_way, (seed, "the load never got under way", journal.summary())

        # The standby's WAL receiver stops, so a commit in flight waits for it; then the primary's
        # machine is lost. That commit is in doubt: its answer never came, and the new primary
        # has it or not, as its WAL reached the standby's socket before the end or not. Either
        # way the writer must find out there, and apply it once.
        receiver = pair.hold_back_standby()
        try:
            in_doubt = wait_until(
                lambda: pair.commits_waiting_for_standby() > 0, LOAD_START_TIMEOUT_S
            )
            pair.primary.kill()
        finally:
            os.kill(receiver, signal.SIGCONT)
        assert in_doubt, (seed, "no commit was waiting for the standby when the primary died")
        with ThreadPoolExecutor(SERVERS) as pool:
            outage = list(
                pool.map(lambda server: read_until_refused(server.url, users[0]), servers)
            )
        at_promotion = [len(j.acknowledged) for j in journals]
        pair.promote_standby()
        promoted = time.monotonic()
        writes_resumed_s = [
            seconds_until(promoted, acknowledged(journal, count + 1), RESUME_BOUND_S)
            for journal, count in zip(journals, at_promotion, strict=True)
        ]
        reads_resumed_s = [
            seconds_until(promoted, lambda url=server.url: reads(url, users[0]), RESUME_BOUND_S)
            for server in servers
        ]
        for journal, count in zip(journals, at_promotion, strict=True):
            wait_until(
                acknowledged(journal, count + ACKNOWLEDGED_AFTER_PROMOTION), LOAD_START_TIMEOUT_S
            )
        for load in loads:
            load.finish()

        # No 500, no hang, nothing left undecided; 503 while there was no primary.
        for journal in journals:
            assert not journal.problems, (seed, journal.problems[:10])
            assert journal.timeouts == 0, (seed, journal.summary())
            assert not journal.unanswered, (seed, journal.summary())
        for answers in outage:
            assert answers, (seed, "a read was answered while there was no primary", outage)
            assert set(answers) == {(503, "unavailable", True)}, (seed, outage)
        assert None not in writes_resumed_s, (seed, "writes did not resume", writes_resumed_s)
        assert None not in reads_resumed_s, (seed, "reads did not resume", reads_resumed_s)
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
    print(
        f"failover, seed {seed}: writes resumed {seconds(writes_resumed_s)} and reads"
        f" {seconds(reads_resumed_s)} after the promotion (bound {RESUME_BOUND_S} s);"
        f" reads before it {outage}; " + "; ".join(j.summary() for j in journals)
    )
