"""`keel pairux …`: accounts and rooms from a terminal."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

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
