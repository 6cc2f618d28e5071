"""`keel`: serve the products, or manage one of them."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from keel.bittorrented.app import create_app as create_bittorrented
from keel.bittorrented.cli import app as bittorrented_cli
from keel.bittorrented.settings import BittorrentedSettings
from keel.coach.app import create_app as create_coach
from keel.coach.cli import app as coach_cli
from keel.coach.settings import CoachSettings
from keel.coinpay.app import create_app as create_coinpay
from keel.coinpay.cli import app as coinpay_cli
from keel.coinpay.settings import CoinpaySettings
from keel.core import logging as keel_logging
from keel.core.app import Product, create_root_app
from keel.core.server import SERVER_LIMITS
from keel.core.settings import KeelSettings
from keel.pairux.app import create_app as create_pairux
from keel.pairux.cli import app as pairux_cli
from keel.pairux.settings import PairuxSettings
from keel.roadmaps.app import create_app as create_roadmaps
from keel.roadmaps.cli import app as roadmaps_cli
from keel.roadmaps.settings import RoadmapsSettings

app = typer.Typer(help="Keel: self-hostable products on one hardened core.", no_args_is_help=True)
app.add_typer(coinpay_cli, name="coinpay")
app.add_typer(bittorrented_cli, name="bittorrented")
app.add_typer(pairux_cli, name="pairux")
app.add_typer(roadmaps_cli, name="roadmaps")
app.add_typer(coach_cli, name="coach")

PRODUCTS = ("coinpay", "bittorrented", "pairux", "roadmaps", "coach")


def _build(name: str, core: KeelSettings) -> Product:
    if name == "coinpay":
        return create_coinpay(
            CoinpaySettings(), data_dir=str(core.data_dir), rate_limits=core.rate_limits()
        )
    if name == "bittorrented":
        return create_bittorrented(
            BittorrentedSettings(), data_dir=str(core.data_dir), rate_limits=core.rate_limits()
        )
    if name == "pairux":
        return create_pairux(
            PairuxSettings(), data_dir=str(core.data_dir), rate_limits=core.rate_limits()
        )
    if name == "roadmaps":
        return create_roadmaps(
            RoadmapsSettings(), data_dir=str(core.data_dir), rate_limits=core.rate_limits()
        )
    if name == "coach":
        return create_coach(CoachSettings(), data_dir=str(core.data_dir))
    raise typer.BadParameter(f"unknown product {name!r}; known: {', '.join(PRODUCTS)}")


@app.command()
def serve(
    products: Annotated[
        list[str] | None, typer.Argument(help="Products to run (default: all).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Run every product (or the ones named) with its workers, mounted at /<product>."""
    try:
        core = KeelSettings()
        chosen = [_build(name, core) for name in (products or PRODUCTS)]
    except ValidationError as exc:
        typer.echo(
            f"error: invalid settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}", err=True
        )
        raise typer.Exit(2) from exc
    keel_logging.configure(core.log_level, json=core.log_json)
    typer.echo(
        f"Keel serving {', '.join(p.name for p in chosen)} on http://{host}:{port}/", err=True
    )
    uvicorn.run(
        create_root_app(chosen, max_body_bytes=core.max_body_bytes),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        **SERVER_LIMITS,
    )


def main() -> None:
    app()
