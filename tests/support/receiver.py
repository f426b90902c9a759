"""A real HTTP receiver of webhooks, in the test process: a threading HTTP server on 127.0.0.1
that records every POST and answers as it is told (acknowledge, fail, be slow, redirect, answer
a huge body, drop the connection, or be down altogether).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook

DEADLINE_S = 30.0


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    path: str
    at: float  # time.monotonic() when it arrived

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = orjson.loads(self.body)
        return event

    @property
    def position(self) -> int:
        return int(self.event["position"])


class WebhookReceiver:
    """``mode``: ``ok`` (204), ``fail`` (500), ``slow`` (200 after ``slow_s``), ``redirect``
    (307 to /elsewhere), ``huge`` (200 with a body of ``huge_bytes``), ``drop`` (close without an
    answer). ``down()`` closes the listening socket; ``up()`` listens on the same port again."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.slow_s = 2.0
        self.huge_bytes = 64 * 1024 * 1024
        # How much of the huge answers the sender took before it hung up.
        self.huge_sent = 0
        # Every answer waits this long first (``slow`` waits ``slow_s`` instead), and the most
        # requests ever seen at once is counted: a relay sends one at a time.
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.received.append(Received(headers, body, handler.path, time.monotonic()))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        answering = [True]

        def answered() -> None:
            # A request stops being in flight as its answer starts: the sender may send the
            # next one as soon as it has read this answer, before this thread goes on.
            with self._lock:
                if answering[0]:
                    answering[0] = False
                    self.in_flight -= 1

        try:
            self._answer(handler, answered)
        finally:
            answered()

    def _answer(self, handler: BaseHTTPRequestHandler, answered: Callable[[], None]) -> None:
        mode = self.mode
        time.sleep(self.delay_s)
        try:
            if mode == "drop":
                answered()
                handler.close_connection = True
                return
            if mode == "slow":
                time.sleep(self.slow_s)
            status = {"ok": 204, "fail": 500, "slow": 200, "redirect": 307, "huge": 200}[mode]
            answered()
            handler.send_response(status)
            if mode == "redirect":
                handler.send_header("Location", "/elsewhere")
            size = self.huge_bytes if mode == "huge" else 0
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            chunk = b"x" * 65536
            while size > 0:
                handler.wfile.write(chunk[:size])
                self.huge_sent += len(chunk[:size])
                size -= len(chunk)
        except OSError:
            pass  # the sender hung up (a timeout, or it read enough)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def positions(self) -> list[int]:
        return [r.position for r in self.snapshot()]

    def wait_for(
        self, check: Callable[[list[Received]], bool], deadline_s: float = DEADLINE_S
    ) -> list[Received]:
        """Poll until ``check`` holds of what was received; fail after ``deadline_s``."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            received = self.snapshot()
            if check(received):
                return received
            time.sleep(0.02)
        raise AssertionError(f"not received in {deadline_s} s; got positions {self.positions()}")

    def close(self) -> None:
        self.down()


def verify(received: Received, secret: str) -> dict[str, Any]:
    """The event, once its Standard Webhooks signature is verified (raises otherwise)."""
    event: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return event


def wait_until(check: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    """Poll ``check`` until it returns something true; that value. Fails after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"still not true after {deadline_s} s")
