"""Money at the edge: exact parsing of request amounts and printing of minor units.

Inside the service an amount is always an ``int`` of minor units of one asset. ``Decimal`` appears
only here, to parse what a client sent and to print what we answer. Nothing is ever rounded: an
amount written with more decimals than the asset's scale is refused (``1.000`` at scale 2, too).

A decimal string is ASCII digits with an optional ``.`` followed by digits, nothing else: no sign,
space, exponent or separator, and neither ``.5`` nor ``5.``. A JSON number follows JSON's own
grammar. Either is at most AMOUNT_LENGTH_MAX characters long as written.
"""

import re
from decimal import Decimal, InvalidOperation

from wallet.limits import AMOUNT_LENGTH_MAX, AMOUNT_MAJOR_MAX, SUPPLY_MINOR_MAX

from .errors import ValidationFailed

_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DECIMAL_STRING = (
    "amount must be a decimal string such as '100.50': ASCII digits, then optionally a '.' and "
    "more digits (no sign, space, exponent or separator)"
)
_TOO_LONG = f"amount must be written with at most {AMOUNT_LENGTH_MAX} characters"


class OverlongNumber:
    """A JSON number written with more than AMOUNT_LENGTH_MAX characters, left unconverted.

    The body reader (api/jsonbody.py) puts one where such a number stood, so that converting it
    costs nothing and the model refuses it at its own location (an amount, a scale, …).
    """

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length

    def __repr__(self) -> str:
        return f"<a JSON number of {self.length} characters>"


def parse_amount(value: object) -> Decimal:
    """Turn a JSON number (already parsed as Decimal or int) or a decimal string into a Decimal.

    Raises ValueError with a message fit for a client when the value is not an amount at all.
    """
    if isinstance(value, bool):
        raise ValueError("amount must be a number or a decimal string, not a boolean")
    if isinstance(value, OverlongNumber):
        raise ValueError(_TOO_LONG)
    if isinstance(value, int):
        # The body reader never makes an int this long; a caller in Python might.
        if abs(value) >= 10**AMOUNT_LENGTH_MAX:
            raise ValueError(_TOO_LONG)
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("amount must be a finite number")
        if len(value.as_tuple().digits) > AMOUNT_LENGTH_MAX:
            raise ValueError(_TOO_LONG)
        return value
    if isinstance(value, str):
        if len(value) > AMOUNT_LENGTH_MAX or not _is_plain_decimal(value):
            raise ValueError(_DECIMAL_STRING)
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - _is_plain_decimal admits only valid text
            raise ValueError(_DECIMAL_STRING) from None
    raise ValueError("amount must be a number or a decimal string")


def _is_plain_decimal(text: str) -> bool:
    return _PLAIN_DECIMAL.fullmatch(text) is not None


def supply_to_minor(supply: Decimal, scale: int) -> int:
    """An asset's supply in minor units: greater than 0, at most SUPPLY_MINOR_MAX minor units,
    at most ``scale`` decimals.
    """
    bound = f"supply must be greater than 0 and at most {SUPPLY_MINOR_MAX} minor units"
    # adjusted() is the exponent of the leading digit: no 10**huge is computed below.
    if supply <= 0 or supply.adjusted() > 18:
        raise ValidationFailed.at("supply", bound)
    minor = to_minor(supply, scale, "supply", amount_max=None)
    if minor > SUPPLY_MINOR_MAX:
        raise ValidationFailed.at("supply", bound)
    return minor


def to_minor(
    amount: Decimal, scale: int, field: str = "amount", amount_max: int | None = AMOUNT_MAJOR_MAX
) -> int:
    """Convert a major-unit amount to minor units of an asset with ``scale`` decimals.

    The amount must be greater than zero, at most AMOUNT_MAJOR_MAX, and be written with no more
    decimals than the scale: a Decimal keeps the exponent it was written with, so ``1.000`` at
    scale 2 is refused like ``1.001``, and ``100`` and ``100.00`` are both 10000.
    """
    if amount <= 0:
        raise ValidationFailed.at(field, "amount must be greater than 0")
    if amount_max is not None and amount > amount_max:
        raise ValidationFailed.at(field, f"amount must be at most {AMOUNT_MAJOR_MAX:,} major units")
    # Integer arithmetic on the digits: Decimal arithmetic rounds to its context, and would turn
    # 1e-999999999 into zero minor units rather than refuse it.
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int), "a finite amount has an integer exponent"
    shift = exponent + scale
    if shift < 0:
        raise ValidationFailed.at(field, f"amount has more than {scale} decimal places")
    # Building a Decimal from a tuple is exact, and so is int() of an integral Decimal. The bounds
    # above keep 10**shift small: the amount is at most a billion (or, for a supply, its leading
    # digit is checked first), and it has at least one non-zero digit.
    coefficient = int(Decimal((0, digits, 0)))
    factor: int = 10**shift
    return coefficient * factor


def format_minor(minor: int, scale: int) -> str:
    """Print minor units as a decimal string with exactly ``scale`` decimals: 10050 -> '100.50'.

    By slicing the digits (padded to at least one whole digit): it runs nine times per
    transaction answered, and this is twice as fast as divmod and a nested format spec.
    """
    if scale == 0:
        return str(minor)
    digits = str(abs(minor)).rjust(scale + 1, "0")
    sign = "-" if minor < 0 else ""
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"
