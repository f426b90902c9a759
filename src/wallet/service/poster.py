"""One HTTP/1.1 connection that POSTs to one URL, request after request: the webhook sink's
transport.

Why not a general HTTP client: the relay sends one event per request, one at a time, and on
loopback httpx took about 1 ms of CPU per POST where this takes about 0.1 ms (bench/README.md,
"Events"); at the rate a game writes, that is the difference between an endpoint that keeps up
and one that falls behind. It does one thing: write a POST with a body and its headers, and read
the answer with httptools (the C parser the server uses too) up to its status, reading at most
``answer_bytes_max`` of its body. A redirect is an answer like any other (never followed).

The connection is kept while the server keeps it; a request on a kept connection that the
server had closed meanwhile (nothing came back) is sent once more on a new one. At least once
allows it: the receiver tells a repeat by its ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

_READ_BYTES = 64 * 1024


class PostFailed(Exception):
    """No answer: the connection failed or closed, or the answer was not HTTP."""


class _Answer:
    """httptools' callbacks: whether the head was read, how much body, whether it all came."""

    def __init__(self) -> None:
        self.head_done = False
        self.complete = False
        self.body_bytes = 0

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Poster:
    def __init__(self, url: str, answer_bytes_max: int, user_agent: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http or https URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = parts.port is None
        host = parts.netloc.rpartition("@")[2] if not default_port else parts.hostname
        if ":" in self._host and default_port:
            host = f"[{self._host}]"
        self._head = (
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
            "Content-Type: application/json\r\n"
        ).encode("ascii")
        self._answer_bytes_max = answer_bytes_max
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """Send ``body`` with ``headers``; the answer's status. Raises PostFailed or OSError.
        Unbounded in time: the caller bounds the whole exchange."""
        request = b"%s%sContent-Length: %d\r\n\r\n%s" % (
            self._head,
            "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("ascii"),
            len(body),
            body,
        )
        reused = self._writer is not None
        try:
            return await self._exchange(request)
        except (_NoAnswer, ConnectionError):
            self.close()
            if not reused:
                raise
        except BaseException:
            self.close()
            raise
        # The server had closed the kept connection: once more, on a new one.
        try:
            return await self._exchange(request)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, request: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=self._host if self._tls else None,
                limit=_READ_BYTES,
            )
        assert self._reader is not None
        self._writer.write(request)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        received = 0
        while not answer.complete:
            data = await self._reader.read(_READ_BYTES)
            if not data:
                if answer.head_done:
                    break  # an answer whose body ends with the connection
                if received == 0:
                    raise _NoAnswer("the connection closed before an answer")
                raise PostFailed("the connection closed in the middle of an answer")
            received += len(data)
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as error:
                raise PostFailed(f"not an HTTP answer: {error}") from None
            if answer.head_done and answer.body_bytes >= self._answer_bytes_max:
                break  # enough: none of the body matters but its status
        status = int(parser.get_status_code())
        if not (answer.complete and parser.should_keep_alive()):
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class _NoAnswer(PostFailed):
    """The connection ended before any byte of an answer came."""
