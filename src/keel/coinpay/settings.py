"""coinpay's settings (env prefix ``KEEL_COINPAY_``), validated at boot."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keel.coinpay.assets import DEFAULT_CONFIRMATIONS


def _default_key_file() -> Path:
    return Path(platformdirs.user_config_dir("keel")) / "coinpay-master.key"


class CoinpaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_COINPAY_", extra="ignore")

    database_url: str = Field(
        default="", description="SQLAlchemy async URL; empty means <data_dir>/coinpay.db"
    )
    master_key: SecretStr | None = Field(
        default=None, description="Base64 of 32 bytes that encrypts the seed and secrets."
    )
    master_key_file: Path = Field(default_factory=_default_key_file)
    public_url: str = Field(default="", description="Base URL customers reach, for links.")
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = 10.0
    confirmations: dict[str, int] = Field(default_factory=dict)
    tolerance_percent: Decimal = Decimal(0)
    expiry_minutes: int = Field(default=15, ge=1, le=60 * 24 * 90)
    monitoring_minutes: int = Field(default=1440, ge=0, le=60 * 24 * 30)
    rates: Literal["fixture", "live"] = "fixture"
    rate_max_age_seconds: int = Field(default=300, ge=1)
    rate_limit_per_key: int = Field(default=600, ge=1, description="Requests a window per key.")
    rate_limit_per_business: int = Field(
        default=1200, ge=1, description="Requests a window per business and mode (test, live)."
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=86_400)
    config_changes_per_hour: int = Field(
        default=30,
        ge=1,
        description="Configuration changes (payout wallets, webhooks, API keys) an hour per "
        "business and mode over the API, counted in the database.",
    )
    platform_wallets: dict[str, str] = Field(
        default_factory=dict,
        description='Where the commission goes, per chain (JSON: {"ETH": "0x…"}); a live '
        "chain without one is not swept.",
    )
    sweep_parallel: int = Field(
        default=4, ge=1, le=64, description="Transactions in flight per chain."
    )
    sweep_stuck_minutes: int = Field(
        default=60, ge=1, description="A sweep unconfirmed this long is reported stuck."
    )
    run_workers: bool = True
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    watch_interval_seconds: float = Field(default=5.0, gt=0)
    job_lease_seconds: int = Field(default=60, ge=5)

    @field_validator("confirmations")
    @classmethod
    def _known_chains(cls, value: dict[str, int]) -> dict[str, int]:
        normalised = {k.upper(): v for k, v in value.items()}
        unknown = set(normalised) - set(DEFAULT_CONFIRMATIONS)
        if unknown:
            raise ValueError(f"unknown chains in confirmations: {sorted(unknown)}")
        if any(v < 0 for v in normalised.values()):
            raise ValueError("confirmations must be >= 0")
        return normalised

    @field_validator("platform_wallets")
    @classmethod
    def _platform_chains(cls, value: dict[str, str]) -> dict[str, str]:
        normalised = {k.upper(): v.strip() for k, v in value.items()}
        unknown = set(normalised) - set(DEFAULT_CONFIRMATIONS)
        if unknown:
            raise ValueError(f"unknown chains in platform_wallets: {sorted(unknown)}")
        if not all(normalised.values()):
            raise ValueError("platform_wallets: every chain needs an address")
        return normalised

    @field_validator("tolerance_percent")
    @classmethod
    def _tolerance(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < Decimal(100):
            raise ValueError("tolerance_percent must be in [0, 100)")
        return value

    def required_confirmations(self, chain: str) -> int:
        return self.confirmations.get(chain, DEFAULT_CONFIRMATIONS[chain])
