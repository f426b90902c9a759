"""Backups: a ``pg_basebackup`` taken while the service writes, restored as a server of its own,
holds every write acknowledged before the backup began, and ``wallet verify`` finds its books
whole (README, "Production on PostgreSQL": backups and restores).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.clusters import PrivateCluster
from tests.support.server import ServerProcess

from . import bank
from .checks import new_user

pytestmark = pytest.mark.slow

CLIENTS = 3
USERS = 4
ACKNOWLEDGED_BEFORE_BACKUP = 40
LOAD_START_TIMEOUT_S = 30.0


def test_a_base_backup_taken_under_load_restores_and_verifies(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    server = ServerProcess(cluster.url(), tmp_path / "server.log").start()
    restored = PrivateCluster(name="restored")
    try:
        users = [new_user() for _ in range(USERS)]
        bank.fund(server.url, users)
        journal = bank.Journal()
        load = bank.Load(server.url, cluster.url(), users, journal, clients=CLIENTS, seed=seed)
        load.start()
        deadline = time.monotonic() + LOAD_START_TIMEOUT_S
        while len(journal.acknowledged) < ACKNOWLEDGED_BEFORE_BACKUP:
            assert time.monotonic() < deadline, (seed, "no load", journal.summary())
            time.sleep(0.02)
        acknowledged = journal.acknowledged
        try:
            cluster.base_backup(restored)
        finally:
            load.finish()
        assert not journal.problems, (seed, journal.problems[:10])

        restored.start()
        in_backup = bank.stored(restored.url())
        missing = [
            key
            for key, sent in acknowledged.items()
            if key not in in_backup.keys
            or not bank.transaction_ids(sent.body or {}) <= set(in_backup.transactions)
        ]
        assert missing == [], (seed, "acknowledged before the backup, not in it", missing[:10])
        verified = subprocess.run(
            [sys.executable, "-m", "wallet.cli", "verify", "--database-url", restored.url()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        print(
            f"backup under load, seed {seed}: {len(acknowledged)} writes acknowledged before it"
            f" all restored, {len(in_backup.transactions)} transactions in it;"
            f" {verified.stdout.strip()}"
        )
    finally:
        server.kill()
        restored.remove()
