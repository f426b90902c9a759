"""Pages of a list and the opaque cursors that continue them.

A cursor names the last item of the page it came with (a history's sequence number, a hold's id),
in base64url so that clients treat it as opaque. A cursor this service did not give out is a
422, never a database error.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from wallet.domain.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(position: int | str, kind: str = "seq") -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str = "seq", length_max: int = 64) -> str:
    """The position a cursor of ``kind`` names; a cursor we did not give out is a 422."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != kind or not value or len(value) > length_max:
            raise ValueError(cursor)
        # ASCII digits only (str.isdigit also takes "²"), and within a BIGINT's range.
        if kind == "seq" and not (
            value.isascii() and value.isdigit() and len(value) <= 19 and int(value) < 2**63
        ):
            raise ValueError(cursor)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed.at(
            "cursor", "cursor is not one this service gave out", "query"
        ) from None
