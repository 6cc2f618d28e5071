"""Request bodies, validated once at the edge, and the error body's schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from keel.coinpay import money
from keel.coinpay.assets import COINS
from keel.coinpay.errors import InvalidAmount, UnsupportedCoin, UnsupportedCurrency
from keel.coinpay.lifecycle import EVENT_TYPES
from keel.coinpay.wire import dumps
from keel.core.jsonbody import JsonNumber
from keel.core.openapi import NOT_A_BOOL, Problem

_MAX_METADATA_BYTES = 8192


def _exact_decimal(value: object) -> Decimal:
    # A JSON number arrives as a JsonNumber (routes with ExactJSONRoute) or an int: read from
    # the digits sent. A bare float can only come from Python, and has already lost them.
    if isinstance(value, JsonNumber):
        value = Decimal(value.text)  # the JSON parser has checked its grammar
    try:
        return money.parse_decimal(value)
    except InvalidAmount as exc:
        raise ValueError(exc.detail) from exc


_MIN, _MAX = float(money.MIN_MAGNITUDE), float(money.MAX_MAGNITUDE)
ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": _MIN, "maximum": _MAX},
                {"type": "number", "minimum": -_MAX, "maximum": -_MIN},
                {"type": "number", "enum": [0]},
                {
                    "type": "string",
                    "pattern": f"^{money.DECIMAL_GRAMMAR.pattern}$",
                    "maxLength": money.MAX_DECIMAL_CHARS,
                },
            ]
        }
    ),
]
"""A decimal sent as a JSON number (``19.99``, ``1e-7``) or a string in JSON's number grammar
(``"19.99"``), read exactly: never ``2_5``, ``" 25"``, ``+1``, ``NaN``, ``0x10`` or ``1e999``."""


def _one_of(
    values: Iterable[str], *, lower_too: bool, refuse: Callable[[str], Exception]
) -> tuple[AfterValidator, WithJsonSchema]:
    """What makes a string one of ``values`` (or, with ``lower_too``, their lower case): its
    check, raising ``refuse(value)`` (our error, with its stable code, passes through pydantic
    to the problem handler), and its schema, an enum."""
    allowed = tuple(
        dict.fromkeys(v for value in values for v in (value, value.lower())[: 1 + lower_too])
    )

    def check(value: str) -> str:
        if value not in allowed:
            raise refuse(value)
        return value

    return AfterValidator(check), WithJsonSchema({"type": "string", "enum": list(allowed)})


def _unsupported_coin(value: str) -> Exception:
    return UnsupportedCoin(f"Unsupported blockchain {value[:40]!r}; supported: {', '.join(COINS)}")


def _unsupported_currency(value: str) -> Exception:
    supported = ", ".join(money.FIAT_EXPONENTS)
    return UnsupportedCurrency(f"Unsupported currency {value[:40]!r}; supported: {supported}")


_COINS = _one_of(COINS, lower_too=True, refuse=_unsupported_coin)
CoinSymbol = Annotated[str, _COINS[0], _COINS[1]]
"""A supported coin's symbol (``BTC``, ``USDC_SOL``), upper or lower case."""
_FIATS = _one_of(money.FIAT_EXPONENTS, lower_too=True, refuse=_unsupported_currency)
FiatCode = Annotated[str, _FIATS[0], _FIATS[1]]
"""A supported fiat currency (``USD``), upper or lower case."""
_EVENTS = _one_of(
    EVENT_TYPES, lower_too=False, refuse=lambda v: ValueError(f"unknown event type {v[:40]!r}")
)
EventType = Annotated[str, _EVENTS[0], _EVENTS[1]]
# What the webhook sender can reach: an absolute http(s) URL without spaces. The sender's own
# checks (DNS, private addresses) come after, in keel.coinpay.notify.
_WEBHOOK_URL = r"^\s*https?://[^\s/?#@]+(?:[/?#]\S*)?\s*$"


class CreatePaymentBody(BaseModel):
    # Unknown fields are refused (a typo must not create a payment), except the ones
    # CoinPayPortal's SDK, CLI and plugins send that we do not use, listed below.
    model_config = ConfigDict(extra="forbid")

    business_id: str = Field(min_length=1, max_length=64)
    amount: ExactDecimal = Field(
        description='Fiat amount, e.g. 19.99 or "19.99": above 0, at most 1000000000, with no '
        "more decimals than the currency has (0 for JPY, else 2); else 400 invalid_amount. "
        "A JSON number within 1e-9 of a whole minor unit (above about 17,600: within 2^-44 "
        "of itself), a JavaScript float's rounding such as 59.97000000000001, is read as that "
        "unit; a string is read exactly as written"
    )
    currency: FiatCode = Field(default="USD")
    blockchain: CoinSymbol = Field(description="e.g. BTC, ETH, USDC_SOL")
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    expires_in_minutes: Annotated[int, Field(ge=1, le=129600), NOT_A_BOOL] | None = None
    merchant_wallet_address: str | None = Field(
        default=None,
        max_length=200,
        description="Sent by CoinPayPortal clients; ignored: funds go to the business's "
        "configured wallet for the coin.",
    )

    @model_validator(mode="before")
    @classmethod
    def _without_double_noise(cls, data: Any) -> Any:
        # CoinPay's SDK sends the amount as a JavaScript number, so `1.15 * 3` arrives as
        # 3.4499999999999997: a fiat amount sent as a number is read as the cent it is a double's
        # rounding away from (money.fiat_from_double). Not a string: whoever sends "59.97000…"
        # chose decimal text, and the string is the way to say exactly what is meant. Not the
        # crypto amounts either (SimulateBody): at 18 decimals a double's noise is itself a
        # whole number of wei (0.1 + 0.2 ETH is 300000000000000040 wei), so nothing tells it
        # from intent, and an amount compared with what a chain saw is better refused than
        # silently rounded.
        if isinstance(data, dict) and isinstance(amount := data.get("amount"), JsonNumber):
            currency = data.get("currency", "USD")
            if isinstance(currency, str):
                exact = Decimal(amount.text)  # the JSON parser has checked its grammar
                return {**data, "amount": money.fiat_from_double(exact, currency)}
        return data

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(dumps(value).encode()) > _MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {_MAX_METADATA_BYTES} bytes")
        return value


class SimulateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_crypto: ExactDecimal | None = Field(
        default=None, description="Amount sent, in whole coins"
    )
    confirmations: Annotated[int, Field(ge=0, le=1_000_000), NOT_A_BOOL] | None = None
    tx_hash: str | None = Field(
        default=None, max_length=128, description="Update an earlier simulated transfer"
    )
    reverted: bool = Field(default=False, strict=True, description="Drop the transfer (a reorg)")


class WalletBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cryptocurrency: CoinSymbol
    wallet_address: str = Field(min_length=1, max_length=200)


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000,
        pattern=_WEBHOOK_URL,
        json_schema_extra={"format": "uri"},
        description="Absolute http(s) URL; must resolve to a public address",
    )
    events: list[EventType] | None = Field(default=None, max_length=20)


class CoinpayProblem(Problem):
    """An error reply: problem+json (RFC 9457) plus CoinPayPortal's ``success``/``error``."""

    success: Literal[False] = Field(description="Always false: CoinPayPortal's clients test it")
    error: str = Field(description="The detail again, where CoinPayPortal's clients read it")
    # Context some errors add (see keel.coinpay.errors and the rate providers).
    coin: str | SkipJsonSchema[None] = Field(default=None, description="unsupported_coin")
    currency: str | SkipJsonSchema[None] = Field(default=None, description="unsupported_currency")
    provider: str | SkipJsonSchema[None] = Field(default=None, description="rate_unavailable")
    pair: str | SkipJsonSchema[None] = Field(default=None, description="rate_unavailable")
    failures: list[str] | SkipJsonSchema[None] = Field(
        default=None, description="rate_unavailable: why each provider's quote was dropped"
    )


class ApiKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(
        min_length=1,
        max_length=10,
        description="Scopes of the new key, in the caller's mode; only scopes the caller has",
    )
