"""What every request goes through before the routes, as one plain ASGI middleware.

One layer instead of four (each layer is a coroutine call and a wrapped ``send`` per request,
and Starlette's BaseHTTPMiddleware would halve throughput), in this order:

1. **Request id**: every response carries ``X-Request-ID``, the caller's if sane, else a new one.
2. **Observation**: the request metrics and one log line (logger ``wallet.request``, level info)
   with the request id, method, route template, status, duration, the API key's name (never the
   key) and the transaction id a write created; no header, query string or body is logged. The
   route's template comes from ``scope["route"]`` (set by the router, or by the hot routes), or,
   for a request refused before routing (401, 403, 413), from matching the path against the
   OpenAPI document's templates (compiled once); a path matching none is ``unmatched``, and a
   method outside HTTP's standard ones is ``other``, so clients cannot grow the label set.
3. **Authentication** (see auth.py): 401 or 403 before the app runs; the caller is left in
   ``scope["state"]["caller"]``.
4. **Unexpected errors**: logged, and answered as the ``internal_error`` problem (500) when
   nothing was answered yet.
5. **Body size limit**: a declared ``Content-Length`` over the limit is refused at once; a
   streamed body is counted as it is read, and going over raises a 413 HTTPException, which the
   app (or the hot routes) answer as the ``payload_too_large`` problem. Why not the framework's
   ``max_body_size``: Starlette answers it with its own text/plain 413, not the contract's problem.

Any scope but HTTP (a WebSocket) is refused here, before authentication could be skipped: none
of the routes speaks it. The lifespan scope never comes here (app.py).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable

import anyio.to_thread
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallet.domain.errors import WalletError
from wallet.service.keys import KeyRing
from wallet.service.keys import Scope as KeyScope
from wallet.service.metrics import Metrics
from wallet.service.notes import request_notes

from .auth import caller_for, required_scope
from .errors import Forbidden, PayloadTooLarge, Unauthorized
from .problems import current_request_id, error_response

log = logging.getLogger("wallet.request")
errors_log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
# nginx's "client closed request": counted, never sent.
CLIENT_GONE = 499
OTHER_METHOD = "other"
# HTTP's standard methods: any other is "other" in the metrics, and no route answers it.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# RFC 6455: the endpoint refuses what this connection asked for.
_POLICY_VIOLATION = 1008

_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
# A request id needs to be unique, not secret: a random per-process prefix and a counter cost
# far less per request than a uuid4, which reads the system's random source each time.
_PROCESS_PREFIX = os.urandom(6).hex()
_sequence = itertools.count(1)


def _new_request_id() -> bytes:
    return f"{_PROCESS_PREFIX}-{next(_sequence):x}".encode()


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        keys: KeyRing,
        metrics: Metrics,
        templates: Callable[[], Iterable[str]],
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._templates = templates
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None
        # prometheus_client's labels() takes a lock and checks its arguments on every call; the
        # label sets are bounded (methods, templates, statuses), so their children are kept.
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await _refuse_scope(scope, send)
            return
        started = time.perf_counter()
        given_id: bytes | None = None
        declared_length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given_id = value if given_id is None else given_id
            elif name == b"content-length":
                declared_length = value
        if given_id is not None and _REQUEST_ID.match(given_id.decode("latin-1")):
            request_id = given_id
        else:
            request_id = _new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id.decode()
        id_token = current_request_id.set(state["request_id"])
        status = 0

        async def send_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        notes: dict[str, str] = {}
        token = request_notes.set(notes)
        try:
            refusal = await self._authenticate(scope)
            if refusal is None and declared_length is not None:
                refusal = self._check_length(declared_length)
            if refusal is not None:
                await _refuse(*refusal, self.metrics)(scope, receive, send_edge)
                return
            await self.app(scope, self._limited(receive), send_edge)
        except Exception as error:
            if status:
                raise  # answered already (the framework's error middleware sends its 500 first)
            errors_log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            await error_response(error, self.metrics)(scope, receive, send_edge)
        else:
            if not status:
                status = CLIENT_GONE  # nobody to answer: the client left before its request ended
        finally:
            request_notes.reset(token)
            current_request_id.reset(id_token)
            self._observe(scope, status or 500, time.perf_counter() - started, notes)

    async def _authenticate(self, scope: Scope) -> tuple[WalletError, KeyScope | None] | None:
        needed = required_scope(scope["method"], scope["path"])
        if needed is None:
            return None
        if self.keys.stale():
            await anyio.to_thread.run_sync(self.keys.refresh)
        caller, error = caller_for(self.keys, scope["headers"], needed)
        if caller is not None:
            scope["state"]["caller"] = caller
        return None if error is None else (error, needed)

    def _check_length(self, declared: bytes) -> tuple[WalletError, None] | None:
        if declared.isdigit() and (len(declared) > 18 or int(declared) > self.max_body_bytes):
            return PayloadTooLarge(self.max_body_bytes), None
        return None

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        max_bytes = self.max_body_bytes

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise HTTPException(413)
            return message

        return receive_with_limit

    def route_template(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        if self._compiled is None:
            self._compiled = [(compile_path(t)[0], t) for t in self._templates()]
        for pattern, template in self._compiled:
            if pattern.match(scope["path"]):
                return template
        return UNMATCHED

    def _observe(self, scope: Scope, status: int, duration_s: float, notes: dict[str, str]) -> None:
        method = scope["method"] if scope["method"] in HTTP_METHODS else OTHER_METHOD
        route = self.route_template(scope)
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = self.metrics.http_requests.labels(method, route, str(status))
            self._counted[(method, route, status)] = counted
        counted.inc()
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[(method, route)] = self.metrics.http_duration.labels(method, route)
        timed.observe(duration_s)
        if log.isEnabledFor(logging.INFO):
            state = scope["state"]
            fields = {
                "request_id": state.get("request_id"),
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration_s * 1000, 3),
                "api_key": getattr(state.get("caller"), "name", None),
                "transaction_id": notes.get("transaction_id"),
            }
            log.info("%s %s %d", method, route, status, extra={"fields": fields})


async def _refuse_scope(scope: Scope, send: Send) -> None:
    """Refuse a connection the service does not speak: a WebSocket is closed before it is
    accepted (the server answers its handshake 403); any other kind is left unanswered."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": _POLICY_VIOLATION})


def _refuse(error: WalletError, needed: KeyScope | None, metrics: Metrics) -> ASGIApp:
    response = error_response(error, metrics)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="wallet"'
    elif isinstance(error, Forbidden):
        response.headers["WWW-Authenticate"] = (
            f'Bearer realm="wallet", error="insufficient_scope", scope="{needed}"'
        )
    return response
