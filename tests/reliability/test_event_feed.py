"""The feed under real concurrency: a reader following GET /events while many writers commit,
through several service processes, never misses an event (API.md: once a reader has been given
an event at position P, no event at or below P appears later); and hundreds of readers waiting
for the next event hold neither threads nor database connections, so writes go on.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess

from .checks import assert_ledger_ok

pytestmark = pytest.mark.slow

WRITERS = 16
WRITES_PER_WRITER = 25
DEADLINE_S = 120.0


@pytest.fixture
def second_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, tmp_path / "second-server.log").start()
    yield process
    process.kill()


def _write(base_url: str, writer: int, seed: int, created: list[str]) -> None:
    rng = random.Random(seed * 1000 + writer)
    user = f"feed_{writer}"
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for index in range(WRITES_PER_WRITER):
            kind = "topup" if index % 3 == 0 else rng.choice(["topup", "bonus", "purchase"])
            amount = "1.00" if kind == "purchase" else f"{rng.randint(2, 9)}.00"
            response = client.post(
                "/transaction",
                json={
                    "transaction_type": kind,
                    "user_id": user,
                    "asset_code": "GC",
                    "amount": amount,
                },
            )
            assert response.status_code in (201, 422), response.text
            if response.status_code == 201:
                created.append(response.json()["id"])


def _read_all(base_url: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    with httpx.Client(base_url=base_url, timeout=60) as client:
        while True:
            page = client.get("/events", params={"after": after, "limit": 1000}).json()
            events.extend(page["items"])
            if not page["items"]:
                return events
            after = page["next_after"]


def _follow_while(urls: list[str], writing: threading.Event, seen: list[dict[str, Any]]) -> None:
    """Poll the feed, from each process in turn, until the writers are done and a last page
    comes back empty; check as it goes that positions only grow."""
    after = 0
    turn = 0
    clients = [httpx.Client(base_url=url, timeout=60) for url in urls]
    try:
        while True:
            done = not writing.is_set()
            page = (
                clients[turn % len(clients)]
                .get("/events", params={"after": after, "limit": 50})
                .json()
            )
            turn += 1
            positions = [event["position"] for event in page["items"]]
            assert positions == sorted(positions), (after, positions)
            assert all(p > after for p in positions), (after, positions)
            seen.extend(page["items"])
            after = page["next_after"]
            if done and not page["items"]:
                return
    finally:
        for client in clients:
            client.close()


def _check_reader_saw_everything(urls: list[str], database_url: str, seed: int) -> None:
    created: list[str] = []
    seen: list[dict[str, Any]] = []
    writing = threading.Event()
    writing.set()
    writers = [
        threading.Thread(target=_write, args=(urls[i % len(urls)], i, seed, created))
        for i in range(WRITERS)
    ]
    reader = threading.Thread(target=_follow_while, args=(urls, writing, seen))
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(DEADLINE_S)
    writing.clear()
    reader.join(DEADLINE_S)
    assert not reader.is_alive(), f"the reader did not finish (seed {seed})"

    everything = _read_all(urls[0])
    # Nothing in the full feed that the reader did not see, in the same order.
    assert [e["position"] for e in seen] == [e["position"] for e in everything]
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    assert [e["position"] for e in everything] == list(range(1, len(everything) + 1))
    written = {e["data"]["id"] for e in everything if e["type"] == "transaction.created"}
    assert set(created) <= written, f"seed {seed}"
    assert len(created) > WRITERS * WRITES_PER_WRITER // 2
    assert_ledger_ok(database_url)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_reader_never_misses_an_event_written_through_two_processes(
    server: ServerProcess, second_server: ServerProcess, database_url: str, seed: int
) -> None:
    _check_reader_saw_everything([server.url, second_server.url], database_url, seed)


def test_a_reader_never_misses_an_event_of_sixteen_writers(
    server: ServerProcess, database_url: str, seed: int
) -> None:
    _check_reader_saw_everything([server.url], database_url, seed)


WAITING_READERS = 300


def _threads_of(process: ServerProcess) -> int:
    assert process.process is not None
    return len(list(Path(f"/proc/{process.process.pid}/task").iterdir()))


def test_hundreds_of_waiting_readers_hold_no_thread_and_do_not_stop_writes(
    server: ServerProcess,
) -> None:
    threads_before = _threads_of(server)

    async def scenario() -> tuple[list[httpx.Response], list[int]]:
        limits = httpx.Limits(max_connections=WAITING_READERS + 20)
        # The writes go through a client of their own: the readers' pool of hundreds of
        # connections is slow to hand one out, which would be the test's delay, not the service's.
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=90, limits=limits) as client,
            httpx.AsyncClient(base_url=server.url, timeout=90) as writer,
        ):
            start = (await client.get("/events", params={"limit": 1000})).json()["next_after"]
            waiting = [
                asyncio.create_task(client.get("/events", params={"after": start, "wait": 30}))
                for _ in range(WAITING_READERS)
            ]
            # Until every reader waits (the gauge counts them), nobody writes.
            for _ in range(600):
                metrics = (await client.get("/metrics")).text
                if f"wallet_event_readers_waiting {WAITING_READERS}.0" in metrics:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the readers never all waited")
            threads_waiting = _threads_of(server)
            statuses = []
            for index in range(20):
                response = await writer.post(
                    "/transaction",
                    json={
                        "transaction_type": "topup",
                        "user_id": "waited_for",
                        "asset_code": "GC",
                        "amount": f"{index + 1}.00",
                    },
                )
                statuses.append(response.status_code)
            answers = await asyncio.gather(*waiting)
            return answers, [threads_waiting, *statuses]

    answers, (threads_waiting, *statuses) = asyncio.run(scenario())

    assert statuses == [201] * 20
    assert all(answer.status_code == 200 for answer in answers)
    assert all(answer.json()["items"] for answer in answers), "every waiting reader was woken"
    # Waiting took no thread per reader (the process has a fixed few: writer, pools).
    assert threads_waiting - threads_before < 20, (threads_before, threads_waiting)
