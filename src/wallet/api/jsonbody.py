"""Exact JSON for request bodies: every JSON number with a fraction or exponent is parsed as a
Decimal, never as a float, so ``100.10`` is exactly 100.10. NaN and Infinity are not JSON and are
refused.

A number written with more than AMOUNT_LENGTH_MAX characters is never converted (``int()`` of 64 KiB
of digits takes quadratic time): an OverlongNumber stands in its place, which no model accepts, so
the refusal names the member it was sent as.
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


def _integer(text: str) -> int | OverlongNumber:
    return int(text) if len(text) <= AMOUNT_LENGTH_MAX else OverlongNumber(len(text))


def _fraction(text: str) -> Decimal | OverlongNumber:
    return Decimal(text) if len(text) <= AMOUNT_LENGTH_MAX else OverlongNumber(len(text))


def loads_exact(body: bytes) -> Any:
    try:
        return json.loads(
            body, parse_int=_integer, parse_float=_fraction, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:
        # A NaN, a nesting too deep: malformed for our purpose.
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
