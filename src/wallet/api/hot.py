"""The hottest routes, served without the framework's per-request machinery.

``POST /transaction``, ``GET /balance/{user_id}/{asset_code}`` and a player's history page are
most of a game's traffic.
Through FastAPI each pays for routing over every route, dependency solving, a Request object,
validation of the header and path parameters one by one, and a Response object: about as much
CPU as the ledger write itself (bench/README.md, "Where the time goes"). This layer serves
these three when the request is well-formed, with the same model, the same service call and the
same answers; anything else about them goes on to the FastAPI route, unchanged:

- POST /transaction is served here when its body is declared ``application/json`` (FastAPI's
  strict content type: without the header the route refuses the body) and ``TransactionCreate``
  accepts it, and its ``Idempotency-Key`` header (at most one) is valid.
  Otherwise the request, with the body already read, goes to the route, which answers the
  validation problem exactly as for any other route. So there is one way to validate (the
  model), one way to refuse (problems.error_response, which the routes' error handlers call
  too) and one service call.
- GET /balance/{user_id}/{asset_code} is served here without a query string and with path
  parameters of the documented patterns; ``?as_of=`` and malformed ids go to the route.
- GET /transaction/{user_id}/history is served here when its user id has the documented pattern
  and its query string holds only ``limit``, ``cursor``, ``asset_code`` and
  ``transaction_type``, each at most once, unencoded (no ``%`` or ``+``), with values the route
  accepts as they are: a limit of plain digits within bounds, a cursor in the alphabet cursors
  are given out in, a known kind. Anything else (an unknown parameter, a repeated one, an
  encoded or empty value, a limit of ``020``, a metadata filter) goes to the route, which
  decides it.

The routes in routes/transactions.py and routes/balances.py stay the documentation (OpenAPI)
and the fallback; the API tests run every case through this layer or past it. Both answer with
the same functions: the service's use cases, the caller lookup (auth.caller_of), the answers
(responses.py) and the problems (problems.error_response); the kinds a history takes come from
the same list as the route's (models.POSTABLE_TYPES).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallet.domain.errors import WalletError
from wallet.limits import (
    ASSET_CODE_PATTERN,
    CURSOR_LENGTH_MAX,
    HISTORY_PAGE_SIZE_DEFAULT,
    HISTORY_PAGE_SIZE_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    USER_ID_PATTERN,
)
from wallet.service.commands import InternalError
from wallet.service.transactions import resolve_idempotency_key
from wallet.service.wallet import WalletService

from .auth import caller_of
from .errors import PayloadTooLarge
from .jsonbody import loads_exact
from .models import POSTABLE_TYPES, TransactionCreate
from .problems import error_response
from .queries import HISTORY_PARAMETERS
from .responses import json_response, outcome_response, page_response

_USER_ID = re.compile(USER_ID_PATTERN)
_ASSET_CODE = re.compile(ASSET_CODE_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_JSON = b"application/json"
# A history page's query, as the route would take it unchanged (see the module's docstring).
_LIMIT = re.compile(r"[1-9][0-9]{0,5}")
# base64url without padding, as encode_cursor gives out, at most as long as the route takes
_CURSOR = re.compile(rf"[A-Za-z0-9_-]{{1,{CURSOR_LENGTH_MAX}}}")
_HISTORY_KINDS = frozenset(POSTABLE_TYPES)


class _Template:
    """What the edge middleware reads from ``scope["route"]``: the route's template."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


POST_TRANSACTION = _Template("/transaction")
GET_BALANCE = _Template("/balance/{user_id}/{asset_code}")
GET_HISTORY = _Template("/transaction/{user_id}/history")


class HotRoutes:
    def __init__(self, app: ASGIApp, service: WalletService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            path = scope["path"]
            if method == "POST" and path == "/transaction":
                await self._post_transaction(scope, receive, send)
                return
            if method == "GET" and path.startswith("/balance/") and not scope["query_string"]:
                parts = path.split("/")
                if (
                    len(parts) == 4
                    and _USER_ID.fullmatch(parts[2])
                    and _ASSET_CODE.fullmatch(parts[3])
                ):
                    await self._get_balance(scope, parts[2], parts[3], send)
                    return
            if method == "GET" and path.startswith("/transaction/"):
                parts = path.split("/")
                if len(parts) == 4 and parts[3] == "history" and _USER_ID.fullmatch(parts[2]):
                    query = _history_query(scope["query_string"])
                    if query is not None:
                        await self._get_history(scope, parts[2], query, send)
                        return
        await self.app(scope, receive, send)

    async def _post_transaction(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await _read_body(receive)
        except HTTPException:
            await self._refuse(PayloadTooLarge(), scope, send)
            return
        if body is None:
            return  # the client went away before sending its whole body: nothing to do (499)
        accepted = _accepted(scope["headers"], body)
        if accepted is None:
            await self.app(scope, _replay(body, receive), send)
            return
        payload, header_key = accepted
        scope["route"] = POST_TRANSACTION
        try:
            key = resolve_idempotency_key(header_key, payload.idempotency_key)
            outcome = await self.service.transactions.post(
                payload.to_input(key), caller_of(scope).key_id
            )
        except (WalletError, InternalError) as error:
            await self._refuse(error, scope, send)
            return
        await outcome_response(outcome, 201)(scope, _no_body, send)

    async def _get_balance(self, scope: Scope, user_id: str, asset_code: str, send: Send) -> None:
        scope["route"] = GET_BALANCE
        service = self.service
        try:
            view = await service.read(service.balances.get, user_id, asset_code, None)
        except WalletError as error:
            await self._refuse(error, scope, send)
            return
        await json_response(view)(scope, _no_body, send)

    async def _get_history(
        self, scope: Scope, user_id: str, query: dict[str, Any], send: Send
    ) -> None:
        scope["route"] = GET_HISTORY
        service = self.service
        try:
            page = await service.read(
                functools.partial(service.transactions.history, user_id, **query)
            )
        except WalletError as error:
            await self._refuse(error, scope, send)
            return
        await page_response(page, user_id=user_id)(scope, _no_body, send)

    async def _refuse(self, error: Exception, scope: Scope, send: Send) -> None:
        await error_response(error, self.service.metrics)(scope, _no_body, send)


def _accepted(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[TransactionCreate, str | None] | None:
    """The body and the Idempotency-Key header, when both are as the route would accept them;
    None when the route must see the request (it will refuse it, in its own words).
    """
    header_key: str | None = None
    keys = 0
    declared_json = False
    for name, value in headers:
        if name == b"content-type":
            if value.split(b";", 1)[0].strip().lower() != _JSON:
                return None
            declared_json = True
        elif name == b"idempotency-key":
            keys += 1
            header_key = value.decode("latin-1")
    if not declared_json or keys > 1:
        return None
    if header_key is not None and not _IDEMPOTENCY_KEY.fullmatch(header_key):
        return None
    if not body:
        return None
    try:
        data: Any = loads_exact(body)
        return TransactionCreate.model_validate(data), header_key
    except (ValueError, ValidationError):
        # json.JSONDecodeError is a ValueError.
        return None


def _history_query(raw: bytes) -> dict[str, Any] | None:
    """The history page's parameters, when the query string is one the route would take as it
    is; None when the route must see it.
    """
    query: dict[str, Any] = {
        **dict.fromkeys(HISTORY_PARAMETERS),
        "limit": HISTORY_PAGE_SIZE_DEFAULT,
    }
    if not raw:
        return query
    if b"%" in raw or b"+" in raw:
        return None
    seen: set[str] = set()
    for pair in raw.decode("latin-1").split("&"):
        name, separator, value = pair.partition("=")
        if not separator or name not in query or name in seen:
            return None
        seen.add(name)
        if name == "limit":
            if not _LIMIT.fullmatch(value) or int(value) > HISTORY_PAGE_SIZE_MAX:
                return None
            query["limit"] = int(value)
        elif name == "cursor":
            if not _CURSOR.fullmatch(value):
                return None
            query["cursor"] = value
        elif name == "asset_code":
            if not _ASSET_CODE.fullmatch(value):
                return None
            query["asset_code"] = value
        elif value in _HISTORY_KINDS:
            query["transaction_type"] = value
        else:
            return None
    return query


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body; None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the route the body already read, then goes on with the connection."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
