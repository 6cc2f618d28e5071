"""`keel coach ...`: run and manage the Telegram bot."""

from __future__ import annotations

import asyncio

import typer
from pydantic import ValidationError

from keel.coach import bootstrap, workers
from keel.coach.bot.runner import BotRunner
from keel.coach.settings import CoachSettings
from keel.core import cli
from keel.core import logging as keel_logging
from keel.core.settings import KeelSettings

app = typer.Typer(help="coach: the Telegram trading-psychology bot.", no_args_is_help=True)


def _settings() -> CoachSettings:
    try:
        return CoachSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(f"error: invalid settings: {first['loc']}: {first['msg']}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def migrate() -> None:
    """Create or upgrade the coach database to the current schema."""

    async def run() -> None:
        core = KeelSettings()
        engine = await bootstrap.open_database(
            bootstrap.database_url(_settings().database_url, str(core.data_dir))
        )
        await engine.dispose()

    asyncio.run(run())
    typer.echo("coach: database at the current schema")


@app.command()
def run() -> None:
    """Run the bot by long polling (and its workers) until interrupted. Webhook mode and
    coinpay's webhook need the HTTP server: `keel serve coach`."""
    settings = _settings()
    if settings.telegram_token is None:
        typer.echo("error: KEEL_COACH_TELEGRAM_TOKEN is not set (the bot's token)", err=True)
        raise typer.Exit(2)
    if settings.mode != "polling":
        typer.echo("error: `keel coach run` polls; webhook mode runs under `keel serve`", err=True)
        raise typer.Exit(2)
    keel_logging.configure("INFO")
    core = KeelSettings()
    token = settings.telegram_token

    async def main() -> None:
        wired = await bootstrap.open_coach(settings, data_dir=str(core.data_dir))
        runner = BotRunner(wired.coach, wired.paying, settings, token)
        wired.notify = runner.notify_unlocked
        stop = cli.stop_on_signals()
        try:
            await runner.prepare()
            typer.echo("coach: polling Telegram; Ctrl-C stops", err=True)
            background = [
                asyncio.create_task(runner.watch(wired.watches, wired.clock, stop)),
                asyncio.create_task(workers.reconcile_payments(wired, stop)),
            ]
            await runner.poll(stop)
            stop.set()
            await asyncio.gather(*background)
        finally:
            await runner.close()
            await wired.close()

    asyncio.run(main())
