"""The FastAPI application factory. Nothing connects to a database until the app starts."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount, compile_path
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from wallet import __version__
from wallet.config import Settings
from wallet.domain.errors import ValidationFailed, WalletError
from wallet.limits import (
    ASSET_POLICY_REFRESH_INTERVAL_S,
    EVENT_PRUNE_BATCH,
    EVENT_PRUNE_INTERVAL_S,
    HOLD_SWEEP_BATCH_MAX,
    REQUEST_BODY_BYTES_MAX,
)
from wallet.priority import lower_thread_priority
from wallet.relay_process import RelayProcess
from wallet.service.commands import InternalError
from wallet.service.wallet import WalletService

from .auth import CONSOLE_PATH, document_security
from .docs import install_docs
from .edge import HTTP_METHODS, EdgeMiddleware
from .errors import PayloadTooLarge
from .hot import HotRoutes
from .problems import error_response, extra_problem_response
from .routes import activity, admin, balances, events, holds, system, transactions, webhooks

log = logging.getLogger(__name__)

DESCRIPTION = """
Players' virtual credits (Gold Coins, Diamonds, Loyalty Points, …) in a double-entry ledger.

* Amounts are sent as JSON numbers or decimal strings in major units and answered as strings with
  exactly the asset's scale of decimals. Nothing is ever rounded.
* Every write may carry an idempotency key (`Idempotency-Key` header or `idempotency_key` field):
  retrying with the same key and payload replays the first answer with `Idempotent-Replayed: true`.
* Every error is `application/problem+json` with a stable `code`.
* Refunds (`transaction_type: refund`), atomic batches (`POST /transaction/batch`), holds
  (`/holds`: reserve now, capture or release later, released automatically on expiry) and
  balances at a past instant (`?as_of=`).
"""


def create_app(settings: Settings | None = None, service: WalletService | None = None) -> FastAPI:
    settings = settings or Settings()
    wallet = service or WalletService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wallet.start()
        wallet.database.bind_event_loop_thread()
        # Before the loop lowers its priority, which the relay process would inherit.
        relay_process = RelayProcess(settings) if settings.events_relay == "process" else None
        if relay_process is not None:
            relay_process.start()
        # The writer thread has started: from here on, the loop yields to it (priority.py).
        lower_thread_priority(settings.loop_nice)
        _announce_auth(wallet)
        # Everything built so far (modules, the app, caches) lives as long as the process: move
        # it out of the collector's sight, so that collections triggered by per-request garbage
        # stop re-scanning it. Measured: this halves the writer's CPU per transaction.
        gc.collect()
        gc.freeze()
        tasks = [
            asyncio.create_task(sweep_expired_holds(wallet, settings.hold_sweep_interval_s)),
            asyncio.create_task(sweep_expired_lots(wallet, settings.lot_sweep_interval_s)),
            asyncio.create_task(wallet.events.watcher.run(wallet.read)),
            asyncio.create_task(prune_events(wallet)),
            asyncio.create_task(refresh_assets(wallet, ASSET_POLICY_REFRESH_INTERVAL_S)),
        ]
        if settings.events_relay == "inline":
            wallet.relays.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await wallet.relays.stop()
            if relay_process is not None:
                await anyio.to_thread.run_sync(relay_process.stop)
            wallet.stop()

    app = WalletApp(
        title="Wallet service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = wallet
    app.include_router(system.router)
    app.include_router(balances.router)
    app.include_router(transactions.router)
    app.include_router(holds.router)
    app.include_router(admin.router)
    app.include_router(activity.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.mount(CONSOLE_PATH, ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
    install_docs(app)
    _install_error_handlers(app, wallet)
    _install_openapi(app)
    app.edge = EdgeMiddleware(
        HotRoutes(app.framework, wallet),
        keys=wallet.keys,
        metrics=wallet.metrics,
        templates=lambda: app.openapi()["paths"],
        max_body_bytes=REQUEST_BODY_BYTES_MAX,
    )
    return app


class WalletApp(FastAPI):
    """The FastAPI app, behind the edge middleware and the hot routes (edge.py, hot.py).

    They wrap the whole framework rather than sit in its middleware stack, so the hot routes
    skip its outer layers too (error, telemetry and body-limit middleware: a coroutine and a
    wrapped ``send`` each). The edge answers an unexpected error itself (500 problem). A
    middleware added with ``app.add_middleware`` (CORS, GZip, …) would apply only to what the
    hot routes hand on, so it is refused: add such a layer to the edge instead.
    """

    edge: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and self.edge is not None:
            await self.edge(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def add_middleware(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "a middleware added to the framework would miss the hot routes (api/hot.py): "
            "add it to the edge (api/edge.py) instead"
        )


CONSOLE_DIR = Path(__file__).parent / "console"
# The console's files only ever load files of their own origin, and the page is never framed:
# a script injected through, say, a player-chosen description could not run nor send the key
# in sessionStorage anywhere.
CONSOLE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """The support console (static HTML, CSS and JS modules) under /console, open to anyone:
    it holds no data, and every call it makes to the API carries the API key signed in with.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(CONSOLE_HEADERS)
        return response


def _announce_auth(service: WalletService) -> None:
    if service.keys.enforced:
        if not service.keys.required or service.keys.has_keys:
            return
        log.warning(
            "WALLET_AUTH=required and no API key exists: every protected route answers 401 "
            "until one is created with `wallet keys create`"
        )
        return
    banner = "!" * 78
    log.warning(
        "\n%s\nAUTH IS DISABLED: no API key exists, so anyone who can reach this service may move "
        "money.\nFor local development only. Create a key with `wallet keys create --name NAME "
        "--scope read --scope write`\n(auth is enforced as soon as one exists), and set "
        "WALLET_AUTH=required in production.\n%s",
        banner,
        banner,
    )


def _install_openapi(app: FastAPI) -> None:
    """The framework's document, plus the security schemes and each operation's scope."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_security(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def sweep_expired_holds(service: WalletService, interval_s: float) -> None:
    """Release expired pending holds, for as long as the app runs.

    Each pass releases at most HOLD_SWEEP_BATCH_MAX holds through the writer; a full pass is
    followed at once by another, else the sweeper sleeps. It keeps no state of its own: after a
    restart the first pass finds every hold that expired while the service was down.
    """
    while True:
        try:
            expired = await service.holds.expire_due()
        except Exception:
            log.exception("the hold expiry pass failed; trying again later")
            expired = 0
        if expired < HOLD_SWEEP_BATCH_MAX:
            await asyncio.sleep(interval_s)


async def sweep_expired_lots(service: WalletService, interval_s: float) -> None:
    """Expire what is left of the lots whose expiry has passed, for as long as the app runs
    (service/expiry.py): a pass that says there is more is followed by another once the loop has
    had its turn, else the sweep sleeps. Like the hold sweeper, it keeps no state of its own."""
    while True:
        try:
            more = (await service.expiry.expire_due()).more
        except Exception:
            log.exception("the lot expiry pass failed; trying again later")
            more = False
        await asyncio.sleep(0 if more else interval_s)


async def prune_events(service: WalletService) -> None:
    """Delete the events older than the retention, off the write path: EVENT_PRUNE_BATCH at a
    time, each in a short unit of work of its own, a pass every EVENT_PRUNE_INTERVAL_S."""
    while True:
        try:
            # A unit of work may wait for the write lock: never on the event loop.
            pruned = await anyio.to_thread.run_sync(service.events.prune)
        except Exception:
            log.exception("pruning events failed; trying again later")
            pruned = 0
        if pruned < EVENT_PRUNE_BATCH:
            await asyncio.sleep(EVENT_PRUNE_INTERVAL_S)
        else:
            await asyncio.sleep(0)


async def refresh_assets(service: WalletService, interval_s: float) -> None:
    """Read the asset catalogue again every ``interval_s``, so that an asset's expiry policy
    changed by another process (or the command line) applies to this process's credits within
    that bound (service/assets.py). A failed read leaves the catalogue as it was until the next.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            await service.read(service.assets.refresh)
        except Exception:
            log.exception("reading the assets again failed; trying again later")


def _install_error_handlers(app: FastAPI, service: WalletService) -> None:
    """The framework's routes answer every error through problems.error_response, as the hot
    routes and the edge do.
    """
    metrics = service.metrics

    # A refusal and the writer's InternalError are answered where they are raised; anything
    # else reaches the framework's last handler (Exception), which logs it.
    @app.exception_handler(WalletError)
    @app.exception_handler(InternalError)
    async def known_error(request: Request, error: Exception) -> Response:
        return error_response(error, metrics)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(error, metrics)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        items = [_validation_item(item) for item in error.errors()]
        detail = "; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in items[:5])
        return error_response(ValidationFailed(detail or "invalid request", items), metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 413:
            return error_response(PayloadTooLarge(REQUEST_BODY_BYTES_MAX), metrics)
        if error.status_code == 405:
            response = extra_problem_response(
                "method_not_allowed", f"{request.method} is not allowed here"
            )
            # RFC 9110: a 405 lists every method the resource supports. Starlette names only
            # those of the first route on the path (POST of /holds, not GET), so ask them all.
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
            return response
        if error.status_code == 404:
            return extra_problem_response("not_found", f"no route {request.url.path}")
        if error.status_code == 400:
            # The body could not be read as JSON at all.
            return error_response(ValidationFailed.at("body", str(error.detail)), metrics)
        log.error(
            "unmapped HTTP error %d on %s %s", error.status_code, request.method, request.url.path
        )
        return error_response(error, metrics)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the app answers on this request's path.

    FastAPI's included routers carry no methods to ask, so the app's own routes are read from
    its OpenAPI document, the contract: where several templates match, the most literal one is
    the resource (POST /transaction/batch, not GET /transaction/{transaction_id}). Outside it
    (the console's static files, the docs) the routes themselves are asked.
    """
    # Under a mount the scope's root path is the mount's: match from the app's own root.
    root_path = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    path = request.scope["path"].removeprefix(root_path)
    documented: dict[int, set[str]] = {}
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            named = {name.upper() for name in operations} & HTTP_METHODS
            documented.setdefault(template.count("{"), set()).update(named)
    if documented:
        return sorted(documented[min(documented)])
    scope = {**request.scope, "root_path": root_path}
    found: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(scope)[0] is not Match.NONE:
            # A mount of static files matches every method and answers GET and HEAD.
            answered = {"GET", "HEAD"} if isinstance(route, Mount) else route.methods
            found |= set(answered or ())
    return sorted(found)


def _validation_item(item: Any) -> dict[str, Any]:
    message = str(item.get("msg", "invalid"))
    if item.get("type") == "json_invalid":
        message = f"the body is not valid JSON: {item.get('ctx', {}).get('error', '')}".rstrip(": ")
    return {
        "loc": [p if isinstance(p, int) else str(p) for p in item.get("loc", ())],
        "msg": message,
        "type": str(item.get("type", "value_error")),
    }
