"""bittorrented's settings (env prefix ``KEEL_BITTORRENTED_``), validated at boot."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BittorrentedSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_BITTORRENTED_", extra="ignore")

    database_url: str = Field(
        default="", description="SQLAlchemy async URL; empty means <data_dir>/bittorrented.db"
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="When set, uploads, deletes and Torznab need it (header X-Api-Key or "
        "?apikey=); searching the JSON API and the page stay open.",
    )
    public_url: str = Field(default="", description="Base URL clients reach, for feed links.")
    search_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    count_cap: int = Field(
        default=10_000, ge=100, description="Count exactly up to this many matches."
    )
    max_files: int = Field(default=1000, ge=1, le=100_000, description="Files kept per torrent.")
    max_torrent_bytes: int = Field(default=10 * 2**20, ge=1024)
    metadata_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    banned_keywords_file: Path | None = Field(
        default=None, description="One banned keyword or phrase per line (crawler and uploads)."
    )
