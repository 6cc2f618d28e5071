"""Settings every product shares. Each product extends :class:`KeelSettings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def sqlite_url(self, product: str) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / f'{product}.db'}"
