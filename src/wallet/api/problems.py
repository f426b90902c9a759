"""Errors as RFC 9457 problem details: the one table from error code to HTTP status, and the one
renderer of a problem, used by the FastAPI routes' error handlers, the hot routes and the edge.

A 5xx problem carries the request's id (``request_id``), which its log lines carry too, so that
a client's report leads to the cause; the cause itself (a database driver's message, which may
name hosts and paths) is logged, never answered.
"""

import logging
from contextvars import ContextVar
from typing import Any

import orjson
from starlette.responses import Response

from wallet.domain import errors
from wallet.limits import RETRY_AFTER_S
from wallet.service.metrics import Metrics

from .errors import Forbidden, PayloadTooLarge, Unauthorized

STATUS_BY_CODE: dict[str, int] = {
    errors.IdempotencyKeyMismatch.code: 400,
    Unauthorized.code: 401,
    Forbidden.code: 403,
    errors.UserNotFound.code: 404,
    errors.AssetNotFound.code: 404,
    errors.TransactionNotFound.code: 404,
    errors.HoldNotFound.code: 404,
    errors.WebhookNotFound.code: 404,
    errors.MonitorNotFound.code: 404,
    errors.HoldExpired.code: 409,
    errors.AssetExists.code: 409,
    errors.HoldNotPending.code: 409,
    errors.EventsPruned.code: 410,
    PayloadTooLarge.code: 413,
    errors.ValidationFailed.code: 422,
    errors.InsufficientFunds.code: 422,
    errors.IdempotencyKeyReused.code: 422,
    errors.RefundExceedsOriginal.code: 422,
    errors.NotRefundable.code: 422,
    errors.BatchFailed.code: 422,
    errors.AccountFrozen.code: 422,
    errors.LimitExceeded.code: 422,
    errors.Unavailable.code: 503,
    errors.Overloaded.code: 503,
}

# Problems that are not WalletErrors: the framework's own answers, and our bugs.
EXTRA_PROBLEMS: dict[str, tuple[int, str]] = {
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "internal_error": (500, "Internal error"),
    # The server's own refusals of a request's head or of a slow client (server.py).
    "request_timeout": (408, "Request timeout"),
    "url_too_long": (414, "URL too long"),
    "headers_too_large": (431, "Request header fields too large"),
}

PROBLEM_JSON = "application/problem+json"
# What a client is told of a failure that is ours; the error itself goes to the log.
INTERNAL_ERROR_DETAIL = "an unexpected error; it has been logged"

log = logging.getLogger(__name__)

# The id of the request being answered; set by the edge middleware for each request.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    if status >= 500:
        extra.setdefault("request_id", current_request_id.get())
    body = orjson.dumps(problem_body(status, code, title, detail, **extra))
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def wallet_error_response(error: errors.WalletError, *, replayed: bool = False) -> Response:
    status = STATUS_BY_CODE[error.code]
    if status >= 500 and error.__cause__ is not None:
        log.warning(
            "%s: %s",
            error.detail,
            error.__cause__,
            extra={"fields": {"request_id": current_request_id.get()}},
        )
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return problem_response(status, error.code, error.title, error.detail, headers, **error.extra)


def extra_problem_response(code: str, detail: str) -> Response:
    status, title = EXTRA_PROBLEMS[code]
    return problem_response(status, code, title, detail)


def error_response(error: Exception, metrics: Metrics) -> Response:
    """The answer to an error raised while serving a request: its problem if it is a refusal
    (counted by code), else 500 ``internal_error`` (a bug, or an InternalError of the writer).
    """
    if isinstance(error, errors.WalletError):
        metrics.refusals.labels(error.code).inc()
        return wallet_error_response(error)
    return extra_problem_response("internal_error", INTERNAL_ERROR_DETAIL)
