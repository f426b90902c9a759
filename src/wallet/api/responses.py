"""The answers of the routes, rendered once: the same functions serve the FastAPI routes and the
hot routes (hot.py), so a field or a header is added in one place.

A route that returns a plain dict has FastAPI validate it against the response model and
serialise it again; the service's views already have the model's shape (the contract tests
check it), so the routes hand over finished bytes. The response models still document the
routes in OpenAPI.
"""

from typing import Any

import orjson
from starlette.responses import Response

from wallet.service.commands import Outcome
from wallet.service.cursors import Page

from .problems import wallet_error_response

_JSON = b"application/json"


class JSONBytes(Response):
    """A finished JSON body. Its headers are built directly: it is made for every answer of the
    hottest routes, and Response's own constructor renders and inspects them generically.
    """

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200, *, replayed: bool = False) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]
        if replayed:
            self.raw_headers.append((b"idempotent-replayed", b"true"))


def json_response(data: Any, status_code: int = 200) -> Response:
    return JSONBytes(orjson.dumps(data), status_code)


def outcome_response(outcome: Outcome, status_code: int) -> Response:
    """A write's answer: its stored body, or its problem; marked when it is a replay."""
    if outcome.error is not None:
        return wallet_error_response(outcome.error, replayed=outcome.replayed)
    return JSONBytes(outcome.body, status_code, replayed=outcome.replayed)


def page_response(page: Page, **fields: Any) -> Response:
    """A page of a list: ``fields`` (such as the user's id), its items and the next cursor."""
    return json_response({**fields, "items": page.items, "next_cursor": page.next_cursor})
