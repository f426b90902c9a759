"""Authentication and scopes (applied by the edge middleware), and their description in OpenAPI.

Which scope a request needs depends only on its method and path (``required_scope``): the open
paths, the console's static files (``/console/…``, whose API calls carry a key) and the docs
pages' assets (``/docs-assets/…``) need none,
``/admin/…`` and ``/metrics`` need ``admin``, every other GET needs ``read`` and every other
method ``write``. The edge middleware answers 401 (with ``WWW-Authenticate: Bearer``)
or 403 before the app runs, and leaves the caller in ``scope["state"]["caller"]`` for the routes
(the owner of its idempotency keys) and the request log (the key's name).
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.types import Scope as ASGIScope

from wallet.domain.errors import Unavailable, WalletError
from wallet.service.keys import OPEN_CALLER, Caller, KeyRing
from wallet.service.keys import Scope as KeyScope

from .docs import DOCS_ASSETS_PATH, problems
from .errors import Forbidden, Unauthorized

CONSOLE_PATH = "/console"
OPEN_PATHS = frozenset({"/", "/health", "/docs", "/redoc", "/openapi.json", CONSOLE_PATH})
OPEN_PREFIXES = (f"{CONSOLE_PATH}/", f"{DOCS_ASSETS_PATH}/")
ADMIN_PREFIX = "/admin/"
METRICS_PATH = "/metrics"

SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (wk_…) from `wallet keys create`.",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def required_scope(method: str, path: str) -> KeyScope | None:
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    if path.startswith(ADMIN_PREFIX) or path == METRICS_PATH:
        return KeyScope.ADMIN
    if method in ("GET", "HEAD"):
        return KeyScope.READ
    return KeyScope.WRITE


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key of ``Authorization: Bearer <key>``, else of ``X-API-Key``."""
    api_key: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            kind, _, token = value.partition(b" ")
            if kind.lower() == b"bearer" and token.strip():
                return token.strip().decode("latin-1")
        elif name == b"x-api-key" and value.strip():
            api_key = value.strip()
    return None if api_key is None else api_key.decode("latin-1")


def caller_for(
    keys: KeyRing, headers: list[tuple[bytes, bytes]], needed: KeyScope
) -> tuple[Caller | None, WalletError | None]:
    """Who presents these headers, and whether they may do what needs ``needed``: the caller
    (also when it lacks the scope, so that the log names it), and the refusal, if any.
    """
    if not keys.enforced:
        return OPEN_CALLER, None
    if keys.unknown:
        return None, Unavailable("the API keys cannot be read right now")
    key = presented_key(headers)
    if key is None:
        return None, Unauthorized("send an API key: Authorization: Bearer <key> or X-API-Key")
    caller = keys.caller(key)
    if caller is None:
        return None, Unauthorized("the API key is unknown or revoked")
    if needed not in caller.scopes:
        return caller, Forbidden(f"this API key lacks the scope {needed}")
    return caller, None


def caller_of(scope: ASGIScope) -> Caller:
    """The caller the edge recognised for this request (open mode: the one unnamed caller)."""
    caller: Caller = scope.get("state", {}).get("caller", OPEN_CALLER)
    return caller


def document_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the security schemes, and each protected operation's scope, 401 and 403; and to every
    operation the refusals of the server's protocol (server.py), which any request may get
    before it reaches a route: 408, 414 and 431."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    refusals = _refusal_responses("unauthorized", "forbidden")
    transport = _refusal_responses("request_timeout", "url_too_long", "headers_too_large")
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            for status, response in transport.items():
                operation.setdefault("responses", {}).setdefault(status, copy.deepcopy(response))
            needed = required_scope(method.upper(), path)
            if needed is None:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
            operation["x-required-scope"] = needed.value
            note = f"Needs an API key with the scope `{needed}`."
            description = operation.get("description")
            operation["description"] = f"{description}\n\n{note}" if description else note
            responses = operation.setdefault("responses", {})
            for status, response in refusals.items():
                responses.setdefault(status, copy.deepcopy(response))
    return schema


def _refusal_responses(*codes: str) -> dict[str, dict[str, Any]]:
    refusals = {}
    for status, response in problems(*codes).items():
        model = response.pop("model")
        for content in response["content"].values():
            content["schema"] = {"$ref": f"#/components/schemas/{model.__name__}"}
        refusals[str(status)] = response
    return refusals
