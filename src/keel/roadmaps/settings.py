"""roadmaps' settings (env prefix ``KEEL_ROADMAPS_``), validated at boot."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
