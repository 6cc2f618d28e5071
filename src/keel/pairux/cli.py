"""`keel pairux …`: accounts and rooms from a terminal."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, cast

import typer

from keel.core import cli
from keel.core.cli import JsonOpt, fail
from keel.core.settings import KeelSettings
from keel.pairux import bootstrap
from keel.pairux.bootstrap import Pairux
from keel.pairux.settings import PairuxSettings

app = typer.Typer(help="pairux: screen sharing with remote control.", no_args_is_help=True)
accounts = typer.Typer(help="Accounts (hosts and participants with a name of record).")
rooms = typer.Typer(help="Rooms.")
app.add_typer(accounts, name="account")
app.add_typer(rooms, name="rooms")

T = TypeVar("T")


def _run(work: Callable[[Pairux], Awaitable[T]]) -> T:
    data_dir = str(KeelSettings().data_dir)

    async def close(wired: Pairux) -> None:
        await wired.engine.dispose()

    return cli.run(lambda: bootstrap.open_pairux(PairuxSettings(), data_dir=data_dir), close, work)


@accounts.command("add")
def add_account(
    name: Annotated[str, typer.Argument(help="Who the account is (shown to the room).")],
    as_json: JsonOpt = False,
) -> None:
    """Create an account and print its key once (pxa_…): send it as the bearer when creating
    or joining a room to do so as this account."""
    if not name.strip() or len(name) > 200:
        fail("the name must be 1 to 200 characters")

    async def work(wired: Pairux) -> tuple[str, str]:
        account, key = await wired.store.create_account(name.strip())
        return account.id, key

    account_id, key = _run(work)
    if as_json:
        typer.echo(json.dumps({"id": account_id, "name": name.strip(), "key": key}))
    else:
        typer.echo(f"account {account_id}\nkey (shown once): {key}")


@rooms.command("list")
def list_rooms(as_json: JsonOpt = False) -> None:
    """The live rooms: id, topology, when created (codes are the hosts' to share)."""

    async def work(wired: Pairux) -> list[dict[str, str]]:
        return [
            {"id": r.id, "topology": r.topology.value, "created_at": r.created_at.isoformat()}
            for r in await wired.store.live_rooms()
        ]

    found = _run(work)
    if as_json:
        typer.echo(json.dumps(found))
        return
    for room in found:
        typer.echo(f"{room['id']}  {room['topology']}  {room['created_at']}")
    if not found:
        typer.echo("no live rooms")


@rooms.command("end")
def end_room(room_id: Annotated[str, typer.Argument(help="The room's id.")]) -> None:
    """End a live room (an operator's stop; its connections close when the server notices)."""

    async def work(wired: Pairux) -> bool:
        return await wired.store.end_room(room_id)

    if not _run(work):
        fail(f"no live room {room_id!r}")
    typer.echo(f"ended {room_id}")


@app.command("host")
def host(
    room: Annotated[
        str | None,
        typer.Option(
            help="Join this room by code and share once its host hands it over; "
            "without it a new room is created and its code printed."
        ),
    ] = None,
    server: Annotated[
        str, typer.Option(help="The Keel server's base URL.", envvar="KEEL_PAIRUX_SERVER")
    ] = "http://127.0.0.1:8000",
    name: Annotated[str, typer.Option(help="The name the room sees.")] = "Host",
    display: Annotated[
        str | None, typer.Option(help="X display to share (default: $DISPLAY).")
    ] = None,
    fps: Annotated[int | None, typer.Option(min=1, max=60, help="Frames/s cap.")] = None,
    max_quality: Annotated[
        str, typer.Option(help="Top of the quality ladder: low, poor, good or high.")
    ] = "high",
    grant: Annotated[
        str,
        typer.Option(help="Control requests: ask (a y/n prompt here), all (allow), none (refuse)."),
    ] = "ask",
    grant_minutes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=24 * 60,
            help="Grant control for this long; a minute before it lapses you are asked to "
            "extend it (as --grant decides). Default: until revoked.",
        ),
    ] = None,
    codec: Annotated[str, typer.Option(help="vp8 or h264.")] = "vp8",
    account_key: Annotated[
        str | None,
        typer.Option(
            envvar="KEEL_PAIRUX_ACCOUNT_KEY",
            help="Host as this account (pxa_…); read from the environment, not the command line.",
            show_default=False,
        ),
    ] = None,
    audit: Annotated[
        bool, typer.Option(help="Keep the signed audit log under the data directory.")
    ] = True,
) -> None:
    """Share this X display in a room; viewers join with its code.

    Control is granted here, never by the server.

    Emergency revoke: Ctrl+Alt+Shift+Escape on the shared display,
    or kill -USR1 <pid>. Every grant ends and every key and button
    held remotely is released. Ctrl+C leaves the room."""
    import asyncio
    import os
    import signal
    from pathlib import Path

    from keel.pairux.host import agent as host_agent

    if grant not in ("ask", "all", "none"):
        fail("--grant is ask, all or none")
    if codec not in ("vp8", "h264"):
        fail("--codec is vp8 or h264")
    from keel.pairux.host.media import ladder

    rungs = [rung.name for rung in ladder.LADDER]
    if max_quality not in rungs:
        fail(f"--max-quality is one of {', '.join(rungs)}")
    options = host_agent.AgentOptions(
        server=server,
        name=name,
        room_code=room,
        display=display or os.environ.get("DISPLAY"),
        fps=fps,
        max_rung=rungs.index(max_quality),
        codec=codec,  # type: ignore[arg-type]
        account_key=account_key,
        data_dir=Path(KeelSettings().data_dir) if audit else None,
        grant_minutes=grant_minutes,
    )

    def announce(admission: dict[str, Any]) -> None:
        room_view = admission["room"]
        typer.echo(f"room {room_view['id']}")
        if "code" in room_view:
            typer.echo(f"join code: {room_view['code']}")
        if "invite" in admission:
            typer.echo(f"invite link: {admission['invite']['url']}")
        typer.echo(f"emergency revoke: Ctrl+Alt+Shift+Escape, or kill -USR1 {os.getpid()}")

    decide = host_agent.policy(cast(host_agent.GrantPolicy, grant))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        agent = host_agent.HostAgent(options, decide=decide, on_room=announce)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, agent.emergency_revoke)
        await agent.run(stop)

    try:
        asyncio.run(main())
    except (RuntimeError, OSError) as exc:
        fail(str(exc))
