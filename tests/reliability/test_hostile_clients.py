"""Hostile clients against a real server process, with raw sockets: heads over the bounds
(REQUEST_LINE_BYTES_MAX, HEADER_BYTES_MAX, HEADERS_BYTES_MAX, HEADERS_COUNT_MAX) are refused
before they cost memory; slow clients are cut off at their deadlines (HEADERS_TIMEOUT_S,
BODY_TIMEOUT_S) while well-behaved clients are served; a connection beyond the bound
(CONNECTIONS_MAX) is refused; the process raises its own limit of open files; and an idle
connection is kept longer than clients keep theirs (KEEP_ALIVE_S), then closed.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess
from wallet.config import Settings
from wallet.limits import (
    FILE_DESCRIPTORS_RESERVED,
    HEADER_BYTES_MAX,
    HEADERS_BYTES_MAX,
    HEADERS_COUNT_MAX,
    REQUEST_LINE_BYTES_MAX,
)
from wallet.server import fit_connections_to_open_files

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
MiB = 1024 * 1024
# A refused head may cost the server one read beyond its bound, never what the client sends.
RSS_GROWTH_MAX_BYTES = 8 * MiB
# How long a socket waits for the server's answer: far past any bound, so that only a server
# that never answers (or never closes) fails.
ANSWER_WAIT_S = 20.0


def status_of(answer: bytes) -> int | None:
    """The status of an HTTP answer; None when nothing was answered."""
    if not answer:
        return None
    return int(answer.split(b" ", 2)[1])


def read_until_closed(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass  # the server closed with our bytes unread: what it answered may be lost
    return b"".join(chunks)


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` as fast as the server takes it, then read until the server closes."""
    with socket.create_connection((HOST, port), timeout=ANSWER_WAIT_S) as sock:
        # The server may stop reading and close: what we check is what it answered.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_until_closed(sock)


def head(target: bytes = b"/health", headers: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: wallet\r\n" + headers + b"\r\n"


def header_lines(count: int, value_bytes: int) -> bytes:
    return b"".join(b"x-%d: %s\r\n" % (i, b"v" * value_bytes) for i in range(count))


# Heads just over a bound, sent whole: the answer is read before the server closes.
OVER_BY_A_LITTLE = {
    "request line over its bound": (head(b"/" + b"a" * REQUEST_LINE_BYTES_MAX), 414),
    "one header over its bound": (
        head(headers=b"x-big: " + b"a" * HEADER_BYTES_MAX + b"\r\n"),
        431,
    ),
    "one header too many": (head(headers=header_lines(HEADERS_COUNT_MAX, 1)), 431),
    "small headers adding up past the bound": (
        head(headers=header_lines(HEADERS_BYTES_MAX // 500 + 1, 500)),
        431,
    ),
}
# Heads far over a bound: the server stops reading and closes, so its answer may be lost in the
# reset; what it must not do is read them all, or keep them.
OVER_BY_A_LOT = {
    "a 16 MiB URL": (head(b"/" + b"a" * 16 * MiB), 414),
    "a 16 MiB header": (head(headers=b"x-big: " + b"a" * 16 * MiB + b"\r\n"), 431),
    "4 MiB of tiny headers": (head(headers=b"a:b\r\n" * (4 * MiB // 5)), 431),
}


def test_heads_over_the_bounds_are_refused_before_they_cost_memory(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, tmp_path / "server.log").start()
    try:
        assert status_of(exchange(server.port, head(headers=b"Connection: close\r\n"))) == 200
        for case, (request, status) in OVER_BY_A_LITTLE.items():
            assert status_of(exchange(server.port, request)) == status, case
        for case, (request, status) in OVER_BY_A_LOT.items():
            before = server.rss_bytes
            assert status_of(exchange(server.port, request)) in (status, None), case
            growth = server.rss_bytes - before
            assert growth < RSS_GROWTH_MAX_BYTES, (case, growth)
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    finally:
        server.kill()


SLOW_CLIENTS = 500
DEADLINE_S = 3.0
TRICKLE_EVERY_S = 0.25
# The review's finding: 260 half-open connections took a process with 256 open files down.
OPEN_FILES_AT_START = 256
TOPUP = {"transaction_type": "topup", "user_id": "hostile_neighbour", "asset_code": "GC"}


@pytest.fixture
def enough_open_files() -> Iterator[None]:
    """This test process holds every slow client's socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SLOW_CLIENTS + 200
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit of open files ({hard}) is under {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Trickler:
    """Slow clients: each sends the start of a request, then one byte every TRICKLE_EVERY_S
    (of a header that never ends, or of a body that never completes) until the server closes."""

    def __init__(self, port: int, stack: ExitStack) -> None:
        self.sockets: list[socket.socket] = []
        self.started = time.monotonic()
        for i in range(SLOW_CLIENTS):
            sock = stack.enter_context(socket.create_connection((HOST, port), timeout=5))
            if i % 2:
                start = b"POST /transaction HTTP/1.1\r\nHost: wallet\r\nx-slow: "
            else:
                start = (
                    b"POST /transaction HTTP/1.1\r\nHost: wallet\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
                )
            sock.sendall(start)
            self.sockets.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        alive = list(self.sockets)
        while alive and not self._stop.wait(TRICKLE_EVERY_S):
            for sock in list(alive):
                try:
                    sock.send(b" ")
                except OSError:
                    alive.remove(sock)

    def answers(self) -> list[tuple[int | None, float]]:
        """Each slow client's answer and how long after it connected the server closed it."""
        results = []
        for sock in self.sockets:
            sock.settimeout(ANSWER_WAIT_S)
            answer = read_until_closed(sock)
            results.append((status_of(answer), time.monotonic() - self.started))
        self._stop.set()
        self._thread.join()
        return results


def best_of_three(call: httpx.Client, method: str, path: str, **kwargs: object) -> float:
    """The fastest of three answers, each of which must succeed: a busy machine may delay one
    request, while a server starved by slow clients answers none."""
    durations = []
    for _ in range(3):
        started = time.monotonic()
        response = call.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert response.status_code in (200, 201), response.text
        durations.append(time.monotonic() - started)
    return min(durations)


def test_slow_clients_are_cut_off_at_their_deadlines_while_others_are_served(
    database_url: str, tmp_path: Path, enough_open_files: None
) -> None:
    server = ServerProcess(
        database_url,
        tmp_path / "server.log",
        open_files_soft=OPEN_FILES_AT_START,
        WALLET_HEADERS_TIMEOUT_S=str(DEADLINE_S),
        WALLET_BODY_TIMEOUT_S=str(DEADLINE_S),
    ).start()
    try:
        with ExitStack() as stack:
            slow = Trickler(server.port, stack)
            with httpx.Client(base_url=server.url, timeout=5) as client:
                health_s = best_of_three(client, "GET", "/health")
                amount = {**TOPUP, "amount": "1.00", "idempotency_key": uuid.uuid4().hex}
                write_s = best_of_three(client, "POST", "/transaction", json=amount)
            answers = slow.answers()
        assert health_s < 1.0, health_s
        assert write_s < 1.0, write_s
        # Every slow client was answered 408 and closed, and none before its deadline (the
        # server's clock started after ours).
        assert {status for status, _ in answers} == {408}
        assert min(after for _, after in answers) >= DEADLINE_S
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    finally:
        server.kill()


def test_a_connection_beyond_the_bound_is_refused(database_url: str, tmp_path: Path) -> None:
    bound = 20
    server = ServerProcess(
        database_url, tmp_path / "server.log", WALLET_CONNECTIONS_MAX=str(bound)
    ).start()
    try:
        with ExitStack() as stack:
            for _ in range(bound):
                stack.enter_context(socket.create_connection((HOST, server.port), timeout=5))
            answer = exchange(server.port, head(headers=b"Connection: close\r\n"))
            assert status_of(answer) == 503
            assert b'"code":"overloaded"' in answer
            assert b"retry-after: 1" in answer.lower()
        # The held connections are gone: the next client is served (the server learns of the
        # closes as it reads them, so it may refuse a few more first).
        deadline = time.monotonic() + ANSWER_WAIT_S
        while status_of(exchange(server.port, head(headers=b"Connection: close\r\n"))) != 200:
            assert time.monotonic() < deadline, "the bound was never freed"
            time.sleep(0.05)
    finally:
        server.kill()


def test_the_process_raises_its_limit_of_open_files_and_fits_the_bound_under_it() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        assert fit_connections_to_open_files(100) == 100
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
        if hard != resource.RLIM_INFINITY:
            assert fit_connections_to_open_files(hard) == hard - FILE_DESCRIPTORS_RESERVED
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def answer_on(sock: socket.socket) -> bytes:
    """One answer read off a kept-alive connection: its head, then Content-Length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before the answer: {data!r}"
        data += chunk
    head_bytes, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head_bytes.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of the answer"
        body += chunk
    return head_bytes


# A keep-alive past what common clients keep an idle connection for (httpx: 5 s), with room
# for a busy machine's delays between the client's idle time and the server's.
KEEP_ALIVE_S = 8
CLIENT_IDLE_S = 5.5


# The HTTP layer is the same on both backends, and this test is mostly waiting.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_idle_connection_outlives_a_clients_and_closes_at_its_keep_alive(
    database_url: str, tmp_path: Path
) -> None:
    # A client reuses an idle connection for up to its own expiry: were the service to close
    # sooner, a request could go out on a connection just being closed, and be reset unanswered.
    client_expiry_s = httpx.Limits().keepalive_expiry
    assert client_expiry_s is not None
    assert client_expiry_s < KEEP_ALIVE_S
    assert client_expiry_s < Settings().keep_alive_s
    server = ServerProcess(
        database_url, tmp_path / "server.log", WALLET_KEEP_ALIVE_S=str(KEEP_ALIVE_S)
    ).start()
    try:
        with socket.create_connection((HOST, server.port), timeout=ANSWER_WAIT_S) as sock:
            sock.sendall(head())
            assert status_of(answer_on(sock)) == 200
            time.sleep(CLIENT_IDLE_S)
            sock.sendall(head())
            assert status_of(answer_on(sock)) == 200, "closed before the keep-alive"
            idle_from = time.monotonic()
            assert read_until_closed(sock) == b""
            idle_s = time.monotonic() - idle_from
        # Our clock started after the server's (it armed its timer as it sent the answer).
        assert KEEP_ALIVE_S - 1 <= idle_s < ANSWER_WAIT_S, idle_s
    finally:
        server.kill()


def test_at_the_bound_the_connection_idle_the_longest_makes_room(
    database_url: str, tmp_path: Path
) -> None:
    bound = 20
    server = ServerProcess(
        database_url, tmp_path / "server.log", WALLET_CONNECTIONS_MAX=str(bound)
    ).start()
    try:
        with ExitStack() as stack:
            idle = []
            for _ in range(bound):
                sock = stack.enter_context(
                    socket.create_connection((HOST, server.port), timeout=ANSWER_WAIT_S)
                )
                sock.sendall(head())
                assert status_of(answer_on(sock)) == 200
                idle.append(sock)
            # Every connection is open and idle: a new client is served, not refused...
            answer = exchange(server.port, head(headers=b"Connection: close\r\n"))
            assert status_of(answer) == 200, answer
            # ...in the place of the connection idle the longest, which is closed.
            assert read_until_closed(idle[0]) == b""
            idle[-1].sendall(head())
            assert status_of(answer_on(idle[-1])) == 200
    finally:
        server.kill()
