"""Serving the app with uvicorn, settings from the environment.

On SIGTERM uvicorn stops accepting connections, lets the requests in flight finish (at most
SHUTDOWN_GRACE_S), then runs the app's shutdown, where the writer commits every queued write.
``DrainingHttpProtocol`` closes the one gap uvicorn leaves: a request already sent on a
keep-alive connection between two requests is answered, not reset.

``BoundedHttpProtocol`` holds the door against hostile traffic, before the app sees a byte: the
request line, each header, all headers and their number are bounded as they arrive (limits.py),
so memory and time spent on a request's head never depend on what a client sends beyond the
bounds; a client must send its headers and its body within deadlines; and the number of open
connections is bounded below the process's limit of open files.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
from dataclasses import dataclass
from typing import ClassVar

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from wallet.api import create_app
from wallet.api.problems import EXTRA_PROBLEMS, PROBLEM_JSON, STATUS_BY_CODE, problem_body
from wallet.config import Settings
from wallet.domain.errors import Overloaded
from wallet.limits import (
    BODY_TIMEOUT_S,
    CONNECTIONS_MAX,
    FILE_DESCRIPTORS_RESERVED,
    HEADER_BYTES_MAX,
    HEADERS_BYTES_MAX,
    HEADERS_COUNT_MAX,
    HEADERS_TIMEOUT_S,
    REQUEST_LINE_BYTES_MAX,
    RETRY_AFTER_S,
    SHUTDOWN_GRACE_S,
    SHUTDOWN_IDLE_LINGER_S,
)
from wallet.logs import configure_logging

log = logging.getLogger(__name__)

# The request target may take the request line's bound less room for the longest method and
# the version (" HTTP/1.1" and the spaces).
_TARGET_BYTES_MAX = REQUEST_LINE_BYTES_MAX - 24
# What a whole head may weigh on the wire: the request line, the headers, and per header its
# ": " and line end, then the blank line. The parser keeps a header that is still arriving to
# itself, so this raw count is what bounds a header sent in pieces.
_HEAD_BYTES_MAX = REQUEST_LINE_BYTES_MAX + HEADERS_BYTES_MAX + 4 * HEADERS_COUNT_MAX + 2

_URL_TOO_LONG = f"the request line is longer than {REQUEST_LINE_BYTES_MAX} bytes"
_HEADERS_TOO_LARGE = f"the headers are larger than {HEADERS_BYTES_MAX} bytes"


class DrainingHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with a shutdown that never resets a request already sent.

    On shutdown uvicorn closes at once a keep-alive connection that is between two requests. But
    its client may have sent the next request already: the bytes wait unread in the socket, and
    closing a socket with unread data sends a TCP reset, so the client sees its request cut off
    without an answer and cannot know whether it was done. Here such a connection stays open for
    SHUTDOWN_IDLE_LINGER_S: a request arriving meanwhile is served as usual, answered with
    ``Connection: close``, and the connection closes after the answer; a quiet one is closed at
    the end of the linger (the same race as any keep-alive timeout, for a client that stayed idle
    for the whole linger).
    """

    _draining = False

    def shutdown(self) -> None:
        self._draining = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(SHUTDOWN_IDLE_LINGER_S, self._close_if_idle)
        else:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._draining:
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


@dataclass(frozen=True, slots=True)
class ConnectionBounds:
    headers_timeout_s: float = HEADERS_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S
    connections_max: int = CONNECTIONS_MAX


class _Phase(enum.Enum):
    """Where a connection is in reading its client's request."""

    HEAD = "head"  # the request's head is arriving (or, on a new connection, awaited)
    BODY = "body"  # the head is complete, the body is not
    IDLE = "idle"  # the request is complete; no byte of the next one has been read


class _TooLarge(Exception):
    """Raised from a parser callback: the head went over a bound; the parser stops there."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _keep_alive_ends(connection: HttpToolsProtocol) -> float:
    """When an idle connection's keep-alive ends: the soonest is the one idle the longest."""
    assert connection.timeout_keep_alive_task is not None
    return connection.timeout_keep_alive_task.when()


def _header_refusal(size: int, count: int) -> str:
    if size > HEADER_BYTES_MAX:
        return f"a header is larger than {HEADER_BYTES_MAX} bytes"
    if count >= HEADERS_COUNT_MAX:
        return f"more than {HEADERS_COUNT_MAX} headers"
    return _HEADERS_TOO_LARGE


class BoundedHttpProtocol(DrainingHttpProtocol):
    """The HTTP/1.1 protocol with bounds on what a client sends and how slowly it sends it.

    - The head is counted as it arrives: the target in ``on_url`` before it is appended, each
      complete header in ``on_header``, and the raw bytes of a head still incomplete after each
      read (the parser accumulates a header sent in pieces until its end, out of our sight).
      Over a bound: 414 ``url_too_long`` or 431 ``headers_too_large``, and the connection closes.
    - One timer per connection, armed only while the client owes us bytes: the head of a request
      (from its first byte; on a new connection, from the connection) and then its body. A
      request that arrives whole in one read, the usual case, arms none. Past the deadline:
      408 ``request_timeout`` and the connection closes.
    - Beyond ``connections_max`` open connections, the connection idle the longest (between two
      requests, kept alive) is closed to make room, as its keep-alive's end would have, later;
      when none is idle, the new one is answered 503 ``overloaded`` and closed at once. So idle
      connections, which a client may keep for the whole keep-alive, never lock out new ones.
    """

    bounds: ClassVar[ConnectionBounds] = ConnectionBounds()

    _phase = _Phase.HEAD
    _deadline: asyncio.TimerHandle | None = None
    _deadline_phase: _Phase | None = None
    _head_bytes = 0
    _headers_bytes = 0
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.bounds.connections_max and not self._close_longest_idle():
            detail = "the service has too many open connections; retry later"
            status = STATUS_BY_CODE[Overloaded.code]
            self._answer_and_close(status, Overloaded.code, Overloaded.title, detail)
            return
        self._arm(_Phase.HEAD)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        # uvicorn cancels the keep-alive timer only on a clean close: after a reset the timer
        # would keep this protocol, and its last request, for the whole keep-alive.
        self._unset_keepalive_if_required()
        super().connection_lost(exc)

    def _close_longest_idle(self) -> bool:
        """Close the connection that has been idle the longest, if any is (True)."""
        idle = [
            connection
            for connection in self.connections
            if isinstance(connection, HttpToolsProtocol)
            and connection.timeout_keep_alive_task is not None
        ]
        if not idle:
            return False
        longest = min(idle, key=_keep_alive_ends)
        longest._unset_keepalive_if_required()
        longest.transport.close()
        return True

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._phase is not _Phase.BODY:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # WebSockets are off (serve() passes ws="none"): the request is served as plain
            # HTTP, as uvicorn does, but without uvicorn's warning, which any client could repeat.
            pass
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, _TooLarge):
                too_large = error.__context__
                self._refuse(too_large.code, too_large.detail)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._phase is _Phase.BODY:
            if self._deadline_phase is not _Phase.BODY:
                self._arm(_Phase.BODY)
        elif self._phase is _Phase.HEAD or self._head_bytes:
            if self._head_bytes > _HEAD_BYTES_MAX:
                self._refuse("headers_too_large", _HEADERS_TOO_LARGE)
            elif self._deadline_phase is not _Phase.HEAD:
                self._arm(_Phase.HEAD)
        elif self._deadline is not None:
            self._disarm()

    # Parser callbacks.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _Phase.HEAD
        self._headers_bytes = 0

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > _TARGET_BYTES_MAX:
            raise _TooLarge("url_too_long", _URL_TOO_LONG)
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self._headers_bytes += size
        if (
            size > HEADER_BYTES_MAX
            or self._headers_bytes > HEADERS_BYTES_MAX
            or len(self.headers) >= HEADERS_COUNT_MAX
        ):
            raise _TooLarge("headers_too_large", _header_refusal(size, len(self.headers)))
        # uvicorn's on_header, inlined: this runs for every header of every request.
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._phase = _Phase.BODY
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _Phase.IDLE
        super().on_message_complete()

    # Deadlines.

    def _arm(self, phase: _Phase) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        bounds = self.bounds
        delay = bounds.headers_timeout_s if phase is _Phase.HEAD else bounds.body_timeout_s
        self._deadline = self.loop.call_later(delay, self._deadline_passed)
        self._deadline_phase = phase

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._deadline_phase = None

    def _deadline_passed(self) -> None:
        phase = self._deadline_phase
        self._deadline = self._deadline_phase = None
        if self.transport.is_closing() or phase is None:
            return
        if self.flow.read_paused:
            # We stopped reading (a pipelined request waits for the one before it, or the app
            # has not read the body yet): the client is not late, so the deadline starts again.
            self._arm(phase)
            return
        if phase is _Phase.HEAD:
            timeout_s = self.bounds.headers_timeout_s
            self._refuse("request_timeout", f"the request's headers took over {timeout_s:g} s")
            return
        cycle = self.cycle
        timeout_s = self.bounds.body_timeout_s
        if cycle.response_started:
            self.transport.close()
            return
        # The app waits for the body: it is told the client is gone, and whatever it sends is
        # dropped, so that nothing follows the 408 on the connection.
        cycle.disconnected = True
        cycle.message_event.set()
        status, title = EXTRA_PROBLEMS["request_timeout"]
        detail = f"the request's body took over {timeout_s:g} s"
        self._answer_and_close(status, "request_timeout", title, detail)

    # Refusals.

    def _refuse(self, code: str, detail: str) -> None:
        """Stop reading this client: answer ``code`` and close, or, while an earlier request's
        answer is still being sent, let that answer finish and close after it."""
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        status, title = EXTRA_PROBLEMS[code]
        self._answer_and_close(status, code, title, detail)

    def _answer_and_close(self, status: int, code: str, title: str, detail: str) -> None:
        self._refused = True
        self._disarm()
        body = orjson.dumps(problem_body(status, code, title, detail))
        head = [
            STATUS_LINE[status],
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n",
        ]
        if status == 503:
            head.append(b"retry-after: " + str(RETRY_AFTER_S).encode() + b"\r\n")
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


def protocol_for(settings: Settings, connections_max: int) -> type[BoundedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, with these settings' bounds."""

    class WalletHttpProtocol(BoundedHttpProtocol):
        bounds = ConnectionBounds(
            headers_timeout_s=settings.headers_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            connections_max=connections_max,
        )

    return WalletHttpProtocol


def fit_connections_to_open_files(wanted: int) -> int:
    """Raise the soft limit of open files to the hard one, and the connection bound that fits
    under it: ``wanted``, or fewer (with a warning) when the hard limit is too small."""
    if sys.platform == "win32":
        return wanted
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard == resource.RLIM_INFINITY or wanted + FILE_DESCRIPTORS_RESERVED <= hard:
        return wanted
    fitted = max(1, hard - FILE_DESCRIPTORS_RESERVED)
    log.warning(
        "the limit of open files (%d) leaves room for %d connections, not %d: serving at most %d",
        hard,
        fitted,
        wanted,
        fitted,
    )
    return fitted


def serve(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    configure_logging(settings)
    connections_max = fit_connections_to_open_files(settings.connections_max)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        http=protocol_for(settings, connections_max),
        timeout_keep_alive=settings.keep_alive_s,
        # No WebSocket route exists, and the edge refuses a WebSocket scope anyway.
        ws="none",
        # Finish in-flight requests on SIGTERM, within a bound.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        server_header=False,
    )
