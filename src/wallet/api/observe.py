"""Per-request observation, as plain ASGI middleware: the request metrics and one log line.

One middleware measures each request once: the duration (two ``perf_counter`` calls), the
status, and the route's template — from ``scope["route"]``, which the router sets, or, for a
request refused before routing (401, 403, 413), by matching the path against the templates of
the OpenAPI document (compiled once). A path that
matches no route is counted as ``unmatched``, so arbitrary paths cannot grow the label set.

The log line (logger ``wallet.request``, level info) carries the request id, method, route
template, status, duration, the API key's name (never the key) and the transaction id a write
created; no header, query string or body is ever logged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallet.service.metrics import Metrics
from wallet.service.notes import request_notes

log = logging.getLogger("wallet.request")

UNMATCHED = "unmatched"


class ObserveMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, templates: Callable[[], Iterable[str]]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._templates = templates
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        notes: dict[str, str] = {}
        token = request_notes.set(notes)

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            duration_s = time.perf_counter() - started
            method = scope["method"]
            route = self.route_template(scope)
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(duration_s)
            request_notes.reset(token)
            if log.isEnabledFor(logging.INFO):
                self._log(scope, method, route, status, duration_s, notes)

    def _log(
        self,
        scope: Scope,
        method: str,
        route: str,
        status: int,
        duration_s: float,
        notes: dict[str, str],
    ) -> None:
        state = scope.get("state", {})
        caller = state.get("caller")
        fields = {
            "request_id": state.get("request_id"),
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration_s * 1000, 3),
            "api_key": getattr(caller, "name", None),
            "transaction_id": notes.get("transaction_id"),
        }
        log.info("%s %s %d", method, route, status, extra={"fields": fields})
