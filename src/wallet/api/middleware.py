"""Plain ASGI middleware (Starlette's BaseHTTPMiddleware halves throughput): request ids."""

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


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
            request_id = uuid.uuid4().hex.encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
