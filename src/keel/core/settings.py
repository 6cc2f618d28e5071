"""Settings every product shares. Each product extends :class:`KeelSettings`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keel.core.ratelimit import RateLimitStore


class KeelSettings(BaseSettings):
    """Process-wide settings (env prefix ``KEEL_``)."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where embedded databases live.")
    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = Field(
        default=2**20,
        ge=1024,
        le=2**30,
        description="Largest request body any product accepts (413 past it); a route may "
        "allow more for itself (bittorrented's .torrent uploads).",
    )
    redis_url: str = Field(
        default="",
        description="redis://host:port/db. When set, rate-limit counters live there: shared by "
        "every process, kept across restarts.",
    )
    redis_key_prefix: str = Field(
        default="keel", min_length=1, description="Prefix of every key Keel writes to Redis."
    )
    rate_limit_store: Literal["auto", "memory", "redis", "database"] = Field(
        default="auto",
        description="Where request counters live: auto is redis when redis_url is set, else "
        "memory (this process only); database counts in each product's database, shared "
        "by processes on it without Redis, at one write per request.",
    )

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Self:
        if self.rate_limit_store == "redis" and not self.redis_url:
            raise ValueError("rate_limit_store=redis needs KEEL_REDIS_URL")
        return self

    def rate_limits(self) -> RateLimitStore:
        """Where the products' request limiters keep their counters."""
        kind = self.rate_limit_store
        if kind == "auto":
            kind = "redis" if self.redis_url else "memory"
        return RateLimitStore(kind, self.redis_url, self.redis_key_prefix)

    def sqlite_url(self, product: str) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / f'{product}.db'}"
