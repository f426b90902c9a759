"""The event stream: each event published to NATS JetStream, a sink of the relay runner.

``NatsSink.deliver`` publishes one event (its body is ``render_event``'s bytes) to the subject
``<prefix>.<event type>`` with the header ``Nats-Msg-Id`` set to the event id, and returns only
once JetStream has acknowledged it, that is once the stream has stored it (``deliver_each``: a
run of them, one after another, for the runner). Anything else (no
connection, no stream, a refusal, no acknowledgement within ``EVENTS_NATS_ACK_TIMEOUT_S``)
raises :class:`DeliveryFailed`, and the runner tries the event again later.

Invariants it owns:

- At least once, and once within the duplicate window: an event delivered again (a retry after
  a lost acknowledgement, a restart before the cursor moved) carries the same ``Nats-Msg-Id``,
  and JetStream stores it once if it comes within the stream's duplicate window
  (``EVENTS_NATS_DUPLICATE_WINDOW_S`` for a stream created here). Later than that, a consumer
  tells a repeat by the event's ``id`` or ``position``.
- Nothing waits without a bound: connecting, reconnecting, the stream's set-up, each publish and
  closing each have a limit in limits.py. A connection that gave up is opened again by the next
  delivery.
- The stream is the operator's once it exists: a missing stream is created (subjects
  ``<prefix>.>``, the duplicate window, and a maximum age: as long as the outbox keeps an event,
  WALLET_EVENTS_RETENTION_DAYS); an existing one is left as it is. Each
  publish names the stream it expects, so an event never lands in another stream that happens
  to cover the subject.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import Header, StreamConfig

from wallet.config import Settings
from wallet.limits import (
    EVENTS_NATS_ACK_TIMEOUT_S,
    EVENTS_NATS_CONNECT_TIMEOUT_S,
    EVENTS_NATS_DRAIN_TIMEOUT_S,
    EVENTS_NATS_DUPLICATE_WINDOW_S,
    EVENTS_NATS_RECONNECT_WAIT_S,
    EVENTS_NATS_RECONNECTS_MAX,
)
from wallet.storage import Database
from wallet.storage import events as event_store
from wallet.storage import relays as relay_store
from wallet.storage.events import StoredEvent
from wallet.storage.relays import DeliveryAttempt, Relay

from .clock import SYSTEM_CLOCK, Clock
from .relays import DeliveryFailed, RelayRunner, Sink, deliver_each_async

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0

# What connecting may take at most: every attempt, and the pauses between them.
_CONNECT_BOUND_S = (EVENTS_NATS_RECONNECTS_MAX + 1) * (
    EVENTS_NATS_CONNECT_TIMEOUT_S + EVENTS_NATS_RECONNECT_WAIT_S
)
# Errors of a publish or a JetStream request that mean "not delivered, try again later".
_NOT_DELIVERED = (nats.errors.Error, asyncio.TimeoutError, OSError)


# The stream's relay (storage/relays): one row, made when the service starts with
# WALLET_EVENTS_NATS_URL set, after the newest event then (the stream receives what comes after).
STREAM_KIND = "nats"
STREAM_RELAY_ID = "nats"


def ensure_stream_relay(database: Database, clock: Clock) -> None:
    """Make the stream's relay if it does not exist (whatever other process makes it too)."""
    with database.unit_of_work() as session:
        relay_store.insert_relay(
            session,
            STREAM_RELAY_ID,
            STREAM_KIND,
            ["*"],
            event_store.newest_position(session),
            clock.now_us(),
            unless_exists=True,
        )


async def stream_sink(relay: Relay, runner: RelayRunner) -> Sink:
    """The sink of the stream's relay (registered for the kind ``nats``)."""
    sink = NatsSink.from_settings(runner.settings, runner.clock)
    if sink is None:
        raise LookupError("WALLET_EVENTS_NATS_URL is not set")
    return sink


class NatsSink:
    """Publishes events to one JetStream stream; one connection, opened on first use."""

    def __init__(
        self,
        url: str,
        stream: str,
        subject_prefix: str,
        max_age_s: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.url = url
        # Where the server is, without any user or password the URL carries: for messages.
        parts = urlsplit(url)
        self.where = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.max_age_s = max_age_s
        self._connection: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._stream_ready = False
        self._opening = asyncio.Lock()
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> NatsSink | None:
        """The sink the settings ask for, or None when WALLET_EVENTS_NATS_URL is not set."""
        if settings.events_nats_url is None:
            return None
        return cls(
            settings.events_nats_url,
            settings.events_nats_stream,
            settings.events_nats_subject_prefix,
            settings.events_retention_days * SECONDS_PER_DAY,
            clock,
        )

    def subject_of(self, event: StoredEvent) -> str:
        return f"{self.subject_prefix}.{event.type}"

    async def deliver_each(
        self, events: Sequence[StoredEvent], until: float
    ) -> list[DeliveryAttempt]:
        return await deliver_each_async(events, until, self.deliver, self._clock)

    async def deliver(self, event: StoredEvent, body: bytes) -> int | None:
        """Publish ``body`` (the rendered event) and wait for JetStream's acknowledgement; None
        (there is no status code); :class:`DeliveryFailed` when it was not acknowledged."""
        jetstream = await self._ready()
        subject = self.subject_of(event)
        try:
            await jetstream.publish(
                subject,
                body,
                timeout=EVENTS_NATS_ACK_TIMEOUT_S,
                stream=self.stream,
                headers={Header.MSG_ID: event.id},
            )
        except nats.js.errors.NoStreamResponseError as error:
            # No stream listens on the subject (deleted since, or never covering it): set it up
            # again before the next delivery.
            self._stream_ready = False
            raise DeliveryFailed(
                f"NATS: no stream stored event {event.position} on {subject}: {error!r}"
            ) from error
        except _NOT_DELIVERED as error:
            raise DeliveryFailed(
                f"NATS did not acknowledge event {event.position} on {subject}: {error!r}"
            ) from error
        return None

    async def close(self) -> None:
        """Let what is in flight finish (bounded), then close the connection."""
        connection, self._connection, self._jetstream = self._connection, None, None
        self._stream_ready = False
        if connection is None or connection.is_closed:
            return
        try:
            await asyncio.wait_for(connection.drain(), EVENTS_NATS_DRAIN_TIMEOUT_S + 1)
        except _NOT_DELIVERED as error:
            log.warning("NATS: draining the event stream's connection failed: %r", error)
        finally:
            if not connection.is_closed:
                await connection.close()

    async def _ready(self) -> JetStreamContext:
        """The JetStream context of an open connection, with the stream set up."""
        async with self._opening:
            try:
                if self._connection is None or self._connection.is_closed:
                    self._connection = await self._connect()
                    self._jetstream = self._connection.jetstream(timeout=EVENTS_NATS_ACK_TIMEOUT_S)
                    self._stream_ready = False
                assert self._jetstream is not None
                if not self._stream_ready:
                    await self._ensure_stream(self._jetstream)
                    self._stream_ready = True
            except _NOT_DELIVERED as error:
                raise DeliveryFailed(
                    f"NATS at {self.where}: cannot publish to stream {self.stream}: {error!r}"
                ) from error
            return self._jetstream

    async def _connect(self) -> Client:
        connection = Client()
        try:
            await asyncio.wait_for(
                connection.connect(
                    self.url,
                    name="wallet-events",
                    connect_timeout=EVENTS_NATS_CONNECT_TIMEOUT_S,
                    reconnect_time_wait=EVENTS_NATS_RECONNECT_WAIT_S,
                    max_reconnect_attempts=EVENTS_NATS_RECONNECTS_MAX,
                    drain_timeout=EVENTS_NATS_DRAIN_TIMEOUT_S,
                    error_cb=_log_error,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                ),
                _CONNECT_BOUND_S,
            )
        except BaseException:
            if not connection.is_closed:
                await connection.close()
            raise
        return connection

    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        """Create the stream if it is missing; leave an existing one alone."""
        try:
            await jetstream.stream_info(self.stream)
            return
        except nats.js.errors.NotFoundError:
            pass
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.>"],
            duplicate_window=EVENTS_NATS_DUPLICATE_WINDOW_S,
            max_age=self.max_age_s,
        )
        try:
            await jetstream.add_stream(config)
            log.info("NATS: created the stream %s for %s.>", self.stream, self.subject_prefix)
        except nats.js.errors.APIError:
            # Another process may have created it meanwhile (with another configuration, which
            # is then its own to keep); if it exists now, that is all that was wanted.
            await jetstream.stream_info(self.stream)

    async def _disconnected(self) -> None:
        if self._connection is None:
            return  # closed by close()
        log.warning("NATS: the event stream's connection to %s was lost", self.where)

    async def _reconnected(self) -> None:
        log.info("NATS: the event stream's connection to %s is back", self.where)


async def _log_error(error: Exception) -> None:
    log.warning("NATS: %r", error)
