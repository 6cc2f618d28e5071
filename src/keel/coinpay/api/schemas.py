"""Request bodies, validated once at the edge, and the error body's schema."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from keel.coinpay.wire import dumps
from keel.core.openapi import Problem

_MAX_METADATA_BYTES = 8192


class CreatePaymentBody(BaseModel):
    # Unknown fields are ignored so CoinPayPortal's SDKs and plugins work unchanged.
    model_config = ConfigDict(extra="ignore")

    business_id: str = Field(min_length=1, max_length=64)
    amount: Decimal = Field(allow_inf_nan=False, description="Fiat amount, e.g. 19.99")
    currency: str = Field(default="USD", min_length=3, max_length=8)
    blockchain: str = Field(min_length=1, max_length=16, description="e.g. BTC, ETH, USDC_SOL")
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)
    expires_in_minutes: int | None = Field(default=None, ge=1, le=129600)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(dumps(value).encode()) > _MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {_MAX_METADATA_BYTES} bytes")
        return value


class SimulateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_crypto: Decimal | None = Field(
        default=None, allow_inf_nan=False, description="Amount sent, in whole coins"
    )
    confirmations: int | None = Field(default=None, ge=0, le=1_000_000)
    tx_hash: str | None = Field(
        default=None, max_length=128, description="Update an earlier simulated transfer"
    )
    reverted: bool = Field(default=False, description="Drop the transfer (a reorg)")

    @field_validator("amount_crypto")
    @classmethod
    def _sane_magnitude(cls, value: Decimal | None) -> Decimal | None:
        # Checked before anything writes the number out: "1e10000000" would cost seconds.
        if value is not None and not -30 <= value.adjusted() <= 30:
            raise ValueError("amount_crypto is out of range")
        return value


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


class ApiKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(
        min_length=1,
        max_length=10,
        description="Scopes of the new key, in the caller's mode; only scopes the caller has",
    )
