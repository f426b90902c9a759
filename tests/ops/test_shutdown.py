"""Graceful shutdown, on both backends: SIGTERM under load cuts no request off and loses nothing.

Several threads, each with its own persistent HTTP connection, post keyed top-ups to a real
server process; SIGTERM arrives mid-load. Every request must then end in one of two ways:
- a complete HTTP answer, or
- refused before it was sent (the listening socket is closed: ``ConnectError``).
A request that was sent and then lost its connection without an answer (``RemoteProtocolError``,
``ReadError``, ``WriteError`` on a connection that was open) is a cut, and fails the test: the
caller cannot know whether its transaction happened.

The process must exit within the graceful-shutdown bound plus a margin, and after a restart on
the same database every acknowledged transaction is there, nothing else was written, and the
books balance.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.receiver import wait_until
from tests.support.server import ServerProcess
from tests.support.tamper import rows
from wallet.config import Settings
from wallet.limits import SHUTDOWN_GRACE_S
from wallet.service.verify import verify_ledger
from wallet.storage import open_database

WORKERS = 6
LOAD_BEFORE_SIGTERM_S = 1.0
# The process exits within the grace for in-flight requests, plus the writer's drain and the
# interpreter's exit.
EXIT_BOUND_S = SHUTDOWN_GRACE_S + 5.0
# A worker stops once its connection attempts are refused this many times in a row.
REFUSALS_TO_STOP = 3
# uvicorn ends a graceful shutdown on SIGTERM by re-raising the signal: -15 seen from Popen.
EXIT_CODES = {0, -15, 143}


@dataclass
class Tally:
    """What the workers saw, shared between them under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> transaction
    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    cuts: list[str] = field(default_factory=list)


def _work(url: str, worker: int, stop: threading.Event, tally: Tally) -> None:
    """Post keyed top-ups on one persistent connection until the server refuses connections."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(30.0, connect=2.0)
    refused_in_a_row = 0
    with httpx.Client(base_url=url, limits=limits, timeout=timeout) as client:
        for number in range(1_000_000):
            if stop.is_set() or refused_in_a_row >= REFUSALS_TO_STOP:
                return
            key = f"shutdown-{worker}-{number}"
            payload = {
                "transaction_type": "topup",
                "user_id": f"shutdown_{worker}",
                "asset_code": "GC",
                "amount": "1.25",
            }
            try:
                response = client.post(
                    "/transaction", json=payload, headers={"Idempotency-Key": key}
                )
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # No connection was made, so the request was never sent: refused.
                refused_in_a_row += 1
                with tally.lock:
                    tally.refused += 1
                time.sleep(0.02)
                continue
            except httpx.TransportError as error:
                # The connection was open and the request (partly) sent: cut without an answer.
                with tally.lock:
                    tally.cuts.append(f"{key}: {type(error).__name__}: {error}")
                return
            refused_in_a_row = 0
            with tally.lock:
                tally.statuses[response.status_code] += 1
                if response.status_code == 201:
                    tally.acknowledged[key] = response.json()["id"]


def test_sigterm_under_load_cuts_nothing_and_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, tmp_path / "server.log").start()
    stop, tally = threading.Event(), Tally()
    workers = [
        threading.Thread(target=_work, args=(server.url, n, stop, tally)) for n in range(WORKERS)
    ]
    try:
        for worker in workers:
            worker.start()
        time.sleep(LOAD_BEFORE_SIGTERM_S)
        # On a busy machine (the service's relay process starting beside it, other tests) the
        # first answers may take longer: SIGTERM comes once the load has some.
        wait_until(lambda: len(tally.acknowledged) > 0)
        with tally.lock:
            before_sigterm = len(tally.acknowledged)
        started = time.monotonic()
        exit_code = server.terminate(timeout_s=EXIT_BOUND_S)
        exit_s = time.monotonic() - started
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        server.kill()

    assert tally.cuts == [], f"requests cut off without an answer; see {server.log_path}"
    assert before_sigterm > 0, "the load was running when SIGTERM came"
    assert tally.refused > 0, "the workers ran until the server refused them"
    assert set(tally.statuses) == {201}, tally.statuses
    assert exit_code in EXIT_CODES, f"exit code {exit_code}; see {server.log_path}"
    assert exit_s < EXIT_BOUND_S

    restarted = ServerProcess(database_url, tmp_path / "restarted.log").start()
    try:
        with httpx.Client(base_url=restarted.url, timeout=10) as client:
            for key, transaction_id in tally.acknowledged.items():
                found = client.get(f"/transaction/{transaction_id}")
                assert found.status_code == 200, (key, found.text)
                assert (found.json()["amount"], found.json()["idempotency_key"]) == ("1.25", key)
    finally:
        restarted.kill()
    written = rows(
        database_url, "SELECT count(*) FROM transactions WHERE user_id LIKE 'shutdown_%'"
    )
    assert written == [(len(tally.acknowledged),)], "every transaction written was answered"
    database = open_database(Settings(database_url=database_url))
    try:
        report = verify_ledger(database)
    finally:
        database.close()
    assert report.ok, report.problems
