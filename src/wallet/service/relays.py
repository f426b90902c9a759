"""The relay runner: pushes the outbox's events to each relay (webhook endpoint, NATS stream), one
at a time in position order, at least once.

Invariants it owns:
- **One process per relay.** A process serves a relay only while it holds the relay's lease
  (storage/relays.claim_relays), taken for EVENTS_LEASE_S and renewed every third of it; it
  stops delivering once two thirds of a lease have passed without a renewal, and gives its
  leases back when it stops. A process that dies keeps its relays until its leases expire: the
  others, claiming every third of a lease, take them up within four thirds of a lease.
- **In order, at least once.** A relay's cursor (``delivered_position``) moves past an event only
  after the sink acknowledged it, by an UPDATE fenced by the lease and the relay's revision; so a
  crash, a lost lease, a replay or a change by an operator mid-delivery can make an event go
  again, never be skipped. Events of types the relay does not want are passed over.
- **Backoff.** A failure is recorded (the attempt, the error, since when it fails) and the relay
  waits a jittered delay (next_retry_delay_ms) before the same event is tried again; a relay that
  has failed for RELAY_FAILING_MAX_S is disabled. A success ends the run of failures.

Each relay this process holds has a task of its own (one slow endpoint never delays another),
under the one runner task that ``start`` makes. A sink delivers a run of events at a time
(``Sink.deliver_each``: until one fails, or for at most RELAY_FLUSH_INTERVAL_S), so that what
each event costs is the delivery itself: the webhook sink delivers on a blocking socket, on a
thread of the runner's (``run_blocking``, one per relay at most), with no event-loop wake-up,
future or timer per event. Instants (leases, backoff, lag) come from
the service's clock; the pace of polling from asyncio's sleeps. The runner writes through one
connection of its own, on one thread, whose commits do not wait for the disk
(storage/relays.lighten_commits): what a crash loses of them is an event delivered again.

Sinks are registered per relay kind (``register_sink``): the webhook sink by the facade, the
NATS stream by its module.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from wallet.config import Settings
from wallet.limits import (
    DELIVERY_ATTEMPTS_KEPT,
    RELAY_BATCH_SIZE,
    RELAY_ERROR_LENGTH_MAX,
    RELAY_FAILING_MAX_S,
    RELAY_FLUSH_INTERVAL_S,
    RELAY_RETRY_DELAY_MAX_S,
    RELAY_RETRY_FIRST_MAX_S,
    WEBHOOK_ENDPOINTS_MAX,
)
from wallet.storage import Database, Session
from wallet.storage import events as event_store
from wallet.storage import relays as store
from wallet.storage.database import WriterConnection
from wallet.storage.events import StoredEvent
from wallet.storage.relays import DeliveryAttempt, Relay

from .clock import Clock
from .events import render_event
from .metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a relay's task pauses after an unexpected error (the database down, a bug) before it
# reads its relay again.
_ERROR_PAUSE_S = 1.0


class DeliveryFailed(Exception):
    """The sink did not acknowledge the event: no answer, or one that is not an acknowledgement
    (``status_code``, if the answer had one)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class Sink(Protocol):
    """Where a relay's events go. ``deliver_each`` delivers ``events`` in order, each only once
    the one before was acknowledged, and stops after the first that was not, or before the next
    once ``time.monotonic()`` reaches ``until``; it returns the attempts made (``deliver_each``
    or ``deliver_each_async`` below), all acknowledged but perhaps the last. It is never called
    again before it returned."""

    async def deliver_each(
        self, events: Sequence[StoredEvent], until: float
    ) -> list[DeliveryAttempt]: ...

    async def close(self) -> None: ...


# Delivers one event (its body is render_event's bytes): returns once it is acknowledged (the
# answer's status code, if it has one), raises DeliveryFailed otherwise.
DeliverOne = Callable[[StoredEvent, bytes], "int | None"]
DeliverOneAsync = Callable[[StoredEvent, bytes], Awaitable["int | None"]]


def deliver_each(
    events: Sequence[StoredEvent], until: float, deliver: DeliverOne, clock: Clock
) -> list[DeliveryAttempt]:
    """``Sink.deliver_each`` for a sink that delivers one event by a blocking call."""
    attempts: list[DeliveryAttempt] = []
    for event in events:
        if time.monotonic() >= until:
            break
        started = time.monotonic()
        try:
            status_code, error = deliver(event, render_event(event)), None
        except Exception as failure:
            status_code, error = _failure(event, failure)
        attempts.append(_attempt(event, started, status_code, error, clock))
        if error is not None:
            break
    return attempts


async def deliver_each_async(
    events: Sequence[StoredEvent], until: float, deliver: DeliverOneAsync, clock: Clock
) -> list[DeliveryAttempt]:
    """``Sink.deliver_each`` for a sink that delivers one event by a coroutine."""
    attempts: list[DeliveryAttempt] = []
    for event in events:
        if time.monotonic() >= until:
            break
        started = time.monotonic()
        try:
            status_code, error = await deliver(event, render_event(event)), None
        except Exception as failure:
            status_code, error = _failure(event, failure)
        attempts.append(_attempt(event, started, status_code, error, clock))
        if error is not None:
            break
    return attempts


def _failure(event: StoredEvent, failure: Exception) -> tuple[int | None, str]:
    """The status code and the error of a delivery that raised ``failure``."""
    if isinstance(failure, DeliveryFailed):
        return failure.status_code, str(failure) or "delivery failed"
    log.error("a sink failed on event %s", event.position, exc_info=failure)
    return None, f"{type(failure).__name__}: {failure}"


def _attempt(
    event: StoredEvent, started: float, status_code: int | None, error: str | None, clock: Clock
) -> DeliveryAttempt:
    return DeliveryAttempt(
        event_id=event.id,
        position=event.position,
        status_code=status_code,
        error=None if error is None else error[:RELAY_ERROR_LENGTH_MAX],
        duration_ms=round((time.monotonic() - started) * 1000),
        attempted_at_us=clock.now_us(),
    )


# Builds the sink of a relay, afresh whenever the relay's revision changes (a new URL).
SinkFactory = Callable[[Relay, "RelayRunner"], Awaitable[Sink]]


def next_retry_delay_ms(previous_ms: int | None, rng: random.Random) -> int:
    """The wait before the next attempt: the first between half of RELAY_RETRY_FIRST_MAX_S and
    all of it, then 1.5 to 2 times the one before, never over RELAY_RETRY_DELAY_MAX_S."""
    if previous_ms is None:
        first_s = rng.uniform(RELAY_RETRY_FIRST_MAX_S / 2, RELAY_RETRY_FIRST_MAX_S)
        return max(1, round(first_s * 1000))
    return min(round(previous_ms * rng.uniform(1.5, 2.0)), round(RELAY_RETRY_DELAY_MAX_S * 1000))


class RelayRunner:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        metrics: Metrics,
        settings: Settings,
        rng: random.Random | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self._clock = clock
        self._metrics = metrics
        self._rng = rng or random.Random()
        # Names this process in the leases it holds (and in the logs): unique per runner.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._sinks: dict[str, SinkFactory] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        # The monotonic instant until which this process may deliver under its leases.
        self._held_until = 0.0
        # Made by start(): reads on PostgreSQL, the one thread that writes, and the threads that
        # deliver (at most one per relay: every webhook endpoint, and the stream).
        self._reads: ThreadPoolExecutor | None = None
        self._writes: ThreadPoolExecutor | None = None
        self._deliveries: ThreadPoolExecutor | None = None
        self._connection: WriterConnection | None = None

    def register_sink(self, kind: str, factory: SinkFactory) -> None:
        """Serve relays of ``kind`` with sinks from ``factory`` (before start)."""
        assert self._task is None, "register sinks before the runner starts"
        self._sinks[kind] = factory

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def serving(self) -> list[str]:
        """The relays this process holds and serves now."""
        return sorted(relay for relay, task in self._workers.items() if not task.done())

    def start(self) -> None:
        assert self._task is None, "the runner is stopped before it starts again"
        self._reads = ThreadPoolExecutor(2, thread_name_prefix="wallet-relay-reads")
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="wallet-relay-writes")
        self._deliveries = ThreadPoolExecutor(
            WEBHOOK_ENDPOINTS_MAX + 1, thread_name_prefix="wallet-relay-deliveries"
        )
        self._task = asyncio.create_task(self._run(), name="wallet-relays")

    async def stop(self) -> None:
        """Stop every delivery, give the leases back, and close the runner's connection."""
        if (
            self._task is None
            or self._writes is None
            or self._reads is None
            or self._deliveries is None
        ):
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        # The sinks are closed (a delivery waiting on its socket fails at once): the leases go
        # back only once no delivery thread is left.
        await asyncio.get_running_loop().run_in_executor(None, self._deliveries.shutdown)
        try:
            await self.write(lambda session: store.release_relays(session, self.owner))
        except Exception:
            log.exception("the relays' leases could not be given back; they expire")
        await asyncio.get_running_loop().run_in_executor(self._writes, self._close_connection)
        self._writes.shutdown(wait=True)
        self._reads.shutdown(wait=True)
        self._task = self._reads = self._writes = self._deliveries = None

    # --- database access, off the event loop where it would block it -------------------------

    async def read(self, function: Callable[[Session], T]) -> T:
        """Run ``function`` on a reading session: inline on SQLite (as the service's reads),
        on the runner's own threads on PostgreSQL."""

        def run() -> T:
            with self.database.reading() as session:
                return function(session)

        if self.database.reads_inline:
            return run()
        assert self._reads is not None, "the runner reads once started"
        return await asyncio.get_running_loop().run_in_executor(self._reads, run)

    async def run_blocking(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` on a delivery thread: a sink's blocking deliveries."""
        assert self._deliveries is not None, "the runner delivers once started"
        return await asyncio.get_running_loop().run_in_executor(self._deliveries, function, *args)

    async def write(self, function: Callable[[Session], T]) -> T:
        """Run ``function`` in one unit of work on the runner's connection, on its thread."""
        assert self._writes is not None, "the runner writes once started"
        return await asyncio.get_running_loop().run_in_executor(
            self._writes, self._write_now, function
        )

    def _write_now(self, function: Callable[[Session], T]) -> T:
        if self._connection is None:
            connection = self.database.connect_writer()
            store.lighten_commits(connection.session)
            self._connection = connection
        connection = self._connection
        try:
            connection.begin()
            result = function(connection.session)
            connection.commit()
        except BaseException:
            # The connection may be broken: a new one is made for the next unit of work.
            with contextlib.suppress(Exception):
                connection.rollback()
            self._close_connection()
            raise
        return result

    def _close_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    # --- leases -------------------------------------------------------------------------------

    async def _run(self) -> None:
        lease_s = self.settings.events_lease_s
        poll_s = self.settings.events_relay_poll_s
        next_claim = 0.0
        while True:
            if time.monotonic() >= next_claim:
                started = time.monotonic()
                try:
                    held = await self._claim(lease_s)
                except Exception:
                    log.exception("the relays' leases could not be claimed; trying again")
                    next_claim = time.monotonic() + min(poll_s * 4, lease_s / 3)
                else:
                    # Two thirds of a lease: a renewal that keeps failing stops the deliveries
                    # well before another process may take the relays over.
                    self._held_until = started + lease_s * 2 / 3
                    next_claim = started + lease_s / 3
                    self._serve_only(held)
            await asyncio.sleep(poll_s)

    async def _claim(self, lease_s: float) -> list[str]:
        now = self._clock.now_us()
        expires = now + round(lease_s * 1_000_000)
        kinds = sorted(self._sinks)
        return await self.write(
            lambda session: store.claim_relays(session, self.owner, kinds, now, expires)
        )

    def _serve_only(self, held: list[str]) -> None:
        """A task for each relay held, and none for the others."""
        for relay_id, task in list(self._workers.items()):
            if relay_id not in held or task.done():
                task.cancel()
                del self._workers[relay_id]
            if relay_id not in held:
                # Deleted, disabled or lost: whoever serves it now reports it.
                self._metrics.forget_relay(relay_id)
        for relay_id in held:
            if relay_id not in self._workers:
                self._workers[relay_id] = asyncio.create_task(
                    self._serve(relay_id), name=f"wallet-relay-{relay_id}"
                )

    # --- one relay ----------------------------------------------------------------------------

    async def _serve(self, relay_id: str) -> None:
        """Deliver a relay's events for as long as this process holds it and it is enabled."""
        sink: Sink | None = None
        built_for: int | None = None
        try:
            while True:
                progressed = False
                try:
                    relay = await self.read(lambda session: store.get_relay(session, relay_id))
                    if relay is None:
                        self._metrics.forget_relay(relay_id)
                        return
                    if relay.lease_owner != self.owner or relay.status != store.ENABLED:
                        return
                    if sink is None or built_for != relay.revision:
                        if sink is not None:
                            await _close(sink)
                            sink = None
                        sink = await self._sinks[relay.kind](relay, self)
                        built_for = relay.revision
                    progressed = await self._step(relay, sink)
                except Exception:
                    log.exception("relay %s: unexpected error; trying again", relay_id)
                    await asyncio.sleep(_ERROR_PAUSE_S)
                if not progressed:
                    await asyncio.sleep(self.settings.events_relay_poll_s)
        finally:
            if sink is not None:
                await _close(sink)

    async def _step(self, relay: Relay, sink: Sink) -> bool:
        """Deliver the next events of ``relay``, if it is time; whether its cursor moved."""
        now = self._clock.now_us()
        waiting = relay.next_attempt_us > now or time.monotonic() >= self._held_until
        limit = 1 if waiting else RELAY_BATCH_SIZE
        types = () if relay.every_type else relay.event_types

        def pending(session: Session) -> tuple[int, list[StoredEvent]]:
            newest = event_store.newest_position(session)
            after = relay.delivered_position
            return newest, event_store.read_events(session, after, newest, limit, types)

        newest, events = await self.read(pending)
        oldest_us = events[0].created_at_us if events else None
        self._metrics.observe_relay_lag(relay.id, newest - relay.delivered_position, oldest_us, now)
        if waiting:
            return False
        # Acknowledged deliveries are recorded (cursor and attempts) in one unit of work per
        # run of deliveries: at most RELAY_FLUSH_INTERVAL_S of them, and before a failure is
        # recorded. A crash loses at most one run's acknowledgements: those events go again.
        moved = False
        rest: Sequence[StoredEvent] = events
        while rest:
            until = min(self._held_until, time.monotonic() + RELAY_FLUSH_INTERVAL_S)
            if time.monotonic() >= until:
                return moved  # no longer ours to deliver
            attempts = await sink.deliver_each(rest, until)
            failed = attempts[-1] if attempts and attempts[-1].error is not None else None
            acknowledged = attempts[:-1] if failed is not None else attempts
            self._metrics.count_deliveries(
                relay.id, acknowledged=len(acknowledged), failed=int(failed is not None)
            )
            if acknowledged:
                flushed = await self._flush(relay, acknowledged)
                if flushed is None:
                    return True
                relay, moved = flushed, True
            if failed is not None:
                assert failed.error is not None
                await self._fail(relay, failed, failed.error, self._clock.now_us())
                return moved
            rest = rest[len(attempts) :]
        if not moved and len(events) < limit and newest > relay.delivered_position:
            # Nothing else up to `newest` is of the relay's types: pass over the rest.
            return await self.write(
                lambda session: store.advance_relay(
                    session, relay, self.owner, newest, delivered=False
                )
            )
        return moved

    async def _flush(self, relay: Relay, acknowledged: list[DeliveryAttempt]) -> Relay | None:
        """Record acknowledged deliveries and move the cursor past the last; the relay as it
        is then, or None if this process lost it (lease, or an operator's change)."""
        last = acknowledged[-1].position

        def record(session: Session) -> bool:
            # Fenced first: a relay this process lost (a lease, a replay) lists no attempt of it.
            if not store.advance_relay(session, relay, self.owner, last, delivered=True):
                return False
            store.record_attempts(session, relay.id, acknowledged, DELIVERY_ATTEMPTS_KEPT)
            return True

        if not await self.write(record):
            return None
        return dataclasses.replace(
            relay, delivered_position=last, failing_since_us=None, retry_delay_ms=None
        )

    async def _fail(self, relay: Relay, attempt: DeliveryAttempt, error: str, now: int) -> None:
        delay_ms = next_retry_delay_ms(relay.retry_delay_ms, self._rng)
        failing_since = now if relay.failing_since_us is None else relay.failing_since_us
        disable = failing_since + RELAY_FAILING_MAX_S * 1_000_000 <= now

        def failed(session: Session) -> bool:
            recorded = store.record_failure(
                session,
                relay,
                self.owner,
                error=error,
                retry_delay_ms=delay_ms,
                next_attempt_us=now + delay_ms * 1000,
                failing_since_us=failing_since,
                disable=disable,
            )
            if recorded:
                store.record_attempts(session, relay.id, [attempt], DELIVERY_ATTEMPTS_KEPT)
            return recorded

        if await self.write(failed) and disable:
            log.warning(
                "relay %s disabled: its deliveries have failed for %d days (last: %s)",
                relay.id,
                RELAY_FAILING_MAX_S // 86_400,
                error,
            )


async def _close(sink: Sink) -> None:
    try:
        await sink.close()
    except Exception:
        log.exception("a relay's sink failed to close")
