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
import base64
import ssl
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
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """Send ``body`` with ``headers``; the final answer's status. Raises PostFailed or
        OSError. Unbounded in time: the caller bounds the whole exchange."""
        request = b"%s%sContent-Length: %d\r\n\r\n%s" % (
            self._head,
            "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("ascii"),
            len(body),
            body,
        )
        reused = self._writer is not None
        try:
            return await self._exchange(request)
        except _NoAnswer:
            self.close()
            if not reused:
                raise
        except BaseException:
            self.close()
            raise
        # The server had closed the kept connection, and nothing came back: once more, on a
        # new one.
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
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        answer.parser = parser
        received = 0
        try:
            self._writer.write(request)
            while not answer.complete:
                data = await self._reader.read(_READ_BYTES)
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
            self.close()
            return answer.status
        if not (answer.complete and answer.keep_alive):
            self.close()
        return answer.status

    def close(self) -> None:
        if self._writer is not None:
            # abort, not close: nothing of ours is worth sending any more, and a server that
            # stopped reading must not keep the socket open.
            self._writer.transport.abort()
        self._reader = self._writer = None


class _NoAnswer(PostFailed):
    """The connection ended before any byte of an answer came."""
