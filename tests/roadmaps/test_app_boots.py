"""roadmaps boots on the embedded default (SQLite, migrated) and answers its readiness probe."""

from __future__ import annotations

from pathlib import Path

from keel.roadmaps.app import create_app
from keel.roadmaps.settings import RoadmapsSettings


async def test_the_product_migrates_and_is_ready(tmp_path: Path) -> None:
    product = create_app(RoadmapsSettings(), data_dir=str(tmp_path))
    async with product.lifespan():
        assert await product.ready()
    assert (tmp_path / "roadmaps.db").exists()
    assert (tmp_path / "roadmaps-server.key").stat().st_mode & 0o077 == 0
