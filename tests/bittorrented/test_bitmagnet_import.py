"""An existing bitmagnet database moves over: torrents, files and seeders, in batches."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from keel.cli import app
from tests.conftest import POSTGRES_URL, _admin, need_service

# bitmagnet's core tables as its migrations create them (the columns we read, plus some we
# ignore, so the importer proves it selects by name).
BITMAGNET_DDL = """
CREATE TABLE torrent_sources (key text PRIMARY KEY, name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE torrents (info_hash bytea PRIMARY KEY, name text NOT NULL, size bigint NOT NULL,
  private boolean NOT NULL, files_status text NOT NULL DEFAULT 'single', files_count integer,
  extension text, piece_length bigint, created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL);
CREATE TABLE torrent_files (info_hash bytea NOT NULL REFERENCES torrents ON DELETE CASCADE,
  index integer NOT NULL, path text NOT NULL, size bigint NOT NULL, extension text,
  created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  PRIMARY KEY (info_hash, index));
CREATE TABLE torrents_torrent_sources (source text NOT NULL REFERENCES torrent_sources,
  info_hash bytea NOT NULL REFERENCES torrents ON DELETE CASCADE, import_id text,
  seeders integer, leechers integer, published_at timestamptz,
  created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  PRIMARY KEY (source, info_hash));
"""


@pytest.fixture
async def bitmagnet_url() -> AsyncIterator[str]:
    if not POSTGRES_URL:
        need_service("KEEL_TEST_POSTGRES_URL")
    name = f"keel_bitmagnet_{uuid.uuid4().hex[:10]}"
    admin = await _admin(POSTGRES_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = make_url(POSTGRES_URL).set(database=name, drivername="postgresql")
    conn = await _admin(str(url))
    try:
        await conn.execute(BITMAGNET_DDL)
        await conn.execute("INSERT INTO torrent_sources (key, name) VALUES ('dht', 'DHT')")
        for i in range(1100):  # more than one batch of 1000
            ih = i.to_bytes(20, "big")
            await conn.execute(
                "INSERT INTO torrents VALUES ($1, $2, $3, false, 'multi', 2, NULL, 16384, "
                "now(), now())",
                ih,
                f"Crawled.Release.{i}.1080p-GRP" if i % 2 else f"Other.Thing.{i}",
                1000 + i,
            )
            if i < 3:
                for index in range(2):
                    await conn.execute(
                        "INSERT INTO torrent_files VALUES ($1, $2, $3, 10, NULL, now(), now())",
                        ih,
                        index,
                        f"dir/file{index}.mkv",
                    )
            if i % 10 == 1:
                await conn.execute(
                    "INSERT INTO torrents_torrent_sources VALUES ('dht', $1, NULL, $2, 3, "
                    "'2024-01-01', now(), now())",
                    ih,
                    i,
                )
    finally:
        await conn.close()
    yield url.render_as_string(hide_password=False)
    admin = await _admin(POSTGRES_URL)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def test_every_bitmagnet_torrent_arrives_with_files_and_seeders(
    bitmagnet_url: str, tmp_path: Path
) -> None:
    env = {"KEEL_DATA_DIR": str(tmp_path / "var"), "KEEL_BITTORRENTED_DATABASE_URL": ""}
    runner = CliRunner()
    result = runner.invoke(
        app, ["bittorrented", "import-bitmagnet", bitmagnet_url, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"read": 1100, "added": 1100}
    found = runner.invoke(
        app, ["bittorrented", "search", "crawled 1080p", "--json", "--limit", "3"], env=env
    )
    reply = json.loads(found.stdout)
    assert reply["total"] == 550
    # Sorted by relevance: same token count, so the most seeders first.
    assert reply["results"][0]["name"] == "Crawled.Release.1091.1080p-GRP"
    assert reply["results"][0]["seeders"] == 1091


def test_a_non_postgres_source_is_refused_with_one_line(tmp_path: Path) -> None:
    env = {"KEEL_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(app, ["bittorrented", "import-bitmagnet", "mysql://x/y"], env=env)
    assert result.exit_code == 2
    assert "postgresql://" in result.stderr
