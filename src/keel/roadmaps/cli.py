"""`keel roadmaps ...`: manage the learning platform."""

from __future__ import annotations

import asyncio
import sys

import typer

from keel.core import cli
from keel.core import logging as keel_logging
from keel.core.settings import KeelSettings
from keel.roadmaps import bootstrap
from keel.roadmaps.settings import RoadmapsSettings

app = typer.Typer(help="roadmaps: personalised learning roadmaps.", no_args_is_help=True)


@app.command()
def migrate() -> None:
    """Create or upgrade the roadmaps database to the current schema."""

    async def run() -> None:
        core = KeelSettings()
        settings = RoadmapsSettings()
        engine = await bootstrap.open_database(
            bootstrap.database_url(settings.database_url, str(core.data_dir))
        )
        await engine.dispose()

    asyncio.run(run())
    typer.echo("roadmaps: database at the current schema")


@app.command()
def worker() -> None:
    """Run only roadmaps' workers (generation jobs, the /discover refresh), beside API
    processes started with KEEL_ROADMAPS_RUN_WORKERS=false."""
    keel_logging.configure("INFO")
    core = KeelSettings()

    async def main() -> None:
        wired = await bootstrap.open_roadmaps(RoadmapsSettings(), data_dir=str(core.data_dir))
        stop = cli.stop_on_signals()
        try:
            await wired.build_worker().run(stop)
        finally:
            await wired.close()

    asyncio.run(main())
    sys.exit(0)
