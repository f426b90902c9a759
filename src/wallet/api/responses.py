"""JSON answers rendered once, with orjson.

A route that returns a plain dict has FastAPI validate it against the response model and
serialise it again; the service's views already have the model's shape (the contract tests
check it), so the hot read routes hand over finished bytes. The response models still document
the routes in OpenAPI.
"""

from typing import Any

import orjson
from starlette.responses import Response

from wallet.service.posting import Outcome

from .problems import wallet_error_response


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def outcome_response(outcome: Outcome, status_code: int) -> Response:
    """A write's answer: its stored body, or its problem; marked when it is a replay."""
    if outcome.error is not None:
        return wallet_error_response(outcome.error, replayed=outcome.replayed)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return Response(
        outcome.body, status_code=status_code, media_type="application/json", headers=headers
    )
