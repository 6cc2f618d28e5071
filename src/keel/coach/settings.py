"""coach's settings (env prefix ``KEEL_COACH_``), validated at boot."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoachSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_COACH_", extra="ignore")

    database_url: str = Field(
        default="", description="SQLAlchemy async URL; empty means <data_dir>/coach.db"
    )
    public_url: str = Field(default="", description="Base URL Telegram and coinpay reach.")
    redis_url: str = Field(
        default="", description="Cache (risk scans) in Redis; empty: in this process."
    )
    redis_secondary_url: str = Field(
        default="", description="A second Redis the cache fails over to (keel.core.cache)."
    )

    # Telegram
    telegram_token: SecretStr | None = Field(
        default=None, description="The bot's token from @BotFather; unset: the bot is off."
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API server (a local telegram-bot-api server, or a fake in tests).",
    )
    mode: Literal["polling", "webhook"] = Field(
        default="polling",
        description="polling: `keel coach run` asks Telegram for updates; webhook: Telegram "
        "posts them to <public_url>/coach/telegram/webhook under `keel serve`.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Telegram's X-Telegram-Bot-Api-Secret-Token for webhook mode "
        "(1-256 of A-Z a-z 0-9 _ -). Unset: derived from the server key.",
    )
    telegram_calls_per_second: float = Field(
        default=30.0,
        gt=0,
        le=1000,
        description="The bot's calls a second across all chats (Telegram's limit is about "
        "30; paid broadcasts raise it).",
    )
    edit_interval_seconds: float = Field(
        default=1.0,
        ge=0.05,
        le=10,
        description="Least time between two edits of one chat's streaming reply.",
    )

    # Models (an OpenAI-compatible API; OpenRouter by default)
    llm_base_url: str = "https://openrouter.ai/api/v1"
    llm_api_key: SecretStr | None = None
    text_models: list[str] = Field(
        default=["deepseek/deepseek-chat", "meta-llama/llama-3.3-70b-instruct"],
        min_length=1,
        description="Text route: tried in order.",
    )
    vision_models: list[str] = Field(
        default=["google/gemini-2.5-flash"],
        description="Vision route (chart photos): tried in order, then the vision fallback.",
    )
    describe_models: list[str] = Field(
        default=["google/gemini-2.0-flash-lite-001"],
        description="Vision fallback: a cheap model describes the chart, then the text "
        "route reasons over the description.",
    )
    llm_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    llm_answer_timeout_seconds: float = Field(default=90.0, gt=0, le=1800)

    # Conversations
    history_messages: int = Field(default=10, ge=2, le=100)
    session_idle_minutes: int = Field(default=180, ge=1, le=10_080)
    daily_tokens_free: int = Field(default=20_000, ge=0)
    daily_tokens_pro: int = Field(default=200_000, ge=0)
    daily_scans_free: int = Field(default=5, ge=0)
    daily_scans_pro: int = Field(default=100, ge=0)

    # Risk radar (GoPlus)
    goplus_url: str = "https://api.gopluslabs.io"
    goplus_app_key: SecretStr | None = None
    goplus_app_secret: SecretStr | None = None
    risk_cache_seconds: int = Field(default=300, ge=0, le=86_400)
    watch_interval_seconds: int = Field(default=600, ge=10, le=86_400)
    goplus_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    watches_free: int = Field(default=3, ge=0, le=1000)
    watches_pro: int = Field(default=25, ge=0, le=1000)

    # Payments
    coinpay_url: str = Field(
        default="",
        description="coinpay's API root (…/coinpay/api). Empty: /subscribe offers direct "
        "payment only.",
    )
    coinpay_api_key: SecretStr | None = None
    coinpay_business_id: str = ""
    coinpay_webhook_secret: SecretStr | None = None
    price_usd: str = Field(default="10", description="Price of one subscription period.")
    price_eth: str = Field(
        default="", description="Direct payment in ETH: the price in ETH (empty: not offered)."
    )
    price_sol: str = Field(
        default="", description="Direct payment in SOL: the price in SOL (empty: not offered)."
    )
    period_days: int = Field(default=30, ge=1, le=366)
    eth_rpc_url: str = ""
    eth_chain_id: int = Field(
        default=1,
        ge=1,
        description="The chain eth_rpc_url must serve (1: Ethereum; a node on another chain is "
        "refused, so a testnet cannot pay a real invoice).",
    )
    etherscan_url: str = "https://api.etherscan.io/v2/api"
    etherscan_api_key: SecretStr | None = None
    solana_rpc_url: str = ""
    tronscan_url: str = "https://apilist.tronscanapi.com"
    tronscan_api_key: SecretStr | None = None
    eth_recipient: str = ""
    sol_recipient: str = ""
    tron_recipient: str = ""
    eth_confirmations: int = Field(default=12, ge=0, le=1000)
    run_workers: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.mode == "webhook" and not self.public_url.startswith("https://"):
            raise ValueError("webhook mode needs public_url, an https:// URL Telegram reaches")
        for name in ("price_usd", "price_eth", "price_sol"):
            value = getattr(self, name)
            if name != "price_usd" and not value:
                continue
            try:
                price = Decimal(value)
            except InvalidOperation:
                raise ValueError(f"{name} must be a decimal number, not {value!r}") from None
            if not price.is_finite() or price <= 0:
                raise ValueError(f"{name} must be positive")
        return self
