"""The query string of the list routes, read once and strictly: a parameter the route does not
take, or one given twice, is a 422, never silently ignored (two readers must never read one
request two ways), and ``metadata[KEY]=VALUE`` filters are read here, up to
METADATA_FILTERS_MAX of them, each key of the metadata key pattern.

FastAPI reads the route's declared parameters (and documents them); this module checks what it
would otherwise let pass and reads what it cannot declare.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from wallet.domain.errors import ValidationFailed
from wallet.limits import METADATA_FILTERS_MAX, METADATA_KEY_PATTERN, METADATA_VALUE_LENGTH_MAX

_METADATA = re.compile(r"metadata\[(.*)\]", re.DOTALL)
_METADATA_KEY = re.compile(METADATA_KEY_PATTERN)

# How OpenAPI documents the filters (a deepObject parameter), for the routes that take them.
METADATA_FILTER_DOC: dict[str, Any] = {
    "name": "metadata",
    "in": "query",
    "style": "deepObject",
    "explode": True,
    "required": False,
    "description": f"Up to {METADATA_FILTERS_MAX} filters `metadata[KEY]=VALUE`, all of which "
    "must match: only transactions whose metadata has each KEY with that VALUE.",
    "schema": {
        "type": "object",
        "maxProperties": METADATA_FILTERS_MAX,
        "propertyNames": {"pattern": METADATA_KEY_PATTERN},
        "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_LENGTH_MAX},
    },
    "example": {"order_id": "A-1042"},
}


# The parameters of a user's history page besides its metadata filters (the route reads them,
# and so does the hot route, api/hot.py), and those of a page across users.
HISTORY_PARAMETERS = frozenset({"limit", "cursor", "asset_code", "transaction_type"})
SEARCH_PARAMETERS = HISTORY_PARAMETERS | {"user_id"}


def metadata_filters(request: Request, takes: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """The request's metadata filters, in the order given; a 422 for any parameter not in
    ``takes`` (nor a metadata filter), any parameter given twice, a malformed key or value, or
    more than METADATA_FILTERS_MAX filters.
    """
    filters: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name in seen:
            raise _refusal(name, f"{name} is given more than once")
        seen.add(name)
        match = _METADATA.fullmatch(name)
        if match is None:
            if name not in takes:
                raise _refusal(name, f"{name} is not a parameter of this route")
            continue
        key = match.group(1)
        if not _METADATA_KEY.fullmatch(key):
            raise _refusal(name, "a metadata key is 1 to 40 characters of A-Z a-z 0-9 _ . -")
        if len(value) > METADATA_VALUE_LENGTH_MAX or "\x00" in value:
            raise _refusal(
                name, f"a metadata value is at most {METADATA_VALUE_LENGTH_MAX} characters, no NUL"
            )
        filters.append((key, value))
    if len(filters) > METADATA_FILTERS_MAX:
        raise _refusal("metadata", f"at most {METADATA_FILTERS_MAX} metadata filters")
    return tuple(filters)


def _refusal(name: str, message: str) -> ValidationFailed:
    return ValidationFailed.at(name, message, "query")
