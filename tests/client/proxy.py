"""A tiny HTTP proxy in front of the real service, to make the network misbehave on purpose.

Each request the client sends is read whole and then handled by the next action of a plan:

- ``FORWARD``: sent to the service, and its answer sent back;
- ``DROP``: sent to the service, its answer read (so the service has finished, committed and
  all), and then the client's connection is closed without a byte: a lost response;
- ``SILENT``: nothing is sent anywhere and nothing answered, until the test ends: a read timeout;
- ``answer(status, body, headers)``: the service is not asked; this answer is sent instead.

Once the plan runs out, every request is forwarded. Each connection carries one request
(``Connection: close`` both ways), so every attempt of the client is a new connection, and the
proxy records every request's head so a test can read the headers the client sent.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FORWARD = "forward"
DROP = "drop"
SILENT = "silent"
SILENT_HOLD_S = 30.0


@dataclass(frozen=True)
class Canned:
    """An answer the proxy gives in place of the service."""

    raw: bytes


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Canned:
    """A canned answer; a dict body is sent as ``application/problem+json``."""
    if isinstance(body, dict):
        content, media_type = json.dumps(body).encode(), "application/problem+json"
    else:
        content, media_type = str(body).encode(), "text/html"
    lines = [
        f"HTTP/1.1 {status} Canned",
        f"Content-Type: {media_type}",
        f"Content-Length: {len(content)}",
        "X-Request-ID: canned-request",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return Canned(("\r\n".join(lines) + "\r\n\r\n").encode() + content)


def problem(status: int, code: str, detail: str = "canned by the test proxy") -> Canned:
    """A canned problem in the service's own shape, with Retry-After: 0 on a 503."""
    body = {"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail}
    headers = {"Retry-After": "0"} if status == 503 else None
    return answer(status, body, headers)


@dataclass
class Recorded:
    """One request the proxy received: its request line and headers (lower-cased names)."""

    line: str
    headers: dict[str, str] = field(default_factory=dict)


class Proxy:
    """Listens on a free local port; ``url`` is what the client should use."""

    def __init__(self, upstream_port: int | None, plan: Sequence[str | Canned] = ()) -> None:
        self.upstream_port = upstream_port
        self.plan = list(plan)
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def next_action(self, recorded: Recorded) -> str | Canned:
        with self.lock:
            self.requests.append(recorded)
            return self.plan.pop(0) if self.plan else FORWARD

    def keys(self) -> list[str | None]:
        """The Idempotency-Key header of every request received, in order."""
        return [r.headers.get("idempotency-key") for r in self.requests]

    def forward(self, head: bytes, body: bytes) -> bytes:
        """Send one request to the service on a new connection and read its whole answer."""
        assert self.upstream_port is not None
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as upstream:
            upstream.sendall(head + body)
            chunks = []
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        proxy: Proxy = self.server.proxy  # type: ignore[attr-defined]
        line = self.rfile.readline()
        if not line:
            return
        headers: dict[str, str] = {}
        head_lines = [line]
        while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
            if name.strip().lower() != "connection":
                head_lines.append(header)
        head = b"".join([*head_lines, b"Connection: close\r\n\r\n"])
        body = self.rfile.read(int(headers.get("content-length", "0")))
        action = proxy.next_action(Recorded(line.decode("latin-1").strip(), headers))
        if isinstance(action, Canned):
            self.wfile.write(action.raw)
        elif action == SILENT:
            proxy.stopping.wait(SILENT_HOLD_S)
        elif action == DROP:
            proxy.forward(head, body)
        else:
            self.wfile.write(proxy.forward(head, body))
