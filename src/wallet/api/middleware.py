"""Plain ASGI middleware (Starlette's BaseHTTPMiddleware halves throughput): request ids and
the request body's size limit.
"""

import itertools
import os
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallet.domain.errors import PayloadTooLarge

from .problems import wallet_error_response

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
# A request id needs to be unique, not secret: a random per-process prefix and a counter cost
# far less per request than a uuid4, which reads the system's random source each time.
_PROCESS_PREFIX = os.urandom(6).hex()
_sequence = itertools.count(1)


def _new_request_id() -> bytes:
    return f"{_PROCESS_PREFIX}-{next(_sequence):x}".encode()


class RequestIdMiddleware:
    """Every response carries X-Request-ID: the caller's, if sane, else a new one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _REQUEST_ID.match(value.decode("latin-1")):
                    request_id = value
                break
        if request_id is None:
            request_id = _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodySizeLimitMiddleware:
    """Refuse a request body over ``max_bytes`` with a 413 problem.

    Why not the framework's ``max_body_size``: Starlette answers a too-large Content-Length with
    its own text/plain 413, replacing whatever the app sent, so the client would not get the
    contract's ``payload_too_large`` problem. A declared length over the limit is refused before
    the app runs; a streamed body is counted as it is read, and going over raises the 413 as an
    HTTPException, which the app's error handler renders as the problem.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and (len(value) > 18 or int(value) > self.max_bytes):
                    await self._refuse(scope, receive, send)
                    return
                break
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413)
            return message

        await self.app(scope, receive_with_limit, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(f"the body is larger than {self.max_bytes} bytes")
        await wallet_error_response(error)(scope, receive, send)
