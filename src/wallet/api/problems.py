"""Errors as RFC 9457 problem details: the one table from error code to HTTP status, and the one
renderer of a problem, used by the FastAPI routes' error handlers, the hot routes and the edge.
"""

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
    errors.HoldExpired.code: 409,
    errors.AssetExists.code: 409,
    errors.HoldNotPending.code: 409,
    PayloadTooLarge.code: 413,
    errors.ValidationFailed.code: 422,
    errors.InsufficientFunds.code: 422,
    errors.IdempotencyKeyReused.code: 422,
    errors.RefundExceedsOriginal.code: 422,
    errors.NotRefundable.code: 422,
    errors.BatchFailed.code: 422,
    errors.Unavailable.code: 503,
    errors.Overloaded.code: 503,
}

# Problems that are not WalletErrors: the framework's own answers, and our bugs.
EXTRA_PROBLEMS: dict[str, tuple[int, str]] = {
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "internal_error": (500, "Internal error"),
}

PROBLEM_JSON = "application/problem+json"
# What a client is told of a failure that is ours; the error itself goes to the log.
INTERNAL_ERROR_DETAIL = "an unexpected error; it has been logged"


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
    body = orjson.dumps(problem_body(status, code, title, detail, **extra))
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def wallet_error_response(error: errors.WalletError, *, replayed: bool = False) -> Response:
    status = STATUS_BY_CODE[error.code]
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
