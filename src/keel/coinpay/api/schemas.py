"""Request bodies, validated once at the edge, and the error body's schema."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic.json_schema import SkipJsonSchema

from keel.coinpay import money
from keel.coinpay.errors import InvalidAmount
from keel.coinpay.wire import dumps
from keel.core.app import JsonNumber
from keel.core.openapi import Problem

_MAX_METADATA_BYTES = 8192


def _exact_decimal(value: object) -> Decimal:
    # A JSON number arrives as a JsonNumber (routes with ExactJSONRoute) or an int: read from
    # its digits. A bare float can only come from Python, and has already lost them.
    try:
        return money.parse_decimal(value.text if isinstance(value, JsonNumber) else value)
    except InvalidAmount as exc:
        raise ValueError(exc.detail) from exc


_DECIMAL_TEXT = money.DECIMAL_GRAMMAR.pattern
ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": f"^{_DECIMAL_TEXT}$", "maxLength": 64},
            ]
        }
    ),
]
"""A decimal sent as a JSON number (``19.99``, ``1e-7``) or a string in JSON's number grammar
(``"19.99"``), read exactly: never ``2_5``, ``" 25"``, ``+1``, ``NaN``, ``0x10`` or ``1e999``."""


class CreatePaymentBody(BaseModel):
    # Unknown fields are refused (a typo must not create a payment), except the ones
    # CoinPayPortal's SDK, CLI and plugins send that we do not use, listed below.
    model_config = ConfigDict(extra="forbid")

    business_id: str = Field(min_length=1, max_length=64)
    amount: ExactDecimal = Field(description='Fiat amount, e.g. 19.99 or "19.99"')
    currency: str = Field(default="USD", min_length=3, max_length=8)
    blockchain: str = Field(min_length=1, max_length=16, description="e.g. BTC, ETH, USDC_SOL")
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    expires_in_minutes: int | None = Field(default=None, ge=1, le=129600)
    merchant_wallet_address: str | None = Field(
        default=None,
        max_length=200,
        description="Sent by CoinPayPortal clients; ignored: funds go to the business's "
        "configured wallet for the coin.",
    )

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
    confirmations: int | None = Field(default=None, ge=0, le=1_000_000)
    tx_hash: str | None = Field(
        default=None, max_length=128, description="Update an earlier simulated transfer"
    )
    reverted: bool = Field(default=False, description="Drop the transfer (a reorg)")


class WalletBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cryptocurrency: str = Field(min_length=1, max_length=16)
    wallet_address: str = Field(min_length=1, max_length=200)


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, max_length=20)


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
