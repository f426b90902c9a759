"""One HTTP/1.1 connection that POSTs to one URL, request after request: the webhook sink's
transport, on a blocking socket, called from the relay runner's delivery threads.

Why not a general HTTP client: the relay sends one event per request, one at a time, and on
loopback httpx took about 1 ms of CPU per POST where this takes a few µs (bench/README.md,
"Events"); at the rate a game writes, that is the difference between an endpoint that keeps up
and one that falls behind. Why blocking: a delivery waits for its answer before the next goes,
so an event loop would only add its own wake-ups, futures and timers to every event; a thread
that blocks in the socket holds no lock meanwhile. It does one thing: write a POST with a body
and its headers, and read the answer with httptools (the C parser the server uses too) up to its
status, reading at most ``answer_bytes_max`` of its body. A redirect is an answer like any other
(never followed).

The connection is kept while the server keeps it; a request on a kept connection that the
server had closed meanwhile (nothing came back) is sent once more on a new one. At least once
allows it: the receiver tells a repeat by its ``webhook-id``.
"""

from __future__ import annotations

import base64
import socket
import ssl
import struct
import time
from urllib.parse import unquote

import httptools
import httpx

_READ_BYTES = 64 * 1024


class PostFailed(Exception):
    """No answer: the connection failed or closed, or the answer was not HTTP."""


class _Answer:
    """httptools' callbacks: the final answer's status, whether its head was read, how much of
    its body, whether it all came. An interim answer (1xx) is passed over."""

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.status = 0
        self.interim = False
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.body_bytes = 0

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        status = int(self.parser.get_status_code())
        if 100 <= status < 200:
            self.interim = True
            return
        self.status = status
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        if not self.interim:
            self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        assert self.parser is not None
        # Asked now: once the message is done, the parser is ready for the next one.
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True


class Poster:
    def __init__(self, url: str, answer_bytes_max: int, user_agent: str) -> None:
        # As an HTTP client sends it: the host in IDNA, the path and query percent-encoded.
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.raw_host:
            raise ValueError(f"not an http or https URL: {url!r}")
        self._host = parsed.raw_host.decode("ascii")
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._tls = ssl.create_default_context() if parsed.scheme == "https" else None
        host = f"[{self._host}]" if ":" in self._host else self._host
        if parsed.port is not None:
            host = f"{host}:{parsed.port}"
        head = (
            f"POST {parsed.raw_path.decode('ascii')} HTTP/1.1\r\nHost: {host}\r\n"
            f"User-Agent: {user_agent}\r\nContent-Type: application/json\r\n"
        )
        if parsed.userinfo:
            # user:password in the URL: HTTP Basic authentication, as clients do.
            user, _, password = parsed.userinfo.decode("ascii").partition(":")
            credentials = f"{unquote(user)}:{unquote(password)}".encode()
            head += f"Authorization: Basic {base64.b64encode(credentials).decode()}\r\n"
        self._head = head.encode("ascii")
        self._answer_bytes_max = answer_bytes_max
        self._socket: socket.socket | None = None
        self._closed = False

    def post(self, body: bytes, headers: bytes, timeout_s: float) -> int:
        """Send ``body`` with ``headers`` (lines, each ending in CRLF); the final answer's status.
        Raises PostFailed, TimeoutError (no answer within ``timeout_s``, for the whole exchange)
        or OSError."""
        deadline = time.monotonic() + timeout_s
        request = b"%s%sContent-Length: %d\r\n\r\n%s" % (self._head, headers, len(body), body)
        reused = self._socket is not None
        try:
            return self._exchange(request, deadline)
        except _NoAnswer:
            self._drop()
            if not reused or self._closed:
                raise
        except BaseException:
            self._drop()
            raise
        # The server had closed the kept connection, and nothing came back: once more, on a
        # new one.
        try:
            return self._exchange(request, deadline)
        except BaseException:
            self._drop()
            raise

    def _exchange(self, request: bytes, deadline: float) -> int:
        if self._closed:
            raise PostFailed("the poster is closed")
        connection = self._socket
        if connection is None:
            connection = self._connect(deadline)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        answer.parser = parser
        received = 0
        try:
            connection.settimeout(_left_s(deadline))
            connection.sendall(request)
            while not answer.complete:
                connection.settimeout(_left_s(deadline))
                data = connection.recv(_READ_BYTES)
                if not data:
                    if answer.head_done:
                        # The answer's status came: it stands, whatever became of its body.
                        break
                    if received == 0:
                        raise _NoAnswer("the connection closed before an answer")
                    raise PostFailed("the connection closed in the middle of an answer")
                received += len(data)
                parser.feed_data(data)
                if answer.head_done and answer.body_bytes >= self._answer_bytes_max:
                    break  # enough: none of the body matters but its status
        except ConnectionError as error:
            if received == 0:
                raise _NoAnswer(f"the connection failed before an answer: {error}") from None
            raise PostFailed(f"the connection failed in the middle of an answer: {error}") from None
        except httptools.HttpParserUpgrade:
            raise PostFailed("the answer switches protocols") from None
        except httptools.HttpParserError as error:
            if not answer.complete:
                raise PostFailed(f"not an HTTP answer: {error}") from None
            # Bytes after the answer that are not one: the answer stands, the connection goes.
            self._drop()
            return answer.status
        if not (answer.complete and answer.keep_alive):
            self._drop()
        return answer.status

    def _connect(self, deadline: float) -> socket.socket:
        connection = socket.create_connection((self._host, self._port), timeout=_left_s(deadline))
        try:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                connection.settimeout(_left_s(deadline))
                connection = self._tls.wrap_socket(connection, server_hostname=self._host)
        except BaseException:
            connection.close()
            raise
        self._socket = connection
        if self._closed:  # closed meanwhile, from another thread
            self._drop()
            raise PostFailed("the poster is closed")
        return connection

    def close(self) -> None:
        """Drop the connection, and post no more; from any thread, also while a post waits on
        it (which then fails at once, and is not sent again)."""
        self._closed = True
        self._drop()

    def _drop(self) -> None:
        connection, self._socket = self._socket, None
        if connection is None:
            return
        # An abort, not a close: nothing of ours is worth sending any more, and a server that
        # stopped reading must not keep the socket open (no linger: a reset).
        try:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()


def _left_s(deadline: float) -> float:
    """What is left until ``deadline``; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the deadline passed")
    return left


class _NoAnswer(PostFailed):
    """The connection ended before any byte of an answer came."""
