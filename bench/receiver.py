"""A webhook endpoint on loopback for the bench, and the delivery lag it saw.

compare.py ``--webhook`` starts a ``Receiver`` before each run: an asyncio HTTP/1.1 server on a
thread of the bench process (pinned to a CPU of its own when one is given) that answers every
POST with 204 at once, keeps the connection open, and notes for each delivery the time it had
read the whole body (``time.time()``), the event's ``position`` and its ``created_at``. The
service and the bench run on one machine, so the service's wall clock and ours are the same
clock: the time of receipt minus ``created_at`` is the event's delivery lag (from the start of
the unit of work that wrote it to its arrival here).

What grows is bounded: a request's head (HEAD_BYTES_MAX) and body (BODY_BYTES_MAX), and the
deliveries noted (RECORDS_MAX, after which they are only counted). The receiver checks nothing
but the Standard Webhooks headers' presence (it counts deliveries without them); it does not
verify signatures, which would only add its own CPU time to the measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

HEAD_BYTES_MAX = 16 * 1024
BODY_BYTES_MAX = 1024 * 1024
RECORDS_MAX = 5_000_000
START_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 10.0
DRAIN_POLL_S = 0.02

# The Event's fields are rendered first, in this order (service/events.render_event): a search
# in the head of the body is enough, and cheaper than parsing the JSON of every delivery.
_POSITION = re.compile(rb'"position":\s*(\d+)')
_CREATED_AT = re.compile(rb'"created_at":\s*"([^"]+)"')
_FIELDS_BYTES = 400
_SIGNED = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")


class Receiver:
    """A loopback HTTP server answering 204 to every POST, noting each delivery."""

    def __init__(self, cpu: int | None = None) -> None:
        self.cpu = cpu
        self.port = 0
        self.positions = array("q")
        self.received_s = array("d")
        self.created_s = array("d")
        self.deliveries = 0  # every POST, noted or not
        self.unnoted = 0  # past RECORDS_MAX, or without a position and created_at
        self.unsigned = 0  # without the three Standard Webhooks headers
        self.refused = 0  # not a POST, or a head or body over its bound
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.Transport] = set()  # the open connections
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            raise RuntimeError(f"the webhook receiver did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._thread.is_alive():
            stopped = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(TimeoutError):
                stopped.result(START_TIMEOUT_S)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(START_TIMEOUT_S)

    async def _shutdown(self) -> None:
        """Stop listening, and close the open connections (the service keeps its own open)."""
        if self._server is not None:
            self._server.close()
        for transport in list(self._transports):
            transport.close()

    def newest_received(self) -> int:
        return max(self.positions, default=0)

    def _serve(self) -> None:
        if self.cpu is not None:
            # On Linux this pins the calling thread only: the receiver, not the bench.
            os.sched_setaffinity(0, {self.cpu})
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as error:  # reported by start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    def _note(self, body: bytes, headers: dict[bytes, bytes], received_s: float) -> None:
        self.deliveries += 1
        if not all(name in headers for name in _SIGNED):
            self.unsigned += 1
        fields = body[:_FIELDS_BYTES]
        position = _POSITION.search(fields)
        created_at = _CREATED_AT.search(fields)
        if len(self.positions) >= RECORDS_MAX or position is None or created_at is None:
            self.unnoted += 1
            return
        try:
            created_s = datetime.fromisoformat(created_at.group(1).decode()).timestamp()
        except ValueError:
            self.unnoted += 1
            return
        self.positions.append(int(position.group(1)))
        self.received_s.append(received_s)
        self.created_s.append(created_s)

    def lags(self, first: int, last: int) -> tuple[list[float], int]:
        """The delivery lag (s) of each event at a position in (first, last], its first delivery
        only; and how many deliveries of those positions were repeats."""
        # The receiver's thread may be appending meanwhile: created_s is appended last, so its
        # length is what all three hold.
        noted = len(self.created_s)
        seen: dict[int, float] = {}
        repeats = 0
        for position, received_s, created_s in zip(
            self.positions[:noted], self.received_s[:noted], self.created_s[:noted], strict=True
        ):
            if first < position <= last:
                if position in seen:
                    repeats += 1
                else:
                    seen[position] = received_s - created_s
        return list(seen.values()), repeats


class _Connection(asyncio.Protocol):
    """One connection to the receiver: requests parsed straight off the bytes as they arrive
    (no streams, no task per request: the receiver's CPU per delivery is part of what the bench
    measures, so it is kept small). A request must arrive whole within REQUEST_TIMEOUT_S of its
    first byte; its head and body are bounded; a body must come with a Content-Length (the
    service sends one)."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._receiver._transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._transport is not None:
            self._receiver._transports.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        received_s = time.time()
        buffer = self._buffer
        buffer += data
        while buffer:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > HEAD_BYTES_MAX:
                    self._refuse(b"431 Request Header Fields Too Large")
                else:
                    self._arm()
                return
            if end > HEAD_BYTES_MAX:
                self._refuse(b"431 Request Header Fields Too Large")
                return
            request_line, *header_lines = bytes(buffer[:end]).split(b"\r\n")
            headers = {}
            for header in header_lines:
                name, _, value = header.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if b"transfer-encoding" in headers:
                self._refuse(b"411 Length Required")
                return
            length_text = headers.get(b"content-length", b"0")
            if not length_text.isdigit():
                self._refuse(b"400 Bad Request")
                return
            length = int(length_text)
            if length > BODY_BYTES_MAX:
                self._refuse(b"413 Content Too Large")
                return
            if len(buffer) < end + 4 + length:
                self._arm()
                return
            body = bytes(buffer[end + 4 : end + 4 + length])
            del buffer[: end + 4 + length]
            # This request is whole: the next one's deadline starts from its own first byte.
            self._disarm()
            if request_line.split(b" ", 1)[0] != b"POST":
                self._refuse(b"405 Method Not Allowed")
                return
            assert self._transport is not None
            self._transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            self._receiver._note(body, headers, received_s)
            if headers.get(b"connection", b"").lower() == b"close":
                self._transport.close()
                return

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _arm(self) -> None:
        """A request has begun and not ended: it has REQUEST_TIMEOUT_S from now at most."""
        if self._deadline is None and self._transport is not None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(REQUEST_TIMEOUT_S, self._transport.close)

    def _refuse(self, status: bytes) -> None:
        self._receiver.refused += 1
        assert self._transport is not None
        self._transport.write(
            b"HTTP/1.1 %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % status
        )
        self._transport.close()
        self._buffer.clear()


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (sorted)."""
    return values[max(0, math.ceil(share * len(values)) - 1)]


@dataclass
class Subscription:
    """The endpoint a run subscribed, on the service at ``url``."""

    service_url: str
    id: str

    def last_delivered_position(self) -> int:
        response = httpx.get(f"{self.service_url}/admin/webhooks/{self.id}", timeout=10)
        response.raise_for_status()
        return int(response.json().get("last_delivered_position") or 0)

    def wait_delivered(self, position: int, timeout_s: float) -> float | None:
        """Poll until the endpoint's last_delivered_position reaches ``position``; the
        ``time.time()`` it was first seen there, or None after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.last_delivered_position() >= position:
                return time.time()
            time.sleep(DRAIN_POLL_S)
        return None


def subscribe(service_url: str, receiver: Receiver) -> Subscription | None:
    """Subscribe the receiver to every event type; None where the build has no webhooks (the
    route answers 404 or 405): that build is the baseline."""
    response = httpx.post(
        f"{service_url}/admin/webhooks",
        json={"url": receiver.url, "event_types": ["*"], "description": "bench receiver"},
        timeout=10,
    )
    if response.status_code in (404, 405):
        return None
    if response.status_code != 201:
        raise RuntimeError(
            f"POST /admin/webhooks answered {response.status_code}: {response.text[:500]}"
        )
    return Subscription(service_url, str(response.json()["id"]))


def newest_position(service_url: str) -> int:
    """The newest event position, from the service's metrics (0 before any event)."""
    metrics = httpx.get(f"{service_url}/metrics", timeout=10).text
    found = re.search(r"^wallet_events_newest_position (\S+)", metrics, re.M)
    return int(float(found.group(1))) if found else 0


def delivery_summary(
    receiver: Receiver, first: int, last: int, load_ended_s: float, drained_s: float | None
) -> dict[str, Any]:
    """What the endpoint saw of the events at positions (first, last]: lags in ms (p50, p99,
    max), the drain time after the load, the events never delivered by then."""
    lags, repeats = receiver.lags(first, last)
    lags.sort()
    summary: dict[str, Any] = {
        "events": last - first,
        "delivered": len(lags),
        "repeats": repeats,
        "unsigned": receiver.unsigned,
        "refused": receiver.refused,
        "unnoted": receiver.unnoted,
        "drain_s": None if drained_s is None else round(max(0.0, drained_s - load_ended_s), 3),
    }
    if lags:
        summary["lag_ms"] = {
            "p50": round(1000 * percentile(lags, 0.50), 2),
            "p99": round(1000 * percentile(lags, 0.99), 2),
            "max": round(1000 * lags[-1], 2),
        }
    return summary
