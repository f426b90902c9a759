"""Database faults while serving: the service answers 503 ``unavailable`` (with Retry-After,
never 500, never a hang, never the driver's message), writes nothing partial, and recovers by
itself once the cause is gone.

- PostgreSQL restarted (stopped as in a crash, ``pg_ctl stop -m immediate``, then started) in the
  middle of the bank workload. The test runs its own PostgreSQL cluster in a temporary
  directory, so the shared server is never touched.
- SQLite: the database file and its WAL made read-only (``chattr +i``, which binds root too and
  also refuses writes through descriptors the service already holds), then writable again.
- SQLite: the disk fills up (a small tmpfs, filled with a filler file), then space is freed.

No test here bounds how fast the service answers: a shared machine may be slow. "Never a hang"
is checked against ANSWER_BOUND_S, the longest the service's own timeouts let an answer take
(worked out below from src/wallet/limits.py), so only a service that waits beyond its
configuration fails it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.support import rawdb
from tests.support.clusters import PrivateCluster
from tests.support.databases import PG_ADMIN_URL
from tests.support.factories import problem
from tests.support.server import ServerProcess
from wallet.api import create_app
from wallet.config import Settings
from wallet.limits import (
    DB_CONNECT_TIMEOUT_S,
    DB_LOCK_TIMEOUT_MS,
    WRITE_RETRIES_MAX,
    WRITE_WAIT_TIMEOUT_S,
)

from . import bank
from .checks import new_key, new_user

pytestmark = pytest.mark.slow

# The outage lasts at least this long, and until the load's clients have been answered 503.
OUTAGE_S = 3.0

# The longest the service's configuration lets an answer take while the database refuses work
# (stopped, read-only, full). Its statements then fail at once; what takes time are the waits:
# - one wait for the database (DATABASE_WAIT_S): connecting or taking a pooled connection on
#   PostgreSQL (DB_CONNECT_TIMEOUT_S), a lock or a pooled reader on SQLite (DB_LOCK_TIMEOUT_MS);
# - before its command is queued, a request may wait twice: the API keys' refresh and the
#   command's own reads (its asset, its hold);
# - queued, it waits for the writer at most WRITE_WAIT_TIMEOUT_S, then is answered 503;
# - once the writer took it, its unit of work makes WRITE_RETRIES_MAX + 1 attempts, each with one
#   wait, and a commit that failed is checked at most WRITE_RETRIES_MAX times, each with one
#   wait; the writer pauses at most WRITER_PAUSE_MAX_S before each retry and each check
#   (service/writer.py).
# The sum leaves out the CPU time in between, which a shared machine stretches: the service
# computes for milliseconds per request, and SCHEDULING_ALLOWANCE_S covers that many times over.
DATABASE_WAIT_S = max(DB_CONNECT_TIMEOUT_S, DB_LOCK_TIMEOUT_MS / 1000)
WRITER_PAUSE_MAX_S = 1.0
UNIT_OF_WORK_BOUND_S = (2 * WRITE_RETRIES_MAX + 1) * DATABASE_WAIT_S + (
    2 * WRITE_RETRIES_MAX * WRITER_PAUSE_MAX_S
)
SCHEDULING_ALLOWANCE_S = 15.0
ANSWER_BOUND_S = (
    2 * DATABASE_WAIT_S + WRITE_WAIT_TIMEOUT_S + UNIT_OF_WORK_BOUND_S + SCHEDULING_ALLOWANCE_S
)
# Once the database is back, the write in flight may still fail (one answer); a write sent after
# it finds the database there.
RECOVERY_BOUND_S = 2 * ANSWER_BOUND_S


def topup_payload(user: str, description: str | None = None) -> dict[str, object]:
    payload: dict[str, object] = {
        "transaction_type": "topup",
        "user_id": user,
        "asset_code": "GC",
        "amount": "1.00",
    }
    if description is not None:
        payload["description"] = description
    return payload


def probe_outage(base_url: str, user: str) -> list[tuple[str, int, str | None, bool]]:
    """One write, one read and a health check: (what, status, code, Retry-After present).

    The client waits ANSWER_BOUND_S at most: a request that gets no answer by then raises
    httpx.ReadTimeout, and the test fails on a hang."""
    seen = []
    with httpx.Client(base_url=base_url, timeout=ANSWER_BOUND_S) as client:
        for what, call in (
            (
                "write",
                lambda: client.post(
                    "/transaction",
                    json=topup_payload(user),
                    headers={"Idempotency-Key": new_key()},
                ),
            ),
            ("read", lambda: client.get(f"/balance/{user}")),
            ("health", lambda: client.get("/health")),
        ):
            response = call()
            code = response.json().get("code") if response.status_code >= 400 else None
            seen.append(
                (what, response.status_code, code, bool(response.headers.get("Retry-After")))
            )
    return seen


def write_until_decided(base_url: str, journal: bank.Journal, user: str, deadline: float) -> int:
    """A top-up sent with one key, again after each 503, until it is decided or ``deadline``
    (monotonic) passes; recorded in ``journal`` so that the audit accounts for it. Its status."""
    sent = bank.Sent(new_key(), "POST", "/transaction", topup_payload(user))
    with journal.lock:
        journal.sent[sent.key] = sent
    with httpx.Client(base_url=base_url, timeout=ANSWER_BOUND_S) as client:
        while True:
            response = client.post(
                sent.path, json=sent.payload, headers={"Idempotency-Key": sent.key}
            )
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(bank.RETRY_PAUSE_S)
    if response.status_code != 503:
        sent.status, sent.body = response.status_code, response.json()
    return response.status_code


def test_postgresql_restarted_under_load(
    cluster: PrivateCluster, tmp_path: Path, seed: int
) -> None:
    server = ServerProcess(cluster.url(), tmp_path / "server.log").start()
    try:
        users = [new_user() for _ in range(4)]
        bank.fund(server.url, users)
        baseline = bank.stored(cluster.url())
        journal = bank.Journal()
        load = bank.Load(
            server.url,
            cluster.url(),
            users,
            journal,
            clients=4,
            seed=seed,
            client_timeout_s=ANSWER_BOUND_S,
        )
        load.start()
        time.sleep(1.0)

        cluster.stop("immediate")
        outage_start = time.monotonic()
        probes = []
        # A load client's request sent during the outage is answered 503 within ANSWER_BOUND_S.
        while time.monotonic() - outage_start < OUTAGE_S or (
            not journal.transient[(503, "unavailable")]
            and time.monotonic() - outage_start < OUTAGE_S + ANSWER_BOUND_S
        ):
            probes += probe_outage(server.url, users[0])
        cluster.start()

        recovered = write_until_decided(
            server.url, journal, users[0], time.monotonic() + RECOVERY_BOUND_S
        )
        load.finish(join_timeout_s=RECOVERY_BOUND_S)

        assert recovered == 201, (
            f"a write after the restart was answered {recovered}, not 201 "
            f"(503 until {RECOVERY_BOUND_S} s: the service did not reconnect by itself)"
        )
        for what, status, code, retry_after in probes:
            if what == "health":
                assert status in (200, 503), (what, status)
            else:
                assert (status, code) in {(503, "unavailable"), (200, None), (201, None)}, probes
            if status == 503:
                assert retry_after, (what, status)
        assert any(what == "write" and s == 503 for what, s, _, _ in probes), probes
        assert journal.transient[(503, "unavailable")] > 0, journal.summary()
        assert journal.timeouts == 0, journal.summary()
        assert not journal.unanswered, journal.summary()
        problems = bank.audit(cluster.url(), journal, baseline)
        assert problems == [], (journal.summary(), problems[:20])
        print(f"PostgreSQL restart: {len(probes)} probes, {journal.summary()}")
    finally:
        server.kill()


# --- SQLite: read-only file, full disk ----------------------------------------------------------


def check_fault_and_recovery(
    server: ServerProcess,
    database_url: str,
    break_it: object,
    repair_it: object,
    attempts: int,
) -> dict[str, int]:
    """Writes before, during and after a fault: 201 before, 503 (Retry-After) during, with
    nothing of a refused write stored, and 201 again after repair for the very same keys."""
    assert callable(break_it)
    assert callable(repair_it)
    user = new_user()
    baseline = bank.stored(database_url)
    counts = {"201": 0, "503": 0}
    refused: list[tuple[str, dict[str, object]]] = []
    # The client waits ANSWER_BOUND_S at most: no answer by then fails the test (httpx's
    # ReadTimeout), and so does a write still refused RECOVERY_BOUND_S after the repair.
    with httpx.Client(base_url=server.url, timeout=ANSWER_BOUND_S) as client:
        first = client.post("/transaction", json=topup_payload(user))
        assert first.status_code == 201, first.text
        break_it()
        for _ in range(attempts):
            key, payload = new_key(), topup_payload(user, "x" * 500)
            response = client.post("/transaction", json=payload, headers={"Idempotency-Key": key})
            assert response.status_code in (201, 503), response.text
            counts[str(response.status_code)] += 1
            if response.status_code == 503:
                assert response.json()["code"] == "unavailable", response.text
                assert response.headers.get("Retry-After"), response.headers
                refused.append((key, payload))
                if len(refused) >= 3:
                    break
        assert refused, f"no write was refused during the fault: {counts}"
        read = client.get(f"/balance/{user}/GC")
        assert read.status_code in (200, 503), read.text
        # Nothing of a refused write is stored: not its key, not a transaction.
        now = bank.stored(database_url)
        assert not {k for k, _ in refused} & set(now.keys)
        repair_it()
        deadline = time.monotonic() + RECOVERY_BOUND_S
        for key, payload in refused:
            while True:
                response = client.post(
                    "/transaction", json=payload, headers={"Idempotency-Key": key}
                )
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert response.status_code == 201, response.text
            assert response.headers.get("Idempotent-Replayed") is None, "decided only now"
    journal = bank.Journal()
    problems = bank.audit(database_url, journal, baseline)
    # The audit's journal is empty here: the new keys are this test's own, so drop those lines.
    problems = [p for p in problems if not p.startswith("never sent")]
    assert problems == [], problems
    return counts


def chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_file_made_read_only_while_serving(server: ServerProcess, database_url: str) -> None:
    path = Path(database_url.removeprefix("sqlite:///"))
    files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    try:
        chattr("+i", *files)
        chattr("-i", *files)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"the file system does not support the immutable flag: {error.stderr!r}")
    try:
        counts = check_fault_and_recovery(
            server,
            database_url,
            lambda: chattr("+i", *files),
            lambda: chattr("-i", *files),
            attempts=20,
        )
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=False)
    print(f"read-only SQLite file: {counts}")


@pytest.fixture
def small_disk() -> Iterator[Path]:
    mountpoint = Path(tempfile.mkdtemp(prefix="wallet-full-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {result.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)
    mountpoint.rmdir()


def fill(directory: Path) -> Path:
    """A filler file that takes every free byte of the file system."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 512):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(descriptor)
    return filler


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_disk_full_while_serving(
    database_url: str, small_disk: Path, tmp_path: Path
) -> None:
    path = small_disk / "wallet.db"
    shutil.copyfile(database_url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    server = ServerProcess(url, tmp_path / "server.log").start()
    fillers: list[Path] = []
    try:
        counts = check_fault_and_recovery(
            server,
            url,
            lambda: fillers.append(fill(small_disk)),
            lambda: [os.remove(f) for f in fillers],
            attempts=2_000,
        )
    finally:
        server.kill()
    print(f"full disk: {counts}")


# --- what a failure tells the client ------------------------------------------------------------


def refuse_connections(database_url: str) -> Callable[[], None]:
    """Make the database fail under the service, with a driver message naming internals; the
    function that repairs it."""
    if database_url.startswith("sqlite"):
        with rawdb.connect(database_url) as raw:
            raw.run("ALTER TABLE accounts RENAME TO accounts_away")

        def repair_sqlite() -> None:
            with rawdb.connect(database_url) as raw:
                raw.run("ALTER TABLE accounts_away RENAME TO accounts")

        return repair_sqlite
    name = database_url.rpartition("/")[2]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )

    def repair_postgresql() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    return repair_postgresql


def test_a_database_failure_is_answered_without_its_internals(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A 503 says that the database failed, and gives the request id; what the driver said
    (tables, hosts, ports, database names) goes to the log only."""
    database_url = settings.database_url
    internals = ["no such table", "accounts", "127.0.0.1", "5432", database_url.rpartition("/")[2]]
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        repair = refuse_connections(database_url)
        try:
            read = client.get("/balance/user_001/GC", headers={"X-Request-ID": "trace-read"})
            write = client.post(
                "/transaction",
                json=topup_payload("user_001"),
                headers={"X-Request-ID": "trace-write"},
            )
        finally:
            repair()
    for response, request_id in ((read, "trace-read"), (write, "trace-write")):
        assert problem(response, 503, "unavailable")["request_id"] == request_id
        leaked = [word for word in internals if word in response.text]
        assert leaked == [], response.text
    driver_said = "no such table" if database_url.startswith("sqlite") else "accepting connections"
    assert driver_said in caplog.text
