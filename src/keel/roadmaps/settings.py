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
    def _replica_needs_postgres(self) -> Self:
        if self.replica_url:
            for name, url in (
                ("database_url", self.database_url),
                ("replica_url", self.replica_url),
            ):
                if not url or make_url(url).get_backend_name() != "postgresql":
                    raise ValueError(f"replica_url needs PostgreSQL for both; {name} is {url!r}")
        return self
