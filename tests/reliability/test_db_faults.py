"""Database faults while serving: the service answers 503 ``unavailable`` (with Retry-After,
never 500, never a hang, never the driver's message), writes nothing partial, and recovers by
itself once the cause is gone.

- PostgreSQL restarted (stopped as in a crash, ``pg_ctl stop -m immediate``, then started) in the
  middle of the bank workload. The test runs its own PostgreSQL cluster in a temporary
  directory, so the shared server is never touched.
- SQLite: the database file and its WAL made read-only (``chattr +i``, which binds root too and
  also refuses writes through descriptors the service already holds), then writable again.
- SQLite: the disk fills up (a small tmpfs, filled with a filler file), then space is freed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
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
from tests.support.databases import PG_ADMIN_URL
from tests.support.factories import problem
from tests.support.server import ServerProcess, free_port
from wallet.api import create_app
from wallet.config import Settings

from . import bank
from .checks import new_key, new_user

pytestmark = pytest.mark.slow

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OUTAGE_S = 3.0
# No answer may take longer than this, outage or not (reads wait up to the pool's connect
# timeout, 5 s, before they answer 503).
ANSWER_BOUND_S = 12.0
RECOVERY_TIMEOUT_S = 30.0


# --- a private PostgreSQL cluster ---------------------------------------------------------------


class PrivateCluster:
    """initdb + pg_ctl in a temporary directory, run as the ``postgres`` OS user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wallet-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")

    def _as_postgres(self, *argv: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")

    def init(self) -> PrivateCluster:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"
        )
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute("CREATE DATABASE wallet")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        log = str(self.dir / "postgresql.log")
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "wallet") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("fast")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"needs PostgreSQL 15 binaries in {PG_BIN} and runuser")
    private = PrivateCluster()
    try:
        private.init()
    except (RuntimeError, OSError, psycopg.Error) as error:
        private.remove()
        pytest.skip(f"cannot run a private PostgreSQL cluster here: {error}")
    yield private
    private.remove()


def probe_outage(base_url: str, user: str) -> list[tuple[str, int, str | None, float, bool]]:
    """One write and one read: (what, status, code, seconds, Retry-After present)."""
    seen = []
    with httpx.Client(base_url=base_url, timeout=bank.CLIENT_TIMEOUT_S) as client:
        for what, call in (
            (
                "write",
                lambda: client.post(
                    "/transaction",
                    json={
                        "transaction_type": "topup",
                        "user_id": user,
                        "asset_code": "GC",
                        "amount": "1.00",
                    },
                    headers={"Idempotency-Key": new_key()},
                ),
            ),
            ("read", lambda: client.get(f"/balance/{user}")),
            ("health", lambda: client.get("/health")),
        ):
            start = time.monotonic()
            response = call()
            code = response.json().get("code") if response.status_code >= 400 else None
            seen.append(
                (
                    what,
                    response.status_code,
                    code,
                    time.monotonic() - start,
                    bool(response.headers.get("Retry-After")),
                )
            )
    return seen


def test_postgresql_restarted_under_load(cluster: PrivateCluster, tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    server = ServerProcess(cluster.url(), tmp_path / "server.log").start()
    try:
        users = [new_user() for _ in range(4)]
        bank.fund(server.url, users)
        baseline = bank.stored(cluster.url())
        journal = bank.Journal()
        load = bank.Load(server.url, cluster.url(), users, journal, clients=4, seed=seed)
        load.start()
        time.sleep(1.0)

        cluster.stop("immediate")
        outage_start = time.monotonic()
        probes = []
        while time.monotonic() - outage_start < OUTAGE_S:
            probes += probe_outage(server.url, users[0])
        cluster.start()

        acknowledged = len(journal.acknowledged)
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        while len(journal.acknowledged) < acknowledged + 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        recovered = len(journal.acknowledged) >= acknowledged + 20
        load.finish()

        assert recovered, (seed, "the service did not reconnect by itself", journal.summary())
        for what, status, code, seconds, retry_after in probes:
            assert seconds < ANSWER_BOUND_S, (what, status, seconds)
            if what == "health":
                assert status in (200, 503), (what, status)
            else:
                assert (status, code) in {(503, "unavailable"), (200, None), (201, None)}, probes
            if status == 503:
                assert retry_after, (what, status)
        assert any(s == 503 for _, s, _, _, _ in probes), probes
        assert journal.transient[(503, "unavailable")] > 0, journal.summary()
        assert journal.timeouts == 0, journal.summary()
        assert journal.latency_max_s < ANSWER_BOUND_S, journal.summary()
        assert not journal.unanswered, journal.summary()
        problems = bank.audit(cluster.url(), journal, baseline)
        assert problems == [], (seed, journal.summary(), problems[:20])
        print(f"PostgreSQL restart, seed {seed}: {len(probes)} probes, {journal.summary()}")
    finally:
        server.kill()


# --- SQLite: read-only file, full disk ----------------------------------------------------------


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
    with httpx.Client(base_url=server.url, timeout=bank.CLIENT_TIMEOUT_S) as client:
        first = client.post("/transaction", json=topup_payload(user))
        assert first.status_code == 201, first.text
        break_it()
        for _ in range(attempts):
            key, payload = new_key(), topup_payload(user, "x" * 500)
            start = time.monotonic()
            response = client.post("/transaction", json=payload, headers={"Idempotency-Key": key})
            assert time.monotonic() - start < ANSWER_BOUND_S
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
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
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
