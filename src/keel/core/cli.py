"""What every product's command line shares: one-line errors with exit code 2, ``--json``,
running async work against an opened product, and stopping long work on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer

from keel.core import logging as keel_logging
from keel.core.errors import KeelError

T = TypeVar("T")
R = TypeVar("R")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def fail(message: str) -> NoReturn:
    """One line on stderr, exit code 2: what the CLI does with bad input."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def stop_on_signals() -> asyncio.Event:
    """An event that Ctrl-C or SIGTERM sets, so long-running commands stop cleanly (call it
    inside the running event loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _client_error(exc: KeelError) -> bool:
    return exc.status < 500


def run(
    open_product: Callable[[], Awaitable[R]],
    close_product: Callable[[R], Awaitable[None]],
    work: Callable[[R], Awaitable[T]],
    *,
    reported: Callable[[KeelError], bool] = _client_error,
) -> T:
    """Open the product, run ``work`` on it, close it. A KeelError that ``reported`` accepts
    (by default any 4xx) becomes :func:`fail`'s one line; anything else propagates."""
    keel_logging.configure("WARNING", json=False)

    async def main() -> T:
        product = await open_product()
        try:
            return await work(product)
        finally:
            await close_product(product)

    try:
        return asyncio.run(main())
    except KeelError as exc:
        if not reported(exc):
            raise
        fail(exc.detail)
