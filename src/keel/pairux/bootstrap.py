"""Wire pairux once: the database, the server and TURN secrets, the store and the hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core import crypto, db, migrations
from keel.core.clock import Clock, SystemClock
from keel.pairux import rooms, sfu, tokens, turn
from keel.pairux.settings import PairuxSettings
from keel.pairux.signaling.hub import Hub
from keel.pairux.store import RoomStore

MIGRATIONS = "keel.pairux:migrations"
VERSION_TABLE = "pairux_alembic_version"
SERVER_KEY_FILE = "pairux-server.key"
TURN_KEY_FILE = "pairux-turn.key"


def database_url(configured: str, data_dir: str = "var") -> str:
    return configured or f"sqlite+aiosqlite:///{data_dir}/pairux.db"


async def open_database(url: str) -> AsyncEngine:
    """An engine on ``url`` with the schema migrated to head."""
    engine = db.create_engine(url)
    await migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE)
    return engine


def server_secret(settings: PairuxSettings, data_dir: str) -> bytes:
    if settings.server_secret is not None:
        return crypto.parse_key(settings.server_secret.get_secret_value())
    return crypto.parse_key(crypto.shared_key_file(Path(data_dir) / SERVER_KEY_FILE))


def turn_secret(settings: PairuxSettings, data_dir: str) -> bytes:
    """coturn's ``static-auth-secret``, as the bytes both sides key HMAC-SHA1 with."""
    if settings.turn_secret is not None:
        return settings.turn_secret.get_secret_value().encode()
    return crypto.shared_key_file(Path(data_dir) / TURN_KEY_FILE).encode()


def capacity(settings: PairuxSettings) -> rooms.Capacity:
    return rooms.Capacity(
        max_controllers=settings.max_controllers,
        p2p_max_viewers=settings.p2p_max_viewers,
        sfu_threshold_viewers=settings.sfu_threshold_viewers,
        sfu_max_viewers=settings.sfu_max_viewers,
        sfu_available=settings.livekit_enabled,
    )


def turn_config(settings: PairuxSettings, data_dir: str) -> turn.TurnConfig:
    return turn.TurnConfig(
        host=settings.turn_host,
        port=settings.turn_port,
        tls_port=settings.turns_port,
        tls=settings.turn_tls,
        secret=turn_secret(settings, data_dir) if settings.turn_host else b"",
        ttl_seconds=settings.turn_ttl_seconds,
    )


def livekit_config(settings: PairuxSettings) -> sfu.LiveKitConfig | None:
    if not settings.livekit_enabled or settings.livekit_api_secret is None:
        return None
    return sfu.LiveKitConfig(
        url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        ttl_seconds=settings.livekit_token_ttl_seconds,
    )


@dataclass(frozen=True)
class Pairux:
    """What the app and the CLI work with."""

    settings: PairuxSettings
    engine: AsyncEngine
    store: RoomStore
    hub: Hub
    keys: tokens.Keys
    clock: Clock


async def open_pairux(
    settings: PairuxSettings, *, data_dir: str = "var", clock: Clock | None = None
) -> Pairux:
    engine = await open_database(database_url(settings.database_url, data_dir))
    clock = clock or SystemClock()
    keys = tokens.Keys.derive(server_secret(settings, data_dir))
    store = RoomStore(engine, keys, clock, capacity(settings))
    hub = Hub(store, settings, turn_config(settings, data_dir), livekit_config(settings))
    return Pairux(settings, engine, store, hub, keys, clock)
