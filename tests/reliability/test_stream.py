"""The event stream against a real NATS server with JetStream (127.0.0.1:4222; .ci/run starts
one): the stream is set up, events arrive in order on their subjects as the Event JSON, an event
published twice is stored once, and a server that is not there is a refusal, not a hang.

Each test has a stream and a subject prefix of its own, and deletes its stream at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import nats
import nats.js.errors
import orjson
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from tests.support.server import ServerProcess, free_port
from tests.support.tamper import rows
from wallet.config import Settings
from wallet.limits import EVENTS_NATS_DUPLICATE_WINDOW_S
from wallet.service.events import render_event
from wallet.service.relays import DeliveryFailed
from wallet.service.stream import NatsSink
from wallet.storage.events import StoredEvent

NATS_URL = "nats://127.0.0.1:4222"
# Far above what any step may take (limits.py bounds connecting at about a minute); a test that
# reaches it has found a hang.
DEADLINE_S = 120.0
MAX_AGE_S = 3_600.0
_streams = itertools.count(1)

T = TypeVar("T")


@dataclass(frozen=True)
class Names:
    stream: str
    prefix: str


@pytest.fixture
def names() -> Iterator[Names]:
    """A stream and a subject prefix of this test alone; the stream is deleted afterwards."""
    n = next(_streams)
    test_names = Names(f"TEST_EVENTS_{os.getpid()}_{n}", f"test{os.getpid()}x{n}.events")
    _run(_require_nats)
    yield test_names
    _run(lambda js: _delete_stream(js, test_names.stream))


def test_the_stream_is_created_when_missing(names: Names) -> None:
    async def scenario(js: JetStreamContext) -> None:
        sink = NatsSink(NATS_URL, names.stream, names.prefix, MAX_AGE_S)
        try:
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.stream_info(names.stream)
            await sink.deliver(*_event("transaction.created"))
        finally:
            await sink.close()
        info = await js.stream_info(names.stream)
        assert info.config.subjects == [f"{names.prefix}.>"]
        assert info.config.duplicate_window == EVENTS_NATS_DUPLICATE_WINDOW_S
        assert info.config.max_age == MAX_AGE_S
        assert info.state.messages == 1

    _run(scenario)


def test_an_existing_stream_is_left_as_it_is(names: Names) -> None:
    async def scenario(js: JetStreamContext) -> None:
        subjects = [f"{names.prefix}.>", f"{names.prefix}-other.>"]
        await js.add_stream(StreamConfig(name=names.stream, subjects=subjects, duplicate_window=60))
        sink = NatsSink(NATS_URL, names.stream, names.prefix, MAX_AGE_S)
        try:
            await sink.deliver(*_event("hold.placed"))
        finally:
            await sink.close()
        info = await js.stream_info(names.stream)
        assert info.config.subjects == subjects
        assert info.config.duplicate_window == 60
        assert info.state.messages == 1

    _run(scenario)


def test_events_arrive_in_order_on_their_subjects_as_the_event_json(names: Names) -> None:
    types = ["transaction.created", "hold.placed", "transaction.created", "hold.captured"]
    events = [_event(kind, position) for position, kind in enumerate(types, start=1)]

    async def scenario(js: JetStreamContext) -> None:
        sink = NatsSink(NATS_URL, names.stream, names.prefix, MAX_AGE_S)
        try:
            for event, body in events:
                assert await sink.deliver(event, body) is None
        finally:
            await sink.close()
        stored = [await js.get_msg(names.stream, seq) for seq in range(1, len(events) + 1)]
        assert [m.subject for m in stored] == [f"{names.prefix}.{kind}" for kind in types]
        assert [m.data for m in stored] == [body for _, body in events]
        assert [(m.headers or {}).get("Nats-Msg-Id") for m in stored] == [e.id for e, _ in events]
        first = orjson.loads(stored[0].data or b"")
        assert first["position"] == 1
        assert first["type"] == "transaction.created"
        assert first["data"] == {"amount": "1.00"}
        assert (await js.stream_info(names.stream)).state.messages == len(events)

    _run(scenario)


def test_an_event_published_twice_is_stored_once(names: Names) -> None:
    event, body = _event("transaction.created")
    other = _event("transaction.created", position=2)

    async def scenario(js: JetStreamContext) -> None:
        sink = NatsSink(NATS_URL, names.stream, names.prefix, MAX_AGE_S)
        again = NatsSink(NATS_URL, names.stream, names.prefix, MAX_AGE_S)  # as after a restart
        try:
            await sink.deliver(event, body)
            await sink.deliver(event, body)
            await again.deliver(event, body)
            await sink.deliver(*other)
        finally:
            await sink.close()
            await again.close()
        info = await js.stream_info(names.stream)
        assert info.state.messages == 2
        second = await js.get_msg(names.stream, 2)
        assert (second.headers or {}).get("Nats-Msg-Id") == other[0].id

    _run(scenario)


def test_a_deleted_stream_is_created_again_by_the_next_delivery(names: Names) -> None:
    async def scenario(js: JetStreamContext) -> None:
        sink = NatsSink(NATS_URL, names.stream, names.prefix, MAX_AGE_S)
        try:
            await sink.deliver(*_event("hold.placed"))
            await js.delete_stream(names.stream)
            with pytest.raises(DeliveryFailed, match="no stream stored event 2"):
                await sink.deliver(*_event("hold.released", position=2))
            await sink.deliver(*_event("hold.released", position=2))
        finally:
            await sink.close()
        assert (await js.stream_info(names.stream)).state.messages == 1

    _run(scenario)


def test_a_server_that_is_not_there_is_a_delivery_failure_not_a_hang() -> None:
    closed = f"nats://user:secret@127.0.0.1:{free_port()}"

    async def scenario() -> None:
        sink = NatsSink(closed, "TEST_NOWHERE", "nowhere.events", MAX_AGE_S)
        try:
            for _ in range(2):  # a failed connection is tried again by the next delivery
                with pytest.raises(DeliveryFailed) as failed:
                    await sink.deliver(*_event("transaction.created"))
                assert failed.value.status_code is None
                assert "secret" not in str(failed.value)
        finally:
            await sink.close()

    asyncio.run(asyncio.wait_for(scenario(), DEADLINE_S))


def test_the_sink_follows_the_settings() -> None:
    assert NatsSink.from_settings(Settings()) is None
    sink = NatsSink.from_settings(Settings(events_nats_url=NATS_URL))
    assert sink is not None
    assert (sink.stream, sink.subject_prefix) == ("WALLET_EVENTS", "wallet.events")
    assert sink.max_age_s == 90 * 86_400
    assert sink.subject_of(_event("hold.expired")[0]) == "wallet.events.hold.expired"
    with pytest.raises(ValueError, match="events_nats_subject_prefix"):
        Settings(events_nats_subject_prefix="wallet.>")


def _event(kind: str, position: int = 1) -> tuple[StoredEvent, bytes]:
    event = StoredEvent(
        position, str(uuid.uuid4()), kind, 1_780_000_000_000_000, '{"amount":"1.00"}'
    )
    return event, render_event(event)


def _run(scenario: Callable[[JetStreamContext], Awaitable[T]]) -> T:
    """Run ``scenario`` with a JetStream context of a connection of the test's own."""

    async def with_jetstream() -> T:
        connection = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=1)
        try:
            return await scenario(connection.jetstream(timeout=10))
        finally:
            await connection.close()

    return asyncio.run(asyncio.wait_for(with_jetstream(), DEADLINE_S))


async def _require_nats(js: JetStreamContext) -> None:
    await js.account_info()


async def _delete_stream(js: JetStreamContext, name: str) -> None:
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(name)


def _stream_ids(names: Names) -> list[str]:
    """The Nats-Msg-Id of every message in the test's stream, in the stream's order."""

    async def read(js: JetStreamContext) -> list[str]:
        info = await js.stream_info(names.stream)
        ids = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(names.stream, sequence)
            assert message.headers is not None
            ids.append(message.headers["Nats-Msg-Id"])
        return ids

    return _run(read)


def _stream_count(names: Names) -> int:
    async def count(js: JetStreamContext) -> int:
        try:
            return int((await js.stream_info(names.stream)).state.messages)
        except nats.js.errors.NotFoundError:
            return 0

    return _run(count)


def test_a_relay_killed_mid_stream_leaves_nothing_missing_and_nothing_doubled(
    database_url: str, tmp_path: Path, names: Names
) -> None:
    """The service publishes through its relay; SIGKILL it while events are being published,
    start another: the stream ends up holding every event once, in position order (a repeat of
    an event published before the kill, whose cursor had not moved, is dropped by JetStream)."""
    [(seeded,)] = rows(database_url, "SELECT max(position) FROM events")
    env = {
        "WALLET_EVENTS_NATS_URL": NATS_URL,
        "WALLET_EVENTS_NATS_STREAM": names.stream,
        "WALLET_EVENTS_NATS_SUBJECT_PREFIX": names.prefix,
        # A dead process's lease lapses in 2 s.
        "WALLET_EVENTS_LEASE_S": "2",
        "WALLET_EVENTS_RELAY_POLL_S": "0.05",
        # The service's own process publishes, so that the SIGKILL below hits the relay.
        "WALLET_EVENTS_RELAY": "inline",
    }
    first = ServerProcess(database_url, tmp_path / "first.log", **env).start()
    written = threading.Event()

    def write_until_killed() -> None:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            for index in range(10_000):
                topup = {"transaction_type": "topup", "user_id": f"streamed_{index % 7}",
                         "asset_code": "GC", "amount": "1.00"}  # fmt: skip
                try:
                    client.post("/transaction", json=topup)
                except httpx.HTTPError:
                    return
                if index == 20:
                    written.set()

    writer = threading.Thread(target=write_until_killed)
    try:
        writer.start()
        assert written.wait(DEADLINE_S)
        # Killed while the writes go on and the relay publishes them.
        _wait_until(lambda: _stream_count(names) >= 10)
        first.kill()
        writer.join(DEADLINE_S)
    finally:
        first.kill()
    second = ServerProcess(database_url, tmp_path / "second.log", **env).start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as client:
            for _ in range(20):
                topup = {"transaction_type": "topup", "user_id": "streamed_after",
                         "asset_code": "GC", "amount": "1.00"}  # fmt: skip
                assert client.post("/transaction", json=topup).status_code == 201
        expected = [
            str(event_id)
            for (event_id,) in rows(
                database_url, f"SELECT id FROM events WHERE position > {seeded} ORDER BY position"
            )
        ]
        assert len(expected) > 30
        _wait_until(lambda: _stream_count(names) >= len(expected))
        assert _stream_ids(names) == expected
    finally:
        second.kill()


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)
