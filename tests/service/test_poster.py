"""poster.py against real sockets: a scripted HTTP server on loopback answers each request as the
test says, and records the request lines and headers it read. The poster blocks: each post runs
on a thread, while the server's loop goes on."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from wallet.service.poster import Poster, PostFailed

TIMEOUT_S = 10.0

Answer = Callable[[asyncio.StreamWriter, int], Awaitable[bool]]


@dataclass
class Scripted:
    """Answers request N (from 0, over every connection) with ``answer(writer, N)``, which says
    whether to keep the connection."""

    answer: Answer
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.heads.append(head)
                if not await self.answer(writer, len(self.heads) - 1):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run(answer: Answer, scenario: Callable[[str], Awaitable[None]]) -> Scripted:
    scripted = Scripted(answer)

    async def main() -> None:
        server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            await asyncio.wait_for(scenario(f"http://127.0.0.1:{port}"), 30)

    asyncio.run(main())
    return scripted


async def post(poster: Poster, headers: bytes = b"") -> int:
    return await asyncio.to_thread(poster.post, b"{}", headers, TIMEOUT_S)


async def ok(writer: asyncio.StreamWriter, number: int) -> bool:
    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    await writer.drain()
    return True


def test_an_interim_answer_is_passed_over_and_each_request_gets_its_own() -> None:
    async def early_hints_then_status(writer: asyncio.StreamWriter, number: int) -> bool:
        status = [500, 200, 503][number]
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
        await writer.drain()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % status)
        await writer.drain()
        return True

    statuses: list[int] = []

    async def scenario(url: str) -> None:
        poster = Poster(url + "/hooks", 4096, "test")
        for _ in range(3):
            statuses.append(await post(poster, b"webhook-id: x\r\n"))
        poster.close()

    scripted = run(early_hints_then_status, scenario)
    assert statuses == [500, 200, 503]
    assert scripted.connections == 1


def test_a_url_is_sent_as_a_client_sends_it() -> None:
    async def scenario(url: str) -> None:
        port = url.rsplit(":", 1)[1]
        poster = Poster(f"http://user:p%40ss@127.0.0.1:{port}/a b/é?q=ä", 4096, "test")
        assert await post(poster) == 204
        poster.close()

    scripted = run(ok, scenario)
    [head] = scripted.heads
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == "POST /a%20b/%C3%A9?q=%C3%A4 HTTP/1.1"
    assert f"Authorization: Basic {base64.b64encode(b'user:p@ss').decode()}" in lines


def test_a_kept_connection_the_server_closed_is_tried_once_more() -> None:
    async def one_answer_per_connection(writer: asyncio.StreamWriter, number: int) -> bool:
        # Says nothing of closing: the client keeps the connection, and finds it closed.
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        return False

    statuses: list[int] = []

    async def scenario(url: str) -> None:
        poster = Poster(url, 4096, "test")
        for _ in range(3):
            statuses.append(await post(poster))
        poster.close()

    scripted = run(one_answer_per_connection, scenario)
    assert statuses == [204, 204, 204]
    assert (len(scripted.heads), scripted.connections) == (3, 3)


def test_an_answer_cut_after_its_head_stands_and_the_request_is_not_sent_again() -> None:
    async def head_then_reset(writer: asyncio.StreamWriter, number: int) -> bool:
        if number == 0:
            return await ok(writer, number)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        writer.transport.abort()
        return False

    async def scenario(url: str) -> None:
        poster = Poster(url, 4096, "test")
        assert await post(poster) == 204
        assert await post(poster) == 200
        poster.close()

    scripted = run(head_then_reset, scenario)
    assert len(scripted.heads) == 2


def test_a_connection_that_fails_before_any_answer_on_a_new_connection_is_a_failure() -> None:
    async def reset(writer: asyncio.StreamWriter, number: int) -> bool:
        writer.transport.abort()
        return False

    async def scenario(url: str) -> None:
        poster = Poster(url, 4096, "test")
        with pytest.raises(PostFailed):
            await post(poster)
        poster.close()

    scripted = run(reset, scenario)
    assert len(scripted.heads) == 1


def test_an_answer_that_does_not_come_in_time_is_a_timeout() -> None:
    async def silent(writer: asyncio.StreamWriter, number: int) -> bool:
        await asyncio.sleep(5)
        return False

    async def scenario(url: str) -> None:
        poster = Poster(url, 4096, "test")
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(poster.post, b"{}", b"", 0.2)
        poster.close()

    run(silent, scenario)


def test_closing_from_another_thread_ends_a_post_that_waits_for_its_answer() -> None:
    async def silent(writer: asyncio.StreamWriter, number: int) -> bool:
        await asyncio.sleep(5)
        return False

    async def scenario(url: str) -> None:
        poster = Poster(url, 4096, "test")
        waiting = asyncio.ensure_future(asyncio.to_thread(poster.post, b"{}", b"", TIMEOUT_S))
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        poster.close()
        with pytest.raises((PostFailed, OSError)):
            await waiting
        assert asyncio.get_running_loop().time() - started < TIMEOUT_S / 2

    run(silent, scenario)
