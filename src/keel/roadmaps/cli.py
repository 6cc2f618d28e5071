"""`keel roadmaps ...`: manage the learning platform."""

from __future__ import annotations

import typer

app = typer.Typer(help="roadmaps: personalised learning roadmaps.", no_args_is_help=True)


@app.command()
def migrate() -> None:
    """Create or upgrade the roadmaps database to the current schema."""
    import asyncio

    from keel.core.settings import KeelSettings
    from keel.roadmaps import bootstrap
    from keel.roadmaps.settings import RoadmapsSettings

    async def run() -> None:
        core = KeelSettings()
        settings = RoadmapsSettings()
        engine = await bootstrap.open_database(
            bootstrap.database_url(settings.database_url, str(core.data_dir))
        )
        await engine.dispose()

    asyncio.run(run())
    typer.echo("roadmaps: database at the current schema")
