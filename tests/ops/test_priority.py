"""The writer thread runs at a higher scheduling priority than the event loop (Linux).

A real server process: the event loop's thread (the process's main thread) yields
``WALLET_LOOP_NICE`` steps, the writer thread (started before it yields) keeps the process's
nice value, and ``WALLET_LOOP_NICE=0`` leaves every thread where it was. Read from /proc, as an
operator would (Python names its threads only for itself, so the writer is told apart by its
priority: the threads the loop starts later inherit the loop's).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="thread priorities are read from /proc"),
]


def thread_nices(pid: int) -> dict[int, int]:
    """Each thread's id and nice value (field 19 of /proc/<pid>/task/<tid>/stat)."""
    nices: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        nices[int(task.name)] = int(fields[16])
    return nices


@pytest.mark.parametrize("loop_nice", [10, 0])
def test_the_event_loop_yields_to_the_writer(tmp_path: Path, loop_nice: int) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    database_url = f"sqlite:///{tmp_path / 'wallet.db'}"
    server = ServerProcess(database_url, tmp_path / "server.log", WALLET_LOOP_NICE=str(loop_nice))
    server.start()
    try:
        body = {"transaction_type": "topup", "user_id": "u1", "asset_code": "GC", "amount": "1"}
        assert httpx.post(f"{server.url}/transaction", json=body).status_code == 201
        assert server.process is not None
        pid = server.process.pid
        nices = thread_nices(pid)
    finally:
        server.terminate()
    assert nices.pop(pid) == min(base + loop_nice, 19)
    # The writer (and only threads started before the loop yielded) kept the process's value.
    assert base in nices.values()
    assert all(nice in (base, min(base + loop_nice, 19)) for nice in nices.values())
