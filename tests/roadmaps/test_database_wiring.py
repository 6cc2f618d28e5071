"""roadmaps' database from its settings: a streaming replica only beside a PostgreSQL primary,
and the statement timeout on every session of both."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from keel.roadmaps import bootstrap
from keel.roadmaps.settings import RoadmapsSettings
from tests import pg_cluster


def test_a_replica_beside_the_embedded_database_is_refused_at_boot() -> None:
    with pytest.raises(ValidationError, match="replica_url needs PostgreSQL"):
        RoadmapsSettings(replica_url="postgresql+asyncpg://postgres@127.0.0.1:5434/roadmaps")


async def test_the_replica_and_the_statement_timeout_are_wired(tmp_path: Path) -> None:
    async with pg_cluster.replicated_database() as replicated:
        settings = RoadmapsSettings(
            database_url=replicated.primary_url,
            replica_url=replicated.replica_url,
            statement_timeout_ms=1500,
        )
        wired = await bootstrap.open_roadmaps(settings, data_dir=str(tmp_path))
        try:
            assert wired.database.replica is not None
            async with wired.database.reading() as conn:
                on_primary = await conn.scalar(text("SHOW statement_timeout"))
            async with wired.database.replica.connect() as conn:
                on_replica = await conn.scalar(text("SHOW statement_timeout"))
        finally:
            await wired.database.dispose()
    assert on_primary == on_replica == "1500ms"
