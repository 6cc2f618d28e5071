"""Detection-to-webhook latency of live payments on a real EVM node (anvil), and what watching
costs the node, against the original's way (a balance poll per open address) in the same run.

coinpay runs in-process as ``keel serve`` builds it (``create_app``, its worker and its scan
task for ETH) on a SQLite file, with a webhook receiver on 127.0.0.1. ``--open`` live payments
wait unpaid (the load a merchant's checkout leaves), then ``--paid`` more are paid one after
another with a real transfer from an anvil account. For each: the time from the transfer's
receipt to the ``payment.confirming`` webhook arriving (confirmations policy 1, so the same
scan also confirms it).

Baseline, in the same process on the same node: the original's watcher, which asks
``eth_getBalance`` of every open address each interval, run over the same addresses for the
same time. Both report node calls per second; the ratio is the baseline's over ours.

    PYTHONPATH=src:bench:. .venv/bin/python bench/coinpay_detection.py [--open 200] [--paid 30]
        [--interval 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from tests.chains_nodes import Anvil, anvil_binary, start_anvil

from keel.coinpay import apikeys, audit, businesses, lifecycle, notify
from keel.coinpay.app import create_app
from keel.coinpay.chains import config, sources
from keel.coinpay.gateway import Gateway
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets import Family, HDRoot
from keel.core.clock import SystemClock
from keel.core.crypto import new_key

SEED = " ".join(["abandon"] * 11 + ["about"])
PAYOUT = " ".join(["zoo"] * 11 + ["wrong"])


class Receiver:
    """Webhooks on 127.0.0.1: the arrival time of each (payment id, event type)."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[str, str], float] = {}
        self.events = asyncio.Event()

    async def start(self) -> str:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.server = server
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = json.loads(await reader.readexactly(length))
        self.arrived.setdefault((body["data"]["payment_id"], body["type"]), time.perf_counter())
        self.events.set()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


def rpc_calls(chain: str) -> float:
    """Node calls coinpay's RPC client made for ``chain`` so far (all providers, all methods)."""
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "coinpay_rpc_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels.get("chain") == chain:
                    total += sample.value
    return total


async def seed(gw: Gateway, hook: str) -> tuple[str, str]:
    clock = SystemClock()
    await gw.custody.init_seed(clock, SEED)
    operator = audit.Actor.cli(gw.queue, clock)
    async with gw.sessions() as session, session.begin():
        business_id = await businesses.create_business(session, clock, name="Bench shop")
        payout = HDRoot.from_mnemonic(PAYOUT).address(Family.EVM, 7)
        await businesses.set_wallet(
            session, operator, business_id=business_id, mode="live", coin="ETH", address=payout
        )
        _, key = await apikeys.create_key(
            session, gw.box, operator, business_id=business_id, mode="live"
        )
        await notify.create_endpoint(
            session,
            gw.box,
            operator,
            business_id=business_id,
            mode="live",
            url=hook,
            events=list(lifecycle.EVENT_TYPES),
            allow_private=True,
        )
    return business_id, key


async def create(client: httpx.AsyncClient, key: str, business_id: str) -> dict[str, Any]:
    response = await client.post(
        "/api/payments/create",
        json={"business_id": business_id, "amount": "5.00", "blockchain": "ETH"},
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()
    payment: dict[str, Any] = response.json()["payment"]
    return payment


async def baseline(anvil: Anvil, addresses: Sequence[str], seconds: float, interval: float) -> int:
    """The original's watcher: every interval, the balance of every open address."""
    calls = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        while time.monotonic() < deadline:
            started = time.monotonic()
            for address in addresses:
                body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance"}
                body["params"] = [address, "latest"]
                (await client.post(anvil.url, json=body)).raise_for_status()
                calls += 1
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    return calls


async def run(anvil: Anvil, args: argparse.Namespace, tmp: str) -> int:
    receiver = Receiver()
    hook = await receiver.start()
    env = {"KEEL_COINPAY_ETH_RPC_URLS": anvil.url}
    source = sources.open_source(config.load(env).chain("ETH"))
    settings = CoinpaySettings(
        database_url=f"sqlite+aiosqlite:///{tmp}/coinpay.db",
        master_key=new_key(),
        confirmations={"ETH": 1},
        watch_interval_seconds=args.interval,
        webhook_allow_private=True,
        worker_poll_seconds=0.05,
    )
    product = create_app(settings, data_dir=tmp, sources=[source])
    latencies: list[float] = []
    async with product.lifespan():
        gw: Gateway = product.app.state.gateway
        business_id, key = await seed(gw, hook)
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://coinpay") as client:
            waiting = [await create(client, key, business_id) for _ in range(args.open)]
            await asyncio.sleep(args.interval * 2)  # the scanner has started at the tip
            calls_before, started = rpc_calls("ETH"), time.monotonic()
            for _ in range(args.paid):
                payment = await create(client, key, business_id)
                amount = int(payment["crypto_amount_base_units"])
                tx = await asyncio.to_thread(anvil.send_eth, payment["payment_address"], amount)
                await asyncio.to_thread(anvil.receipt, tx)
                sent = time.perf_counter()
                while (payment["id"], "payment.confirming") not in receiver.arrived:
                    receiver.events.clear()
                    await asyncio.wait_for(receiver.events.wait(), timeout=60)
                latencies.append(receiver.arrived[(payment["id"], "payment.confirming")] - sent)
            ours_seconds = time.monotonic() - started
            ours_calls = rpc_calls("ETH") - calls_before
    addresses = [p["payment_address"] for p in waiting]
    base_calls = await baseline(anvil, addresses, ours_seconds, args.interval)
    await source.aclose()
    receiver.server.close()

    ms = sorted(x * 1000 for x in latencies)
    ours_rate, base_rate = ours_calls / ours_seconds, base_calls / ours_seconds
    print(
        f"Machine: {platform.machine()}, Python {platform.python_version()}; anvil on 127.0.0.1, "
        f"instant mining; scan interval {args.interval} s; {args.open} open payments waiting, "
        f"{args.paid} paid one after another; SQLite"
    )
    print()
    print("| detection to webhook | p50 ms | p95 ms | max ms |")
    print("|:--|--:|--:|--:|")
    p95 = ms[max(0, int(len(ms) * 0.95) - 1)]
    p50 = statistics.median(ms)
    print(f"| `payment.confirming` received | {p50:.0f} | {p95:.0f} | {ms[-1]:.0f} |")
    print()
    print("| watcher | node calls/s with these open payments |")
    print("|:--|--:|")
    print(f"| ours (a block read once, ~3 calls) | {ours_rate:.1f} |")
    print(f"| the original's (a balance per open address per interval) | {base_rate:.1f} |")
    print()
    print(f"ratio original/ours (node calls): {base_rate / ours_rate:.1f}x")
    return 0


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--open", type=int, default=200)
    parser.add_argument("--paid", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    binary = anvil_binary()
    if binary is None:
        print("anvil not found: run .ci/run (it installs it into .cache/npm)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="keel-detect-bench-") as tmp:
        anvil = start_anvil(binary, Path(tmp) / "anvil")
        try:
            return await run(anvil, args, tmp)
        finally:
            anvil.stop()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
