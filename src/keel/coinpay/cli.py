"""`keel coinpay …`: set up the gateway from a terminal."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from keel.coinpay import apikeys, audit, bootstrap, businesses, notify, payments, presentation
from keel.coinpay.gateway import Gateway
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets import Family
from keel.coinpay.wallets.families import FEE_WALLET_PATHS
from keel.core import cli
from keel.core import logging as keel_logging
from keel.core.cli import JsonOpt, fail
from keel.core.settings import KeelSettings

app = typer.Typer(help="coinpay: multi-chain crypto payment gateway.", no_args_is_help=True)
business_app = typer.Typer(help="Businesses (tenants).", no_args_is_help=True)
wallet_app = typer.Typer(help="Payout wallets and watch-only keys.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
payments_app = typer.Typer(help="Payments.", no_args_is_help=True)
app.add_typer(business_app, name="business")
app.add_typer(wallet_app, name="wallet")
app.add_typer(apikey_app, name="apikey")
app.add_typer(payments_app, name="payments")

T = TypeVar("T")
# Configuration set from the server's CLI applies to both worlds unless told otherwise.
WorldsOpt = Annotated[
    str, typer.Option("--mode", help="test, live, or both (the default): which world to set.")
]


def _worlds(mode: str) -> tuple[str, ...]:
    if mode == "both":
        return apikeys.MODES
    if mode not in apikeys.MODES:
        fail("--mode must be 'test', 'live' or 'both'")
    return (mode,)


def _run(work: Callable[[Gateway], Awaitable[T]]) -> T:
    data_dir = str(KeelSettings().data_dir)
    return cli.run(
        lambda: bootstrap.open_gateway(CoinpaySettings(), data_dir=data_dir),
        bootstrap.close_gateway,
        work,
        # A missing seed is the operator's next step, not a crash.
        reported=lambda exc: exc.status < 500 or exc.code == "seed_missing",
    )


def _emit(as_json: bool, data: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str))
    else:
        for line in lines:
            typer.echo(line)


@app.command()
def init(
    mnemonic_file: Annotated[
        Path | None, typer.Option(help="Import this BIP39 mnemonic instead of generating one.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create (or import) the installation's master seed, encrypted under the master key."""
    mnemonic = None
    if mnemonic_file is not None:
        try:
            mnemonic = mnemonic_file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read {mnemonic_file}: {exc.strerror}")

    async def work(gw: Gateway) -> tuple[str, bool]:
        return await gw.custody.init_seed(gw.clock, mnemonic)

    fingerprint, created = _run(work)
    state = "created" if created else "already initialised"
    _emit(
        as_json,
        {"fingerprint": fingerprint, "created": created},
        [f"Master seed {state}; fingerprint {fingerprint}"]
        + (
            ["Generated a new seed: back up the master key file and the database."]
            if created and mnemonic is None
            else []
        ),
    )


@app.command("fee-wallets")
def fee_wallets(as_json: JsonOpt = False) -> None:
    """The platform's fee wallets, derived from the master seed: fund them, as they pay the
    network fees of token sweeps (EVM gas top-ups, Solana's fee payer)."""

    async def work(gw: Gateway) -> dict[str, str]:
        root = await gw.custody.root()
        return {family: root.fee_wallet(Family(family))[0] for family in FEE_WALLET_PATHS}

    wallets = _run(work)
    _emit(as_json, wallets, [f"{family}  {address}" for family, address in wallets.items()])


@business_app.command("create")
def business_create(
    name: Annotated[str, typer.Option(help="Business name.")],
    webhook_url: Annotated[str | None, typer.Option(help="Webhook endpoint URL.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a business; prints its id (and, with a webhook URL, one endpoint per mode with
    its secret, shown once)."""

    async def work(gw: Gateway) -> dict[str, Any]:
        async with gw.sessions() as session, session.begin():
            business_id = await businesses.create_business(session, gw.clock, name=name)
            out: dict[str, Any] = {"business_id": business_id}
            if webhook_url:
                webhooks: dict[str, dict[str, str]] = {}
                for mode in apikeys.MODES:
                    endpoint_id, secret = await notify.create_endpoint(
                        session,
                        gw.box,
                        audit.Actor.cli(gw.queue, gw.clock),
                        business_id=business_id,
                        mode=mode,
                        url=webhook_url,
                        events=None,
                        allow_private=gw.settings.webhook_allow_private,
                    )
                    webhooks[mode] = {"id": endpoint_id, "secret": secret}
                out["webhooks"] = webhooks
        return out

    out = _run(work)
    lines = [f"business_id: {out['business_id']}"]
    for mode, hook in out.get("webhooks", {}).items():
        lines += [f"{mode} webhook_id: {hook['id']}", f"{mode} webhook_secret: {hook['secret']}"]
    _emit(as_json, out, lines)


@wallet_app.command("set")
def wallet_set(
    business: Annotated[str, typer.Option(help="Business id.")],
    coin: Annotated[str, typer.Option(help="Coin symbol, e.g. BTC or USDC_SOL.")],
    address: Annotated[str, typer.Option(help="Payout address.")],
    mode: WorldsOpt = "both",
    as_json: JsonOpt = False,
) -> None:
    """Set the payout wallet for a coin (audited)."""
    worlds = _worlds(mode)

    async def work(gw: Gateway) -> str:
        async with gw.sessions() as session, session.begin():
            for world in worlds:
                normalised = await businesses.set_wallet(
                    session,
                    audit.Actor.cli(gw.queue, gw.clock),
                    business_id=business,
                    mode=world,
                    coin=coin,
                    address=address,
                    networks=gw.networks_of(world),
                )
            return normalised

    normalised = _run(work)
    _emit(
        as_json,
        {"coin": coin.upper(), "address": normalised, "modes": list(worlds)},
        [f"{coin.upper()} -> {normalised} ({', '.join(worlds)})"],
    )


@wallet_app.command("watch")
def wallet_watch(
    business: Annotated[str, typer.Option(help="Business id.")],
    family: Annotated[str, typer.Option(help="UTXO family: BTC, LTC, BCH or DOGE.")],
    xpub: Annotated[str, typer.Option(help="Account extended public key (xpub/zpub/…).")],
    mode: WorldsOpt = "both",
    as_json: JsonOpt = False,
) -> None:
    """Receive a UTXO family straight into your own wallet (watch-only, no keys held)."""
    worlds = _worlds(mode)

    async def work(gw: Gateway) -> None:
        async with gw.sessions() as session, session.begin():
            for world in worlds:
                await businesses.set_watch_only(
                    session,
                    audit.Actor.cli(gw.queue, gw.clock),
                    business_id=business,
                    mode=world,
                    family=family,
                    extended_key=xpub,
                )

    _run(work)
    _emit(
        as_json, {"family": family.upper(), "watch_only": True}, [f"{family.upper()}: watch-only"]
    )


@apikey_app.command("create")
def apikey_create(
    business: Annotated[str, typer.Option(help="Business id.")],
    mode: Annotated[str, typer.Option(help="test or live.")] = "test",
    scope: Annotated[list[str] | None, typer.Option(help="Scope (repeatable); default *.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; it is printed once and stored only as a keyed hash."""
    if mode not in apikeys.MODES:
        fail("--mode must be 'test' or 'live'")

    async def work(gw: Gateway) -> tuple[str, str]:
        async with gw.sessions() as session, session.begin():
            await businesses.require_business(session, business)
            return await apikeys.create_key(
                session,
                gw.box,
                audit.Actor.cli(gw.queue, gw.clock),
                business_id=business,
                mode=mode,
                scopes=scope or ["*"],
            )

    key_id, token = _run(work)
    _emit(as_json, {"key_id": key_id, "api_key": token, "mode": mode}, [f"api_key: {token}"])


@apikey_app.command("list")
def apikey_list(
    business: Annotated[str, typer.Option(help="Business id.")],
    as_json: JsonOpt = False,
) -> None:
    """The business's keys in both modes, with last use (to the minute); never the key."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        async with gw.sessions() as session:
            await businesses.require_business(session, business)
            return await apikeys.list_keys(session, business_id=business, mode=None)

    keys = _run(work)
    if as_json:
        typer.echo(json.dumps(keys))
        return
    for k in keys:
        state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
        mode = "live" if k["livemode"] else "test"
        typer.echo(
            f"{k['id']}  {k['prefix']}…  {mode}  {','.join(k['scopes'])}  "
            f"last used {k['last_used_at'] or 'never'}  {state}"
        )


@apikey_app.command("revoke")
def apikey_revoke(
    business: Annotated[str, typer.Option(help="Business id.")],
    key_id: Annotated[str, typer.Argument(help="The key's id (from `apikey list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key at once (audited)."""

    async def work(gw: Gateway) -> dict[str, Any]:
        async with gw.sessions() as session, session.begin():
            return await apikeys.revoke_key(
                session,
                audit.Actor.cli(gw.queue, gw.clock),
                business_id=business,
                mode=None,
                key_id=key_id,
            )

    revoked = _run(work)
    _emit(as_json, revoked, [f"revoked {revoked['id']} at {revoked['revoked_at']}"])


@payments_app.command("list")
def payments_list(
    business: Annotated[str | None, typer.Option(help="Only this business.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent payments across businesses (operator view)."""

    async def work(gw: Gateway) -> list[dict[str, Any]]:
        rows = await payments.operator_list(gw, business_id=business, status=status, limit=limit)
        return [presentation.to_wire(r, gw.live_chains) for r in rows]

    rows = _run(work)
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    for r in rows:
        typer.echo(
            f"{r['id']}  {r['status']:<10} {r['amount']} {r['currency']:<4} "
            f"{r['crypto_amount']} {r['blockchain']:<8} {r['payment_address']}"
        )


@app.command()
def worker() -> None:
    """Run only coinpay's workers (webhook delivery, expiry, chain watching, settlement)."""
    keel_logging.configure("INFO")
    core = KeelSettings()

    async def main() -> None:
        gw = await bootstrap.open_gateway(CoinpaySettings(), data_dir=str(core.data_dir))
        stop = cli.stop_on_signals()
        try:
            await bootstrap.build_worker(gw).run(stop)
        finally:
            await bootstrap.close_gateway(gw)

    asyncio.run(main())
    sys.exit(0)
