"""Exact money arithmetic: integer base units for crypto, Decimal for fiat. Never floats."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Context, Decimal, InvalidOperation
from typing import Final

from keel.coinpay.errors import InvalidAmount, UnsupportedCurrency

# Minor units per fiat currency (ISO 4217 exponent).
FIAT_EXPONENTS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "JPY": 0,
}
MAX_FIAT = Decimal("1000000000")  # one billion: anything larger is a typo or an attack.

_CTX = Context(prec=120)  # enough digits for 10**78 base units divided by any sane rate

# An amount as JSON writes a number: an optional minus, no leading zeros, an optional fraction
# and an exponent of at most two digits. Decimal(str) also takes underscores, whitespace, "+",
# "NaN", "Infinity", ".5" and exponents of any size; none of them is an amount a client meant.
DECIMAL_GRAMMAR: Final = re.compile(
    r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,2})?", re.ASCII
)
MAX_DECIMAL_CHARS: Final = 64
# A JSON number is read whatever its spelling, if 0 or of magnitude within these bounds (about
# those of a decimal string): every later quantize and multiply stays small.
MIN_MAGNITUDE: Final = Decimal("1e-90")
MAX_MAGNITUDE: Final = Decimal("1e60")

# A JavaScript number is an IEEE-754 double, so a shop's `1.15 * 3` reaches us as the JSON
# number 3.4499999999999997 and `0.1 + 0.2` as 0.30000000000000004. Such noise is tiny beside
# a cent: a few units in the double's last place (2**-52 of the value), in practice under 4e-16
# of it (measured over sums of prices). We read a fiat amount sent as a JSON number as the
# whole minor unit it lies within DOUBLE_NOISE_ABS of (1e-9, the figure clients are told), or
# within DOUBLE_NOISE_REL of the amount (2**-44, room for hundreds of roundings), whichever is
# larger: the relative band is the wider from about 17,600, and from 2**23 (8.4 million) a
# double's spacing passes 1e-9, so 1e-9 alone would refuse honest totals (about one in four
# between 10 million and a billion). At MAX_FIAT the band is 5.7e-5, so a genuine third
# decimal (0.001 away) is always refused. Why only fiat, only numbers: ADR 0011's addendum.
DOUBLE_NOISE_ABS: Final = Decimal("1e-9")
DOUBLE_NOISE_REL: Final = _CTX.power(2, -44)
# No double's shortest decimal form (JavaScript's Number#toString, Python's repr) has more
# significant digits: a number with more was written by decimal arithmetic and means its digits.
MAX_DOUBLE_DIGITS: Final = 17


def parse_decimal(value: object) -> Decimal:
    """The exact value of an amount as a client sent it: a decimal string (at most
    :data:`MAX_DECIMAL_CHARS` characters of :data:`DECIMAL_GRAMMAR`), or a JSON number already
    read exactly from its digits (int or Decimal, never float), 0 or of magnitude within
    [:data:`MIN_MAGNITUDE`, :data:`MAX_MAGNITUDE`]. Raises InvalidAmount for anything else.
    """
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        if len(value) > MAX_DECIMAL_CHARS:
            raise InvalidAmount(f"{shown!r} is too long for an amount")
        if DECIMAL_GRAMMAR.fullmatch(value) is None:
            raise InvalidAmount(f"{shown!r} is not a decimal number (e.g. 19.99)")
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidAmount("amount must be a JSON number or a decimal string")
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidAmount("amount must be a finite number")
    if number and not MIN_MAGNITUDE <= abs(number) <= MAX_MAGNITUDE:
        raise InvalidAmount("amount is out of range")
    return number


def parse_fiat(amount: Decimal, currency: str) -> tuple[Decimal, str]:
    """Validate a fiat amount and currency code; returns them normalised.

    Raises InvalidAmount (not positive, above the limit, too many decimals) or
    UnsupportedCurrency.
    """
    code = parse_currency(currency)
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount("amount must be a positive number")
    if amount > MAX_FIAT:
        raise InvalidAmount(f"amount must be at most {MAX_FIAT}")
    places = FIAT_EXPONENTS[code]
    quantum = Decimal(1).scaleb(-places)
    if amount != amount.quantize(quantum, context=_CTX):
        raise InvalidAmount(f"amount has more than {places} decimal places for {code}")
    return amount.quantize(quantum, context=_CTX), code


def fiat_from_double(amount: Decimal, currency: str) -> Decimal:
    """A fiat amount sent as a JSON number, with a double's rounding noise taken off: the
    whole minor unit of ``currency`` it lies within :data:`DOUBLE_NOISE_ABS` (or, for large
    amounts, :data:`DOUBLE_NOISE_REL` of itself) of, e.g. ``59.97000000000001`` USD -> 59.97.
    Any other amount, or an unknown currency, comes back unchanged for :func:`parse_fiat` to
    judge (``10.005`` USD stays a refusal: it is 0.005 from a cent, not noise).

    Only for numbers: a decimal string is written by decimal arithmetic and means its digits,
    as does a number with more than :data:`MAX_DOUBLE_DIGITS` significant digits. Crypto
    amounts never come here (see ``keel.coinpay.api.schemas``).
    """
    places = FIAT_EXPONENTS.get(currency.upper())
    if places is None or not amount.is_finite():
        return amount
    if not MIN_MAGNITUDE <= amount.copy_abs() <= MAX_FIAT:
        return amount
    if len(amount.normalize(_CTX).as_tuple().digits) > MAX_DOUBLE_DIGITS:
        return amount
    unit = amount.quantize(Decimal(1).scaleb(-places), context=_CTX)
    band = max(DOUBLE_NOISE_ABS, _CTX.multiply(amount.copy_abs(), DOUBLE_NOISE_REL))
    if unit == 0 or _CTX.subtract(amount, unit).copy_abs() > band:
        return amount
    return unit


def parse_currency(currency: str) -> str:
    """An upper-case supported fiat code; raises UnsupportedCurrency."""
    code = currency.strip().upper()
    if code not in FIAT_EXPONENTS:
        raise UnsupportedCurrency(
            f"Unsupported currency {currency!r}; supported: {', '.join(FIAT_EXPONENTS)}"
        )
    return code


def crypto_for_fiat(fiat: Decimal, rate: Decimal, decimals: int) -> int:
    """Base units that cover ``fiat`` at ``rate`` (fiat per whole coin), rounded up so the
    merchant is never short by a unit."""
    if rate <= 0:
        raise InvalidAmount("rate must be positive")
    units = _CTX.divide(_CTX.multiply(fiat, Decimal(10) ** decimals), rate)
    return int(units.to_integral_value(rounding=ROUND_CEILING))


def format_units(units: int, decimals: int) -> str:
    """``123400, 8`` -> ``"0.001234"``: a plain decimal string, no exponent, no trailing zeros."""
    if units < 0:
        raise ValueError("units must be non-negative")
    whole, frac = divmod(units, 10**decimals)
    if decimals == 0 or frac == 0:
        return str(whole)
    return f"{whole}.{str(frac).zfill(decimals).rstrip('0')}"


def parse_units(text: str, decimals: int) -> int:
    """``"0.001234", 8`` -> ``123400``; raises InvalidAmount for anything not exactly
    representable in base units (negative, exponent, too many decimals, garbage)."""
    raw = text.strip()
    if not raw or raw.startswith(("-", "+")) or any(c not in "0123456789." for c in raw):
        raise InvalidAmount(f"{text[:40]!r} is not a plain non-negative decimal amount")
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise InvalidAmount(f"{shown!r} is not a decimal amount") from exc
    if value.adjusted() >= 78:  # bounded before multiplying: no decimal.Overflow
        raise InvalidAmount(f"{shown!r} is too large")
    scaled = _CTX.multiply(value, Decimal(10) ** decimals)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{shown!r} has more than {decimals} decimal places")
    units = int(scaled)
    if units >= 10**78:
        raise InvalidAmount("amount is too large")
    return units


def units_of(amount: Decimal | int, decimals: int) -> int:
    """``Decimal("1.23456789"), 8`` -> ``123456789``: a non-negative amount a node wrote in whole
    coins (a JSON number read as Decimal, never a float) in exact base units. Raises
    InvalidAmount for a float, a bool, a negative or non-finite amount, more than ``decimals``
    decimal places, or 10**78 base units or more."""
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise InvalidAmount(f"an amount must be an int or a Decimal, not {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite() or value < 0:
        raise InvalidAmount(f"{value} is not a non-negative finite amount")
    if value and value.adjusted() >= 78:  # bounded before scaling: no decimal.Overflow
        raise InvalidAmount(f"{value} is too large")
    scaled = value.scaleb(decimals, context=_CTX)
    if scaled != scaled.to_integral_value(context=_CTX):
        raise InvalidAmount(f"{value} has more than {decimals} decimal places")
    units = int(scaled)
    if units >= 10**78:
        raise InvalidAmount("amount is too large")
    return units


def covers(received: int, expected: int, tolerance_percent: Decimal) -> bool:
    """True when ``received`` pays ``expected`` within an underpayment tolerance (percent)."""
    threshold = _CTX.multiply(Decimal(expected), (Decimal(100) - tolerance_percent))
    return _CTX.multiply(Decimal(received), Decimal(100)) >= threshold
