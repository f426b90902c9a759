"""The API's documentation: the /docs (Swagger UI) and /redoc pages, and the errors that every
route documents, each with an example, so /docs shows what a client must handle.

The pages work without any network but the service's own: they load only files of their own
origin, under /docs-assets, from our own files and from the pinned fastapi-offline package
(Swagger UI 5.32.6, Apache-2.0; ReDoc 2.5.3, MIT). Their Content-Security-Policy allows no other
origin and no inline script; only ReDoc's page allows inline styles, which ReDoc inserts itself.
"""

from html import escape
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from wallet.limits import HEADERS_BYTES_MAX, HEADERS_TIMEOUT_S, REQUEST_LINE_BYTES_MAX

from .models import Problem
from .problems import EXTRA_PROBLEMS, PROBLEM_JSON, STATUS_BY_CODE, problem_body

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
DOCS_ASSETS_PATH = "/docs-assets"
DOCS_ASSETS_DIR = Path(__file__).parent / "docs_assets"
# The package and folder that hold swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and
# favicon.png; the version of each is pinned by requirements.txt.
VENDORED_ASSETS = ("fastapi_offline", "static")
CSP = "Content-Security-Policy"
# Nothing loads from another origin, and no inline script runs, nor any inline style on /docs.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
# ReDoc styles its elements by inserting <style> elements (styled-components), and builds its
# search index in a worker made from a blob of its own script.
REDOC_CSP = f"{DOCS_CSP}; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
DOCS_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# The two pages, filled in with the addresses of the assets and of the OpenAPI document.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/{stylesheet}">
</head>
<body>
<noscript>These pages need JavaScript; {openapi_url} is the document they show.</noscript>
{body}
</body>
</html>
"""
# swagger-init.js starts Swagger UI on the element's data-openapi-url.
SWAGGER_UI_BODY = """<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>"""
# ReDoc renders each <redoc> element once its script has loaded.
REDOC_BODY = """<redoc spec-url="{openapi_url}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>"""


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; the app is built with docs_url and redoc_url None."""
    app.mount(
        DOCS_ASSETS_PATH,
        DocsAssets(directory=DOCS_ASSETS_DIR, packages=[VENDORED_ASSETS]),
        name="docs-assets",
    )

    swagger_ui_html = _page(app, "Swagger UI", "swagger-ui.css", SWAGGER_UI_BODY)
    redoc_html = _page(app, "ReDoc", "redoc.css", REDOC_BODY)

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_ui_html, headers={**DOCS_HEADERS, CSP: DOCS_CSP})

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(redoc_html, headers={**DOCS_HEADERS, CSP: REDOC_CSP})


class DocsAssets(StaticFiles):
    """Swagger UI's and ReDoc's files, open to anyone like the pages that load them."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(DOCS_HEADERS)
        response.headers[CSP] = DOCS_CSP
        return response


def _page(app: FastAPI, title: str, stylesheet: str, body: str) -> str:
    urls = {"assets": DOCS_ASSETS_PATH, "openapi_url": escape(str(app.openapi_url))}
    return PAGE.format(
        title=escape(f"{app.title} - {title}"),
        stylesheet=stylesheet,
        body=body.format(**urls),
        **urls,
    )


_EXAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "idempotency_key_mismatch": (
        "Idempotency key mismatch",
        "the Idempotency-Key header and the body's idempotency_key differ",
        {},
    ),
    "unauthorized": (
        "Unauthorized",
        "send an API key: Authorization: Bearer wk_… or X-API-Key: wk_…",
        {},
    ),
    "forbidden": ("Forbidden", "this API key lacks the scope write", {}),
    "asset_exists": ("Asset exists", "an asset with code 'GEM' exists already", {}),
    "user_not_found": ("User not found", "user user_999 has never been credited", {}),
    "asset_not_found": ("Asset not found", "no asset with code 'XX'", {}),
    "transaction_not_found": ("Transaction not found", "no transaction with id 'b3f1'", {}),
    "payload_too_large": ("Payload too large", "the body is larger than 65536 bytes", {}),
    "validation_error": (
        "Validation error",
        "amount has more than 2 decimal places",
        {
            "errors": [
                {
                    "loc": ["body", "amount"],
                    "msg": "amount has more than 2 decimal places",
                    "type": "value_error",
                }
            ]
        },
    ),
    "insufficient_funds": ("Insufficient funds", "user_001 has 10.00 GC, 25.00 needed", {}),
    "idempotency_key_reused": (
        "Idempotency key reused",
        "idempotency key 'k-123' was used with a different payload",
        {},
    ),
    "refund_exceeds_original": (
        "Refund exceeds original",
        "transaction 019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d has 5.00 GC left to refund, 10.00 asked",
        {},
    ),
    "not_refundable": ("Not refundable", "a refund transaction cannot be refunded", {}),
    "batch_failed": (
        "Batch failed",
        "item 1 was refused (insufficient_funds): nothing was applied",
        {
            "errors": [
                {
                    "index": 1,
                    "code": "insufficient_funds",
                    "detail": "user_001 has 10.00 GC, 25.00 needed",
                }
            ]
        },
    ),
    "account_frozen": (
        "Account frozen",
        "user_001's GC account is frozen: suspected duplication exploit",
        {},
    ),
    "limit_exceeded": (
        "Limit exceeded",
        "user_001 may spend 20.00 GC more today (limit 50.00)",
        {},
    ),
    "hold_not_found": ("Hold not found", "no hold with id '019abf3e'", {}),
    "webhook_not_found": ("Webhook not found", "no webhook endpoint with id '019abf3e'", {}),
    "monitor_not_found": ("Monitor not found", "no balance monitor with id '019abf3e'", {}),
    "hold_expired": (
        "Hold expired",
        "hold 019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d expired and can no longer be captured",
        {},
    ),
    "hold_not_pending": (
        "Hold not pending",
        "hold 019abf3e-5c1d-7a2b-9c3d-4e5f6a7b8c9d is released, not pending",
        {},
    ),
    "events_pruned": (
        "Events pruned",
        "the events after position 0 are no longer kept: the oldest kept is 1043; "
        "resume from after=1042",
        {"oldest_position": 1043},
    ),
    "unavailable": ("Service unavailable", "the database cannot be reached", {}),
    "overloaded": ("Service overloaded", "the write queue is full; retry after 1 s", {}),
    "internal_error": ("Internal error", "an unexpected error; it has been logged", {}),
    "request_timeout": (
        "Request timeout",
        f"the request's headers took over {HEADERS_TIMEOUT_S:g} s",
        {},
    ),
    "url_too_long": (
        "URL too long",
        f"the request line is longer than {REQUEST_LINE_BYTES_MAX} bytes",
        {},
    ),
    "headers_too_large": (
        "Request header fields too large",
        f"the headers are larger than {HEADERS_BYTES_MAX} bytes",
        {},
    ),
}


def problems(*codes: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route for these error codes, grouped by status."""
    by_status: dict[int, dict[str, Any]] = {}
    for code in codes:
        status = STATUS_BY_CODE.get(code) or EXTRA_PROBLEMS[code][0]
        title, detail, extra = _EXAMPLES[code]
        examples = by_status.setdefault(status, {})
        examples[code] = {
            "summary": title,
            "value": problem_body(status, code, title, detail, **extra),
        }
    return {
        status: {
            "model": Problem,
            "description": ", ".join(examples),
            "content": {PROBLEM_JSON: {"examples": examples}},
        }
        for status, examples in sorted(by_status.items())
    }


# Answers any route can give.
COMMON = ("validation_error", "unavailable", "internal_error")
