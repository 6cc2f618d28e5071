"""`keel bittorrented …`: import, search and inspect the index from a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from keel.bittorrented import bootstrap, workers
from keel.bittorrented.catalog import bulk, presentation
from keel.bittorrented.dht import runtime as peers
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.ingest import bitmagnet_db as bitmagnet
from keel.bittorrented.ingest import crawl as crawling
from keel.bittorrented.ingest import jsonlines as importer
from keel.bittorrented.settings import BittorrentedSettings
from keel.core import cli
from keel.core.cli import JsonOpt, fail
from keel.core.settings import KeelSettings

app = typer.Typer(help="bittorrented: torrent metadata index.", no_args_is_help=True)

T = TypeVar("T")
IMPORT_BATCH = 5000


def _run(
    work: Callable[[Indexer], Awaitable[T]], settings: BittorrentedSettings | None = None
) -> T:
    data_dir = str(KeelSettings().data_dir)

    async def close(index: Indexer) -> None:
        await index.engine.dispose()

    return cli.run(
        lambda: bootstrap.open_indexer(settings or BittorrentedSettings(), data_dir=data_dir),
        close,
        work,
    )


@app.command("import")
def import_lines(
    file: Annotated[Path, typer.Argument(help="bitmagnet import JSON lines; '-' for stdin.")],
    source: Annotated[str, typer.Option(help="Source key for lines that name none.")] = "import",
    as_json: JsonOpt = False,
) -> None:
    """Import torrents from bitmagnet's JSON-lines format, with a progress bar. A bad line is
    reported with its line number and skipped; the good ones are kept. Ctrl-C stops after the
    batch being written; running the same import again stores only what is missing. Exit code
    0 when every line was good, 1 when some were skipped."""
    if str(file) != "-" and not file.is_file():
        fail(f"no such file: {file}")

    def report(bad: importer.BadLine) -> None:
        typer.echo(f"line {bad.line_number}: {bad.reason} (skipped)", err=True)

    async def work(index: Indexer) -> tuple[bulk.LoadResult, int]:
        stream = sys.stdin.buffer if str(file) == "-" else file.open("rb")
        total_bytes = None if str(file) == "-" else file.stat().st_size
        reader = importer.Reader(stream, on_bad=report, default_source=source)
        with (
            stream,
            Progress(
                TextColumn("importing"),
                BarColumn(),
                TextColumn("{task.fields[rows]} rows, {task.fields[bad]} bad"),
                TimeElapsedColumn(),
                transient=as_json,
                disable=as_json,
                console=None,
            ) as progress,
        ):
            task = progress.add_task("import", total=total_bytes, rows=0, bad=0)
            rows = 0

            def advance(n: int) -> None:
                nonlocal rows
                rows += n
                progress.update(task, completed=reader.position, rows=rows, bad=reader.bad)

            result = await index.ingest(
                reader, batch_size=IMPORT_BATCH, progress=advance, stop=cli.stop_on_signals()
            )
            progress.update(task, completed=reader.position, rows=rows, bad=reader.bad)
        return result, reader.bad

    result, bad = _run(work)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "read": result.entries,
                    "added": result.new,
                    "bad_lines": bad,
                    "interrupted": result.stopped,
                }
            )
        )
    else:
        typer.echo(f"read {result.entries} torrents, {result.new} new, {bad} bad lines skipped")
    if result.stopped:
        typer.echo("interrupted: run the same import again to finish it", err=True)
        raise typer.Exit(130)
    if bad:
        raise typer.Exit(1)


@app.command()
def crawl(
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="DHT port.")] = None,
) -> None:
    """Crawl the DHT (BEP 51 sampling, get_peers, metadata from peers) into the index until
    Ctrl-C; the last batch is written and the seen filter saved on the way out."""
    settings = BittorrentedSettings()
    if port is not None:
        settings = settings.model_copy(update={"dht_port": port})

    async def work(index: Indexer) -> None:
        swarm = peers.swarm_for(settings)
        stop = cli.stop_on_signals()
        typer.echo(f"crawling the DHT on port {swarm.settings.listen_port}; Ctrl-C stops", err=True)
        try:
            await crawling.crawl_until(index, swarm, stop)
        finally:
            await swarm.aclose()

    _run(work, settings)


@app.command()
def worker() -> None:
    """Run only the background workers (swarm refresh; the crawl too when
    KEEL_BITTORRENTED_CRAWL=true) until Ctrl-C, without the API."""
    settings = BittorrentedSettings()

    async def work(index: Indexer) -> None:
        swarm = peers.swarm_for(settings)
        stop = cli.stop_on_signals()
        try:
            async with workers.running(index, swarm):
                await stop.wait()
        finally:
            await swarm.aclose()

    try:
        _run(work, settings)
    except ValueError as exc:
        fail(str(exc))


@app.command("import-bitmagnet")
def import_bitmagnet(
    source_url: Annotated[
        str, typer.Argument(help="bitmagnet's PostgreSQL, e.g. postgresql://user@host/bitmagnet")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Copy every torrent (with files and seeders) from an existing bitmagnet database."""
    url = _async_postgres_url(source_url)

    async def work(index: Indexer) -> tuple[int, int]:
        seen = added = 0
        with Progress(
            TextColumn("importing from bitmagnet"),
            TextColumn("{task.completed} rows"),
            TimeElapsedColumn(),
            disable=as_json,
        ) as progress:
            task = progress.add_task("bitmagnet", total=None)
            async for batch in bitmagnet.read(
                url, batch=IMPORT_BATCH, max_files=index.settings.max_files
            ):
                result = await index.ingest(batch, batch_size=IMPORT_BATCH)
                added += result.new
                seen += result.entries
                progress.update(task, completed=seen)
        return seen, added

    seen, added = _run(work)
    if as_json:
        typer.echo(json.dumps({"read": seen, "added": added}))
    else:
        typer.echo(f"read {seen} torrents from bitmagnet, {added} new")


def _async_postgres_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        fail("the bitmagnet database must be a postgresql:// URL")
    return f"postgresql+asyncpg://{rest}"


@app.command()
def search(
    q: Annotated[str, typer.Argument(help="Query, e.g. 'dune 2021 -cam'.")],
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Search the index from the terminal."""

    async def work(index: Indexer) -> dict[str, object]:
        page = await index.search(q, limit=limit)
        return {
            "total": page.total,
            "total_is_estimate": page.total_is_estimate,
            "results": [presentation.hit(h) for h in page.hits],
        }

    reply = _run(work)
    if as_json:
        typer.echo(json.dumps(reply))
        return
    for hit in reply["results"]:  # type: ignore[attr-defined]
        typer.echo(f"{hit['info_hash']}  {hit['seeders']:>6}  {hit['name']}")
    more = "+" if reply["total_is_estimate"] else ""
    typer.echo(f"{reply['total']}{more} matches")
