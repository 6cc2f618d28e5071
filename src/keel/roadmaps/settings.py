"""roadmaps' settings (env prefix ``KEEL_ROADMAPS_``), validated at boot."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class RoadmapsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_ROADMAPS_", extra="ignore")

    database_url: str = Field(
        default="", description="SQLAlchemy async URL; empty means <data_dir>/roadmaps.db"
    )
    replica_url: str = Field(
        default="",
        description="A streaming replica of database_url (PostgreSQL). Reads go there while "
        "the primary is down; writes are refused with 503, never sent there.",
    )
    statement_timeout_ms: int = Field(
        default=5000,
        ge=0,
        le=600_000,
        description="PostgreSQL statement_timeout of every session (0: none): the server "
        "cancels a statement that runs longer, and the request gets a 503.",
    )
    public_url: str = Field(default="", description="Base URL people reach, for links.")
    server_secret: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 bytes keying sessions, CSRF and reset tokens; every "
        "process serving one database needs the same. Unset: <data_dir>/roadmaps-server.key.",
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark cookies Secure (set it behind HTTPS; plain-HTTP localhost needs it off).",
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    rate_limit_api: int = Field(
        default=300, ge=1, description="API requests per user (or address) per window."
    )
    run_workers: bool = Field(
        default=True,
        description="Run generation jobs and the /discover refresh in this process (off for "
        "API-only processes beside `keel roadmaps worker`).",
    )
    generation_concurrency: int = Field(default=4, ge=1, le=64)
    generation_pace_ms: int = Field(
        default=0,
        ge=0,
        le=5000,
        description="Pause after each progress report, so a generator that finishes in "
        "milliseconds (the offline one) still shows its stages moving (demos, browser tests).",
    )
    discover_interval_seconds: int = Field(
        default=300, ge=5, le=86_400, description="How often /discover is recomputed."
    )
    discover_precompute: bool = Field(
        default=True,
        description="Serve /discover from the precomputed result; off runs its queries on "
        "every request (the benchmark's baseline; never useful in production).",
    )
    discover_ttl_seconds: int = Field(
        default=900,
        ge=10,
        le=172_800,
        description="How long a computed /discover may be served; at least twice the interval.",
    )
    # Mail (password-reset links): the file outbox needs nothing; SMTP needs a host.
    mailer: Literal["file", "smtp"] = Field(
        default="file",
        description="file: each message is a file (0600) in <data_dir>/outbox/roadmaps; "
        "smtp: sent through smtp_host.",
    )
    mail_from: str = Field(default="Keel roadmaps <roadmaps@localhost>", max_length=200)
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (587), tls from the start (465), or none."
    )
    smtp_username: str = ""
    smtp_password: SecretStr | None = None

    @model_validator(mode="after")
    def _smtp_needs_a_host(self) -> Self:
        if self.mailer == "smtp" and not self.smtp_host:
            raise ValueError("mailer=smtp needs smtp_host")
        return self

    @model_validator(mode="after")
    def _discover_ttl_outlives_two_refreshes(self) -> Self:
        if self.discover_ttl_seconds < 2 * self.discover_interval_seconds:
            raise ValueError("discover_ttl_seconds must be at least twice the interval")
        return self

    # Roadmap generation (keel.roadmaps.generation, ADR 0032). Offline needs nothing.
    generation_provider: Literal["offline", "openai"] = Field(
        default="offline",
        description="offline: the shipped catalogue. openai: an OpenAI-compatible chat API "
        "(OpenRouter, a llama.cpp or Ollama server).",
    )
    generation_base_url: str = Field(
        default="https://openrouter.ai/api/v1",
        pattern=r"^https?://\S+$",
        description="API root, e.g. http://127.0.0.1:11434/v1 (Ollama), :8080/v1 (llama.cpp).",
    )
    generation_api_key: SecretStr | None = Field(
        default=None, description="Bearer key; local servers need none."
    )
    generation_model: str = Field(default="", description="Primary model (required for openai).")
    generation_fallback_model: str = Field(
        default="", description="Asked when the primary fails or answers invalidly."
    )
    generation_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    generation_read_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Longest silence between bytes of an answer."
    )
    generation_answer_timeout_seconds: float = Field(
        default=120.0, gt=0, le=900, description="Longest time for one whole answer."
    )
    generation_max_attempts: int = Field(
        default=2, ge=1, le=5, description="Answers asked of one model before its fallback."
    )
    generation_stream: bool = Field(default=True, description="Stream answers (live progress).")
    generation_response_format: Literal["json_schema", "json_object"] = Field(
        default="json_schema",
        description="json_object for servers without JSON-schema structured output.",
    )
    generation_max_tokens: int = Field(default=8000, ge=500, le=64_000)
    generation_offline_fallback: bool = Field(
        default=True, description="Serve the catalogue's roadmap when the provider is down."
    )

    # Billing (keel.roadmaps.billing) and daily usage limits (keel.roadmaps.usage).
    lemonsqueezy_signing_secret: SecretStr | None = Field(
        default=None,
        description="The webhook's signing secret (X-Signature). Unset: every webhook is refused.",
    )
    lemonsqueezy_api_key: SecretStr | None = Field(
        default=None,
        description="API key for re-checking a subscription whose renewal is overdue. Unset: "
        "local state only, a stale paid plan lasting billing_grace_hours past its end.",
    )
    lemonsqueezy_api_url: str = Field(default="https://api.lemonsqueezy.com")
    lemonsqueezy_checkout_url: str = Field(
        default="",
        pattern=r"^(https://\S+)?$",
        description="The Pro checkout link (https://<store>.lemonsqueezy.com/checkout/buy/…); "
        "empty hides the upgrade button.",
    )
    lemonsqueezy_variants: dict[str, str] = Field(
        default_factory=dict,
        description='Variant id -> plan, e.g. {"123456": "pro"}; an unmapped variant is free.',
    )
    plan_daily_limits: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {"free": {"generate": 3}, "pro": {"generate": 50}},
        description="Plan -> action -> uses per UTC day, cheapest plan first (the order ranks "
        "plans). Every plan lists the same actions; 'free' and 'pro' are required.",
    )
    billing_past_due_grace_hours: int = Field(
        default=168,
        ge=0,
        le=24 * 60,
        description="How long a past_due subscription keeps its plan (LemonSqueezy retries "
        "the payment meanwhile).",
    )
    billing_grace_hours: int = Field(
        default=72,
        ge=0,
        le=24 * 60,
        description="How long a paid plan outlives its confirmed end while LemonSqueezy cannot "
        "be asked (down, or no API key).",
    )

    @model_validator(mode="after")
    def _plans_are_consistent(self) -> Self:
        limits = self.plan_daily_limits
        if not {"free", "pro"} <= limits.keys():
            raise ValueError("plan_daily_limits needs the plans 'free' and 'pro'")
        actions = {frozenset(per_action) for per_action in limits.values()}
        if len(actions) != 1:
            raise ValueError("every plan in plan_daily_limits must list the same actions")
        if any(limit < 0 for per_action in limits.values() for limit in per_action.values()):
            raise ValueError("a daily limit cannot be negative")
        secret = self.lemonsqueezy_signing_secret
        if secret is not None and len(secret.get_secret_value().strip()) < 6:
            # LemonSqueezy asks for 6 to 40 characters; an empty key would let anyone sign.
            raise ValueError("lemonsqueezy_signing_secret needs at least 6 characters")
        if not self.lemonsqueezy_api_url.startswith(("https://", "http://")):
            raise ValueError("lemonsqueezy_api_url must be an http(s) URL")
        unknown = set(self.lemonsqueezy_variants.values()) - limits.keys()
        if unknown:
            raise ValueError(f"lemonsqueezy_variants names unknown plans: {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _replica_needs_postgres(self) -> Self:
        if self.replica_url:
            for name, url in (
                ("database_url", self.database_url),
                ("replica_url", self.replica_url),
            ):
                if not url or make_url(url).get_backend_name() != "postgresql":
                    raise ValueError(f"replica_url needs PostgreSQL for both; {name} is {url!r}")
        return self

    redis_url: str = Field(
        default="",
        description="redis://host:port/db of the primary Redis: cache, counters, locks, rate "
        "limits. Empty: this process's memory (the embedded default).",
    )
    redis_secondary_url: str = Field(
        default="",
        description="A second, independent Redis the cache fails over to (another provider, "
        "not a replica of the first). Needs redis_url.",
    )

    @model_validator(mode="after")
    def _redis_urls(self) -> Self:
        if self.redis_secondary_url and not self.redis_url:
            raise ValueError("redis_secondary_url needs redis_url")
        for url in (self.redis_url, self.redis_secondary_url):
            if url and not url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("Redis URLs start with redis://, rediss:// or unix://")
        return self
