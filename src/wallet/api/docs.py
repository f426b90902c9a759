"""OpenAPI documentation of errors: every route lists the problems it can answer, each with an
example, so /docs shows what a client must handle.
"""

from typing import Any

from .models import Problem
from .problems import EXTRA_PROBLEMS, PROBLEM_JSON, STATUS_BY_CODE, problem_body

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
    "hold_not_found": ("Hold not found", "no hold with id '019abf3e'", {}),
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
    "unavailable": ("Service unavailable", "the database cannot be reached", {}),
    "overloaded": ("Service overloaded", "the write queue is full; retry after 1 s", {}),
    "internal_error": ("Internal error", "an unexpected error; it has been logged", {}),
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
