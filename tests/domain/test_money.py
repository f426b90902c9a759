"""Money at the edge: parsing never rounds, and minor units print back to what was sent."""

from __future__ import annotations

import re
import time
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.domain.errors import ValidationFailed
from wallet.domain.money import format_minor, parse_amount, supply_to_minor, to_minor
from wallet.limits import AMOUNT_LENGTH_MAX, AMOUNT_MAJOR_MAX, SCALE_MAX

SCALES = st.integers(min_value=0, max_value=SCALE_MAX)


@st.composite
def amounts(draw: st.DrawFn) -> tuple[int, int]:
    """(scale, minor units) of an amount the API accepts: 1 minor unit up to the maximum."""
    scale = draw(SCALES)
    minor = draw(st.integers(min_value=1, max_value=AMOUNT_MAJOR_MAX * 10**scale))
    return scale, minor


@given(amounts())
def test_string_round_trips_exactly(amount: tuple[int, int]) -> None:
    scale, minor = amount
    text = format_minor(minor, scale)

    assert to_minor(parse_amount(text), scale) == minor
    assert format_minor(to_minor(parse_amount(text), scale), scale) == text


@given(amounts())
def test_decimal_round_trips_exactly(amount: tuple[int, int]) -> None:
    """A JSON number arrives as a Decimal (see api.jsonbody); it is never a float."""
    scale, minor = amount
    number = Decimal(minor).scaleb(-scale)

    assert to_minor(parse_amount(number), scale) == minor
    assert Decimal(format_minor(minor, scale)) == number


@given(SCALES, st.integers(min_value=-(10**20), max_value=10**20))
def test_printed_as_decimal_prints_it(scale: int, minor: int) -> None:
    """Any balance, the issuance account's negative one and zero included, prints as Decimal
    prints the same number with exactly ``scale`` decimals."""
    with localcontext() as exact:
        exact.prec = 60  # scaleb rounds to the context's precision (28 digits by default)
        expected = format(Decimal(minor).scaleb(-scale), "f")
    assert format_minor(minor, scale) == expected


@given(SCALES, st.integers(min_value=1, max_value=AMOUNT_MAJOR_MAX))
def test_integer_round_trips_exactly(scale: int, major: int) -> None:
    minor = to_minor(parse_amount(major), scale)

    assert minor == major * 10**scale
    expected = str(major) if scale == 0 else f"{major}.{'0' * scale}"
    assert format_minor(minor, scale) == expected


@given(amounts(), st.integers(min_value=1, max_value=12))
def test_trailing_zeros_beyond_the_scale_are_refused(amount: tuple[int, int], zeros: int) -> None:
    """Decimals count as written: 1.000 has three, whatever their value (API.md, "Money")."""
    scale, minor = amount
    padded = format_minor(minor, scale) + ("." if scale == 0 else "") + "0" * zeros

    for sent in (padded, Decimal(padded)):  # a decimal string, and a JSON number as parsed
        with pytest.raises(ValidationFailed, match="decimal places"):
            to_minor(parse_amount(sent), scale)


@given(SCALES, st.integers(min_value=1, max_value=AMOUNT_MAJOR_MAX))
def test_zeros_within_the_scale_change_nothing(scale: int, major: int) -> None:
    """``100`` and ``"100.00"`` are one amount: idempotency compares minor units."""
    written = [str(major)] + [f"{major}.{'0' * decimals}" for decimals in range(1, scale + 1)]
    for text in written:
        assert to_minor(parse_amount(text), scale) == major * 10**scale, text
        assert to_minor(parse_amount(Decimal(text)), scale) == major * 10**scale, text


STRING_GRAMMAR = re.compile(r"[0-9]+(\.[0-9]+)?")


@given(st.text(alphabet="0123456789.+-eE ,_\t\n\u00a0\u0663\uff11", max_size=12))
def test_a_decimal_string_is_ascii_digits_with_an_optional_point_and_digits(text: str) -> None:
    """Exactly the strings of API.md's grammar are amounts: no sign, space, exponent, separator,
    non-ASCII digit, and neither ``.5`` nor ``5.``."""
    try:
        parse_amount(text)
    except ValueError:
        accepted = False
    else:
        accepted = True

    assert accepted == (STRING_GRAMMAR.fullmatch(text) is not None)


@given(amounts(), st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=9))
def test_more_decimals_than_the_scale_are_refused_never_rounded(
    amount: tuple[int, int], extra: int, last_digit: int
) -> None:
    """A non-zero digit past the scale, on any amount within the bounds: refused."""
    scale, minor = amount
    digits = (minor - 1) * 10**extra + last_digit
    number = Decimal(digits).scaleb(-(scale + extra))

    for sent in (number, f"{number:f}"):
        with pytest.raises(ValidationFailed, match="decimal places") as refused:
            to_minor(parse_amount(sent), scale)
        assert refused.value.errors[0]["loc"] == ["body", "amount"]


@given(
    SCALES,
    st.integers(min_value=1, max_value=10**6).filter(lambda c: c % 10 != 0),
    st.integers(min_value=10, max_value=10**17),
)
def test_tiny_exponents_are_refused_not_flushed_to_zero(
    scale: int, coefficient: int, exponent: int
) -> None:
    """Decimal arithmetic underflows 1e-999999999 to zero; the parser must refuse it."""
    with pytest.raises(ValidationFailed, match="decimal places"):
        to_minor(Decimal(f"{coefficient}E-{exponent}"), scale)


def test_an_amount_is_written_with_at_most_forty_characters() -> None:
    longest = "0" * (AMOUNT_LENGTH_MAX - 4) + "1.25"
    assert to_minor(parse_amount(longest), 2) == 125
    assert to_minor(parse_amount(Decimal(longest)), 2) == 125
    for longer in ("0" + longest, Decimal("1." + "0" * AMOUNT_LENGTH_MAX), 10**AMOUNT_LENGTH_MAX):
        with pytest.raises(ValueError, match=f"at most {AMOUNT_LENGTH_MAX} characters|decimal"):
            parse_amount(longer)


def test_a_number_of_65_400_digits_is_refused_before_any_conversion() -> None:
    """A JSON number as written in a 64 KiB body: refused at once, never turned into an int."""
    number = Decimal("1." + "0" * 65_400)

    started = time.process_time()
    with pytest.raises(ValueError, match=f"at most {AMOUNT_LENGTH_MAX} characters"):
        parse_amount(number)
    spent_s = time.process_time() - started

    print(f"refused in {spent_s * 1000:.3f} ms of CPU")
    assert spent_s < 0.05


def test_a_supply_is_held_to_the_same_grammar() -> None:
    assert supply_to_minor(parse_amount("1000000.00"), 2) == 100_000_000
    with pytest.raises(ValidationFailed, match="decimal places") as refused:
        supply_to_minor(parse_amount("1000000.000"), 2)
    assert refused.value.errors[0]["loc"] == ["body", "supply"]


@given(SCALES)
def test_bounds(scale: int) -> None:
    smallest = Decimal(1).scaleb(-scale)
    assert to_minor(smallest, scale) == 1
    assert to_minor(Decimal(AMOUNT_MAJOR_MAX), scale) == AMOUNT_MAJOR_MAX * 10**scale
    for refused in (
        Decimal(0),
        -smallest,
        Decimal(AMOUNT_MAJOR_MAX) + smallest,
        Decimal("1e30"),
        Decimal("1e999999"),
    ):
        with pytest.raises(ValidationFailed):
            to_minor(refused, scale)


@given(amounts())
def test_format_has_exactly_the_scale_of_decimals_and_a_sign(amount: tuple[int, int]) -> None:
    scale, minor = amount
    text = format_minor(minor, scale)

    whole, _, fraction = text.partition(".")
    assert len(fraction) == scale
    assert whole.isdigit()
    assert format_minor(-minor, scale) == "-" + text


@pytest.mark.parametrize(
    ("minor", "scale", "text"),
    [
        (0, 2, "0.00"),
        (5, 2, "0.05"),
        (10050, 2, "100.50"),
        (-2550, 2, "-25.50"),
        (7, 0, "7"),
        (1, 8, "0.00000001"),
        (100_000_000_000_000, 2, "1000000000000.00"),
    ],
)
def test_format_examples(minor: int, scale: int, text: str) -> None:
    assert format_minor(minor, scale) == text


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        1.5,  # a float never holds an amount: JSON numbers arrive as Decimal
        [1],
        {"amount": 1},
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "",
        " ",
        " 5",
        "5 ",
        "\n1.00\t",
        "\u00a05",
        "abc",
        "1e2",
        "1E3",
        "-1",
        "+1",
        "+5",
        ".5",
        "5.",
        "1.2.3",
        "1,000",
        "1_000",
        "1 000",
        "0x10",
        "\uff11\uff12",  # full-width digits
        "\u0663",  # an Arabic-Indic digit
        "1" * 41,
    ],
)
def test_parse_refuses_what_is_not_an_amount(value: object) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_amount(value)
