"""pairux's settings (env prefix ``KEEL_PAIRUX_``), validated at boot."""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$")


class PairuxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_PAIRUX_", extra="ignore")

    database_url: str = Field(
        default="", description="SQLAlchemy async URL; empty means <data_dir>/pairux.db"
    )
    public_url: str = Field(
        default="",
        description="Base URL people reach (e.g. https://keel.example), for invite links; "
        "empty: links are relative (/pairux/join#invite=…).",
    )
    server_secret: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 bytes that signs invite links and keys token hashes; every "
        "process serving one database needs the same. Unset: <data_dir>/pairux-server.key, "
        "created once.",
    )
    # Rooms and roles.
    max_controllers: int = Field(default=3, ge=0, le=10, description="Controllers a room.")
    p2p_max_viewers: int = Field(
        default=25,
        ge=1,
        le=100,
        description="Viewers (controllers included) a P2P room takes: the host's encode-once "
        "fan-out sends one stream per viewer from its own uplink (ADR 0026).",
    )
    sfu_threshold_viewers: int = Field(
        default=10,
        ge=1,
        le=100,
        description="With LiveKit configured, a room moves to the SFU when a join would take "
        "it past this many viewers (ADR 0026).",
    )
    sfu_max_viewers: int = Field(default=200, ge=1, le=10_000, description="Viewers on the SFU.")
    host_grace_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a disconnected host keeps the room before "
        "it passes to another participant.",
    )
    reconnect_grace_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a disconnected participant may resume with "
        "its token before it is gone.",
    )
    invite_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=30 * 86_400)
    display_name_max: int = Field(default=64, ge=8, le=200)
    # Brute-force limits on join codes and room creation (core's rate limiter).
    join_failures_per_ip: int = Field(
        default=10, ge=1, description="Failed code joins a window from one address (IPv6: /64)."
    )
    join_failures_global: int = Field(
        default=1000, ge=1, description="Failed code joins a window from everyone together."
    )
    rooms_per_ip: int = Field(default=30, ge=1, description="Rooms created a window per address.")
    rate_limit_window_seconds: int = Field(default=600, ge=1, le=86_400)
    # Signaling.
    hello_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    heartbeat_interval_seconds: float = Field(default=15.0, gt=0, le=300)
    heartbeat_timeout_seconds: float = Field(
        default=45.0, gt=0, le=900, description="Silent this long: the connection is closed."
    )
    message_max_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    messages_per_second: float = Field(default=50.0, gt=0, description="Sustained, per sender.")
    message_burst: int = Field(default=100, ge=1, description="Messages a sender may burst.")
    bytes_per_second: int = Field(default=64 * 1024, ge=1024, description="Sustained, per sender.")
    byte_burst: int = Field(default=256 * 1024, ge=1024)
    rate_limit_strikes: int = Field(
        default=20,
        ge=1,
        description="Messages refused within 5 s before the connection is closed with 4429.",
    )
    outbox_max_messages: int = Field(
        default=512, ge=8, description="Messages queued for one slow receiver before it is dropped."
    )
    # TURN/STUN (coturn use-auth-secret).
    turn_host: str = Field(
        default="", description="Host name of the coturn server; empty: no TURN/STUN offered."
    )
    turn_port: int = Field(default=3478, ge=1, le=65535)
    turns_port: int = Field(default=5349, ge=1, le=65535, description="TURN over TLS.")
    turn_tls: bool = Field(default=True, description="Offer turns: (coturn has a certificate).")
    turn_secret: SecretStr | None = Field(
        default=None,
        description="coturn's static-auth-secret. Unset: <data_dir>/pairux-turn.key, created "
        "once; copy it into coturn's configuration.",
    )
    turn_ttl_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 86_400,
        description="Lifetime of issued TURN credentials (an allocation refreshes past it only "
        "while the credential is valid; a reconnect fetches a new one with its welcome).",
    )
    # LiveKit (optional): rooms past the threshold move there.
    livekit_url: str = Field(default="", description="wss:// URL clients connect to.")
    livekit_api_key: str = Field(default="")
    livekit_api_secret: SecretStr | None = None
    livekit_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)

    @field_validator("turn_host")
    @classmethod
    def _turn_host(cls, value: str) -> str:
        if value and not _HOST.match(value):
            raise ValueError("turn_host must be a host name or an IP address (no scheme/port)")
        return value

    @field_validator("livekit_url")
    @classmethod
    def _livekit_url(cls, value: str) -> str:
        if value and not re.match(r"^(wss|ws|https|http)://[^\s]+$", value):
            raise ValueError("livekit_url must be a ws(s):// or http(s):// URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.livekit_url and not (self.livekit_api_key and self.livekit_api_secret):
            raise ValueError("livekit_url needs livekit_api_key and livekit_api_secret")
        if self.heartbeat_timeout_seconds <= self.heartbeat_interval_seconds:
            raise ValueError("heartbeat_timeout_seconds must exceed heartbeat_interval_seconds")
        if self.sfu_threshold_viewers > self.p2p_max_viewers:
            raise ValueError("sfu_threshold_viewers must not exceed p2p_max_viewers")
        return self

    @property
    def livekit_enabled(self) -> bool:
        return bool(self.livekit_url and self.livekit_api_key and self.livekit_api_secret)
