"""Exact JSON for request bodies: every JSON number with a fraction or exponent is parsed as a
Decimal, never as a float, so ``100.10`` is exactly 100.10. NaN and Infinity are not JSON and are
refused.

Two more refusals make one request read one way only, whoever reads it:

- An object with the same member twice (``{"amount": 1, "amount": 900}``), at any depth, is
  malformed: parsers disagree on which one counts (Python keeps the last, others the first).
- A number written with more than AMOUNT_LENGTH_MAX characters is never converted (``int()`` of
  64 KiB of digits takes quadratic time): an OverlongNumber stands in its place, which no model
  accepts, so the refusal names the member it was sent as.
"""

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from wallet.domain.money import OverlongNumber
from wallet.limits import AMOUNT_LENGTH_MAX


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The dict is built in any case; only when it came out shorter than the pairs is a name
    # looked for, so a well-formed body pays one length comparison per object.
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"the member {name!r} appears more than once in one object")
            seen.add(name)
    return members


def _integer(text: str) -> int | OverlongNumber:
    return int(text) if len(text) <= AMOUNT_LENGTH_MAX else OverlongNumber(len(text))


def _fraction(text: str) -> Decimal | OverlongNumber:
    return Decimal(text) if len(text) <= AMOUNT_LENGTH_MAX else OverlongNumber(len(text))


# Built once: json.loads given any option builds a new decoder at every call, which cost more
# than the hooks add (a typical body is read faster than before them).
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_int=_integer,
    parse_float=_fraction,
    parse_constant=_refuse_constant,
)


def loads_exact(body: bytes) -> Any:
    try:
        # As json.loads reads bytes: UTF-8, -16 or -32, told apart by the first bytes.
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:
        # A member twice, a NaN, a nesting too deep: malformed for our purpose.
        raise json.JSONDecodeError(str(error), body.decode("utf-8", "replace"), 0) from None
    except ArithmeticError:
        # Decimal's InvalidOperation: an exponent beyond what a Decimal holds, as in 1e9999…9.
        message = "a number is out of range"
        raise json.JSONDecodeError(message, body.decode("utf-8", "replace"), 0) from None


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_exact(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose JSON body is parsed by loads_exact."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_handler(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact_handler
