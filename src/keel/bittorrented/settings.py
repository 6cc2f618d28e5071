"""bittorrented's settings (env prefix ``KEEL_BITTORRENTED_``), validated at boot."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keel.core import crypto

_ENDPOINT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
_TRACKER = re.compile(r"^(udp|http|https)://[^\s/]+", re.IGNORECASE)


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
    cursor_secret: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 bytes that signs page cursors; every process serving one "
        "index needs the same. Unset: <data_dir>/bittorrented-cursor.key, created once.",
    )
    rate_limit_search: int = Field(
        default=120,
        ge=1,
        description="Searches a window per client (JSON search, file search, the page); a "
        "client is the API key when a valid one is sent, else its IP (IPv6: its /64).",
    )
    rate_limit_torznab: int = Field(default=60, ge=1, description="Torznab calls a window.")
    rate_limit_uploads: int = Field(
        default=30, ge=1, description=".torrent uploads and magnets a window per client."
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=86_400)
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
    swarm_default_trackers: list[str] = Field(
        default_factory=list,
        description="Tracker announce URLs (udp:// or http(s)://) scraped for every torrent, "
        "besides the ones its magnet named; JSON list in the environment.",
    )
    swarm_dht_nodes: list[str] = Field(
        default_factory=list,
        description="host:port DHT nodes where BEP 33 scrape lookups start, e.g. "
        '["router.bittorrent.com:6881", "dht.libtorrent.org:25401"]; empty: no DHT scrapes.',
    )
    swarm_allow_private: bool = Field(
        default=False,
        description="Let scrapes reach private/loopback/link-local addresses (tests and labs "
        "only: tracker URLs come from users' magnets).",
    )
    swarm_batch_size: int = Field(default=200, ge=1, le=10_000, description="Torrents a round.")
    swarm_interval_seconds: float = Field(default=300.0, gt=0, description="Between rounds.")
    swarm_rescrape_after_seconds: float = Field(
        default=6 * 3600.0, ge=0, description="A torrent scraped more recently waits."
    )
    swarm_timeout_seconds: float = Field(
        default=4.0, gt=0, le=60, description="One tracker exchange, retries included."
    )
    swarm_max_trackers_per_torrent: int = Field(default=5, ge=1, le=20)
    dht_listen_host: str = Field(
        default="0.0.0.0", description="Where the libtorrent session listens (crawl, magnets)."
    )
    dht_port: int = Field(default=3334, ge=0, le=65535, description="bitmagnet's DHT port.")
    dht_bootstrap: bool = Field(
        default=True, description="Join the public DHT through the well-known routers."
    )
    dht_nodes: list[str] = Field(
        default_factory=list, description="Extra host:port DHT nodes to join through."
    )
    dht_allow_private: bool = Field(
        default=False,
        description="Let the crawler query DHT nodes at private or loopback addresses (labs).",
    )
    run_workers: bool = Field(
        default=True, description="Run the swarm refresh (and crawl) beside the API."
    )
    crawl_batch_size: int = Field(default=1000, ge=1, le=100_000, description="Rows a write.")
    crawl_flush_seconds: float = Field(default=60.0, gt=0, description="Longest wait to write.")
    crawl: bool = Field(
        default=False,
        description="Run the DHT crawler inside `keel serve` (else: `keel bittorrented crawl`).",
    )

    @field_validator("cursor_secret")
    @classmethod
    def _cursor_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                crypto.parse_key(value.get_secret_value())
            except crypto.InvalidKey as exc:
                raise ValueError("cursor_secret must be base64 of exactly 32 bytes") from exc
        return value

    @field_validator("dht_nodes", "swarm_dht_nodes")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for item in value:
            match = _ENDPOINT.match(item.strip())
            if match is None or not 0 < int(match.group(2)) < 65536:
                raise ValueError(f"expected host:port, got {item!r}")
        return value

    @field_validator("swarm_default_trackers")
    @classmethod
    def _trackers(cls, value: list[str]) -> list[str]:
        bad = [url for url in value if not _TRACKER.match(url.strip())]
        if bad:
            raise ValueError(f"trackers must be udp://, http:// or https:// URLs: {bad}")
        return value
