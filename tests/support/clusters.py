"""Private PostgreSQL clusters for the tests that stop, kill or replace the database server: one
cluster, or a primary with a synchronous standby, in a temporary directory on free ports, run as
the ``postgres`` OS user with PostgreSQL 15's own binaries. The shared server is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.server import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The standby's name as the primary knows it (its cluster_name, which its WAL receiver reports
# as application_name), and the primary's synchronous_standby_names.
STANDBY_NAME = "standby"
COMMAND_TIMEOUT_S = 60
STREAMING_TIMEOUT_S = 30.0


def cannot_run(reason: str) -> None:
    """Skip a test that needs private clusters where they cannot run; in CI, fail it."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI requires the private PostgreSQL cluster tests)")
    pytest.skip(reason)


def require_binaries() -> None:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        cannot_run(f"needs PostgreSQL 15 binaries in {PG_BIN} and runuser")


def as_postgres(*argv: str) -> str:
    """Run a PostgreSQL program as the ``postgres`` OS user (the server refuses to run as root)."""
    command = ["runuser", "-u", "postgres", "--", *argv]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")
    return result.stdout


def private_directory(prefix: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.chown(directory, "postgres", "postgres")
    return directory


def _running_in_group(group: int) -> bool:
    """Whether a process of process group ``group`` is alive (a zombie is not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name, in parentheses, may hold spaces: split after it.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it exited meanwhile
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state != "Z":
            return True
    return False


class PrivateCluster:
    """One PostgreSQL server: its data directory, its port, and the means to stop or kill it."""

    def __init__(self, directory: Path | None = None, name: str = "data") -> None:
        # A cluster deletes its directory when it made it itself (not one of a pair's).
        self.owns_dir = directory is None
        self.dir = directory or private_directory("wallet-pg-")
        self.data = self.dir / name
        self.log = self.dir / f"{name}.log"
        self.port = free_port()
        self.settings: dict[str, str] = {}
        self.killed = False

    def init(self) -> PrivateCluster:
        as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"
        )
        self.start()
        self.execute("CREATE DATABASE wallet", database="postgres")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log)]
        try:
            as_postgres(*pg_ctl, "-w", "start")
        except RuntimeError as error:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{error}\n{self.log}:\n{log}") from None

    def stop(self, mode: str = "immediate") -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the whole server at once, as when its machine is lost: the postmaster and every
        process it started (pg_ctl makes the postmaster the leader of a process group of its own),
        so that no backend says goodbye to its client and nothing more reaches a standby. Returns
        once none of them runs any more: a signal takes effect only when its process is next
        scheduled, and until then a backend could still answer."""
        group = self.postmaster_pid()
        os.killpg(group, signal.SIGKILL)
        self.killed = True
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while _running_in_group(group):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the processes of group {group} outlived SIGKILL")
            time.sleep(0.01)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def promote(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "promote")

    def url(self, database: str = "wallet") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def base_backup(self, target: PrivateCluster, *options: str) -> None:
        """``pg_basebackup`` of this running server into ``target``'s data directory."""
        as_postgres(
            str(PG_BIN / "pg_basebackup"),
            "-D",
            str(target.data),
            "-d",
            self.url("postgres"),
            "-X",
            "stream",
            "-c",
            "fast",
            *options,
        )

    def execute(self, sql: str, database: str = "wallet") -> list[tuple[object, ...]]:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def remove(self) -> None:
        """Stop the server if it still runs, and delete its files."""
        self.halt()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def halt(self) -> None:
        """Stop the server at once if it runs. After a kill, free what only a clean stop
        releases: the System V shared memory segment (its id is on postmaster.pid's seventh
        line)."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        if not self.killed:
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
            return
        with contextlib.suppress(ValueError, IndexError):
            shmid = pid_file.read_text().split("\n")[6].split()[1]
            subprocess.run(["ipcrm", "-m", shmid], capture_output=True, check=False)
        # So are the socket and its lock file, which name the dead postmaster's pid: a server
        # started later on this port would refuse to start if another process had that pid now.
        for leftover in (pid_file, *self.dir.glob(f".s.PGSQL.{self.port}*")):
            leftover.unlink(missing_ok=True)


class ReplicatedPair:
    """A primary and a synchronous standby built from it with ``pg_basebackup -R``.

    The primary names the standby in ``synchronous_standby_names`` (set once the standby streams,
    with ``synchronous_commit=on``), so a commit returns only when the standby has flushed its WAL.
    The standby has no such setting: promoted, it commits alone until a new standby is attached.
    The two keep their ports whatever their roles, so the service's URL holds across failovers.
    """

    def __init__(self) -> None:
        self.dir = private_directory("wallet-pg-pair-")
        self.primary = PrivateCluster(self.dir, "node1")
        self.standby = PrivateCluster(self.dir, "node2")

    def create(self) -> ReplicatedPair:
        self.primary.init()
        self._attach_standby()
        return self

    def _attach_standby(self) -> None:
        self.primary.base_backup(self.standby, "-R")
        self.standby.settings = {"cluster_name": STANDBY_NAME, "hot_standby": "on"}
        self.standby.start()
        self._set_primary("synchronous_standby_names", f"'{STANDBY_NAME}'")
        self._set_primary("synchronous_commit", "'on'")
        self.wait_synchronous()

    def _set_primary(self, name: str, value: str | None) -> None:
        sql = (
            f"ALTER SYSTEM RESET {name}" if value is None else f"ALTER SYSTEM SET {name} = {value}"
        )
        self.primary.execute(sql, database="postgres")
        self.primary.execute("SELECT pg_reload_conf()", database="postgres")

    def promote_standby(self) -> None:
        """The failover (the primary is gone): the standby becomes the primary. It commits alone,
        without waiting for a standby, until ``rebuild_standby``."""
        self.standby.promote()
        self.primary, self.standby = self.standby, self.primary
        # A standby built from a primary copies its synchronous_standby_names.
        self._set_primary("synchronous_standby_names", None)

    def rebuild_standby(self) -> None:
        """A new synchronous standby from the new primary, where the lost primary was."""
        self.standby.halt()
        shutil.rmtree(self.standby.data)
        self.standby.killed = False
        self._attach_standby()

    def wait_synchronous(self) -> None:
        deadline = time.monotonic() + STREAMING_TIMEOUT_S
        while self.replication_state() != ("streaming", "sync"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby is not synchronous: {self.replication_state()}")
            time.sleep(0.1)

    def replication_state(self) -> tuple[object, ...] | None:
        rows = self.primary.execute(
            "SELECT state, sync_state FROM pg_stat_replication"
            f" WHERE application_name = '{STANDBY_NAME}'",
            database="postgres",
        )
        return rows[0] if rows else None

    def hold_back_standby(self) -> int:
        """Stop the standby's WAL receiver (SIGSTOP): from now on a commit on the primary waits for
        the standby. Returns its pid, for SIGCONT."""
        rows = self.standby.execute("SELECT pid FROM pg_stat_wal_receiver", database="postgres")
        assert rows, "the standby has no WAL receiver"
        pid = int(str(rows[0][0]))
        os.kill(pid, signal.SIGSTOP)
        return pid

    def commits_waiting_for_standby(self) -> int:
        rows = self.primary.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event = 'SyncRep' AND application_name = 'wallet'",
            database="postgres",
        )
        return int(str(rows[0][0]))

    def url(self, database: str = "wallet") -> str:
        """libpq's multi-host form: whichever of the two accepts writes."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def remove(self) -> None:
        self.primary.halt()
        self.standby.halt()
        shutil.rmtree(self.dir, ignore_errors=True)
