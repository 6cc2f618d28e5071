"""Sweep throughput of confirmed live payments on real nodes (ETH on anvil, LTC on litecoind
regtest): ours (``sweep_parallel`` transactions in flight per chain, UTXO batching) against
one at a time (``parallel=1`` and, on LTC, ``batch_limit=1``: the original's way) in the same run.

Each contender gets a fresh SQLite database, a fresh seed (so fresh payment addresses) and its
own ``--payments`` payments, on the same node. coinpay is opened as ``keel serve`` opens it:
``bootstrap.open_gateway`` from an environment-like mapping (``KEEL_COINPAY_<CHAIN>_RPC_URLS``,
``_CHAIN_ID`` / ``_NETWORK``), which builds the chain's source, its scanner and the sender
``chains.senders.open_senders`` makes, with a platform wallet in the settings. The payments are
created with ``payments.create`` for ``--merchants`` businesses (a payout address each), paid
with real transfers from the node (anvil: one transaction per payment, automine off, then one
block; regtest: ``sendmany`` in chunks of 50), mined to the chain's default policy depth,
confirmed by the real scanner (``Scanner.step`` + ``payments.after_scan``), and moved to
``forwarding`` by the real ``payment.forward`` job (run while the chain's sender is hidden, so
the job writes the split and leaves the sweep to the sweeper under test).

Then, timed: ``Sweeper.round()`` (from ``payments.sweeper``, the factory the worker uses) in a
loop until every payment's sweep is signed, claimed and broadcast ("sent"); then the policy's
depth of blocks is mined and rounds run until every payment is ``forwarded`` ("to forwarded",
the mining included). Nothing is mined while sweeps are being sent, as on a real chain between
blocks, so each round's confirm step sees every sweep still in the pool.

Checked on the node afterwards (exit 1 on any failure): every payment forwarded exactly once
(ETH: each payment address made exactly two transactions and holds 0; LTC: every deposit spent,
by exactly one stored sweep, each on chain), each merchant received exactly the sum of its
payments' received − commission − network fee, the platform the commission sum, and the fees
the chain charged equal the stored ``network_fee``s.

    PYTHONPATH=src:bench:. .venv/bin/python bench/coinpay_sweeps.py [--payments 200]
        [--merchants 10] [--chains eth,ltc] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import REGISTRY
from sqlalchemy import func, select
from tests.chains_nodes import (
    Anvil,
    Litecoind,
    anvil_binary,
    litecoind_binary,
    start_anvil,
    start_litecoind,
)

from keel.coinpay import apikeys, audit, bootstrap, businesses, models, money, payments
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets.address_validation import eip55
from keel.core.clock import SystemClock
from keel.core.crypto import new_key

AMOUNTS_USD = ("12.34", "25.00", "56.78", "7.50", "99.99")  # cycled over the payments
SENDMANY_CHUNK = 50
DEADLINE_SECONDS = 900.0
T = TypeVar("T")


@dataclass(frozen=True)
class Contender:
    label: str
    parallel: int | None  # None: the settings' default sweep_parallel
    batch_limit: int | None  # None: the sender's own


ONE_AT_A_TIME = Contender("one at a time (parallel 1, batch 1)", 1, 1)
OURS = Contender("ours (default parallel, batching)", None, None)


@dataclass
class Result:
    chain: str
    contender: Contender
    payments: int
    parallel: int = 0
    batch_limit: int = 0
    sent_seconds: float = 0.0
    forwarded_seconds: float = 0.0
    rounds_sent: int = 0
    rounds_total: int = 0
    transactions: int = 0
    fees: int = 0  # base units, as the chain charged them
    rpc_calls: Counter[str] = field(default_factory=Counter)
    step_seconds: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class Chain:
    """What the bench needs of a node: fund, mine, read back."""

    name: str
    decimals: int

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def new_payout(self) -> str:
        raise NotImplementedError

    def fund(self, paid: Sequence[tuple[str, int]]) -> None:
        raise NotImplementedError

    def mine(self, blocks: int) -> None:
        raise NotImplementedError

    def height(self) -> int:
        raise NotImplementedError


class Eth(Chain):
    name, decimals = "ETH", 18

    def __init__(self, node: Anvil) -> None:
        self.node = node
        # As on a real chain, transactions wait in the pool for the next block (mined below).
        node.rpc("evm_setAutomine", False)

    def env(self) -> dict[str, str]:
        return {"KEEL_COINPAY_ETH_RPC_URLS": self.node.url, "KEEL_COINPAY_ETH_CHAIN_ID": "31337"}

    def new_payout(self) -> str:
        return eip55("0x" + secrets.token_hex(20))

    def fund(self, paid: Sequence[tuple[str, int]]) -> None:
        for address, amount in paid:
            self.node.send_eth(address, amount)

    def mine(self, blocks: int) -> None:
        self.node.mine(blocks)

    def height(self) -> int:
        return self.node.height()

    def balance(self, address: str) -> int:
        return int(self.node.rpc("eth_getBalance", address, "latest"), 16)

    def nonce(self, address: str) -> int:
        return int(self.node.rpc("eth_getTransactionCount", address, "latest"), 16)


class Ltc(Chain):
    name, decimals = "LTC", 8

    def __init__(self, node: Litecoind) -> None:
        self.node = node

    def env(self) -> dict[str, str]:
        return {"KEEL_COINPAY_LTC_RPC_URLS": self.node.url, "KEEL_COINPAY_LTC_NETWORK": "regtest"}

    def new_payout(self) -> str:
        return self.node.new_address()

    def fund(self, paid: Sequence[tuple[str, int]]) -> None:
        for start in range(0, len(paid), SENDMANY_CHUNK):
            outputs = {a: money.format_units(v, 8) for a, v in paid[start : start + SENDMANY_CHUNK]}
            self.node.rpc("sendmany", "", outputs)

    def mine(self, blocks: int) -> None:
        self.node.mine(blocks)

    def height(self) -> int:
        return self.node.height()

    def units(self, value: Any) -> int:
        return money.units_of(Decimal(str(value)), 8)


def rpc_calls(chain: str) -> Counter[str]:
    """coinpay's JSON-RPC round trips so far for ``chain``, by method (all clients)."""
    calls: Counter[str] = Counter()
    for metric in REGISTRY.collect():
        if metric.name == "coinpay_rpc_seconds":
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels.get("chain") == chain:
                    calls[sample.labels["method"]] += int(sample.value)
    return calls


async def count(gw: Gateway, *where: Any, table: Any = models.payments) -> int:
    async with gw.sessions() as session:
        found = await session.scalar(select(func.count()).select_from(table).where(*where))
    return int(found or 0)


async def until(
    what: str, done: Callable[[], Awaitable[bool]], step: Callable[[], Awaitable[Any]]
) -> int:
    """Runs ``step`` until ``done``; returns how many steps it took."""
    steps, deadline = 0, time.monotonic() + DEADLINE_SECONDS
    while not await done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not done after {DEADLINE_SECONDS:g} s")
        await step()
        steps += 1
    return steps


def timed(
    into: Counter[str], name: str, work: Callable[[], Awaitable[T]]
) -> Callable[[], Awaitable[T]]:
    async def run() -> T:
        started = time.perf_counter()
        try:
            return await work()
        finally:
            into[name] += time.perf_counter() - started  # type: ignore[assignment]

    return run


async def prepare(
    chain: Chain, contender: Contender, args: argparse.Namespace, tmp: str, index: int
) -> tuple[Gateway, dict[str, str], str]:
    """A fresh coinpay on its own database and seed, with ``args.payments`` live payments in
    ``forwarding``; returns the gateway, payout address by business id, and the platform's."""
    platform_address = chain.new_payout()
    options: dict[str, Any] = {}
    if contender.parallel is not None:
        options["sweep_parallel"] = contender.parallel
    settings = CoinpaySettings(
        database_url=f"sqlite+aiosqlite:///{tmp}/{chain.name.lower()}-{index}.db",
        master_key=new_key(),
        run_workers=False,
        platform_wallets={chain.name: platform_address},
        **options,
    )
    clock = SystemClock()
    gw = await bootstrap.open_gateway(settings, data_dir=tmp, clock=clock, environ=chain.env())
    await gw.custody.init_seed(clock)  # a new seed: addresses no other contender used
    operator = audit.Actor.cli(gw.queue, clock)
    payouts: dict[str, str] = {}
    principals = []
    for m in range(args.merchants):
        async with gw.sessions() as session, session.begin():
            business_id = await businesses.create_business(session, clock, name=f"Shop {m}")
            payouts[business_id] = await businesses.set_wallet(
                session,
                operator,
                business_id=business_id,
                mode="live",
                coin=chain.name,
                address=chain.new_payout(),
                networks=gw.networks_of("live"),
            )
            _, token = await apikeys.create_key(
                session, gw.box, operator, business_id=business_id, mode="live"
            )
        principals.append(await apikeys.authenticate(gw.lookups, gw.box, token))

    scanner = gw.scanners[chain.name]

    async def scan() -> None:
        await payments.after_scan(gw, await scanner.step())

    await scan()  # the scanner starts at the node's tip
    created = []
    for i in range(args.payments):
        principal = principals[i % len(principals)]
        request = payments.NewPayment(
            principal.business_id, Decimal(AMOUNTS_USD[i % len(AMOUNTS_USD)]), "USD", chain.name
        )
        created.append(await payments.create(gw, principal, request))
    chain.fund([(p.payment_address, p.crypto_amount) for p in created])
    chain.mine(gw.settings.required_confirmations(chain.name))
    live = models.payments.c.mode == "live"
    status = models.payments.c.status

    async def all_confirmed() -> bool:
        return await count(gw, live, status == Status.CONFIRMED.value) == int(args.payments)

    await until("scan to confirmed", all_confirmed, scan)
    # The forward jobs write each split; with the sender hidden they leave the sweep to us.
    senders = gw.senders
    gw.senders = {**senders, "live": {}}
    try:
        await bootstrap.build_worker(gw).drain(max_rounds=10 * args.payments)
    finally:
        gw.senders = senders
    forwarding = await count(gw, live, status == Status.FORWARDING.value)
    if forwarding != args.payments:
        raise RuntimeError(f"{forwarding} of {args.payments} payments reached forwarding")
    return gw, payouts, platform_address


async def sweep(
    chain: Chain, contender: Contender, args: argparse.Namespace, tmp: str, index: int
) -> Result:
    gw, payouts, platform_address = await prepare(chain, contender, args, tmp, index)
    result = Result(chain.name, contender, args.payments)
    try:
        sweeper = payments.sweeper(gw, "live", chain.name)
        assert sweeper is not None, "no sender or platform wallet for the chain"
        if contender.batch_limit is not None:
            sweeper.sender.batch_limit = contender.batch_limit
        result.parallel, result.batch_limit = sweeper._parallel, sweeper.sender.batch_limit
        # Time spent in each of the round's three steps (bench instrumentation only).
        for step in ("_sign_and_claim", "_send", "_confirm"):
            setattr(
                sweeper, step, timed(result.step_seconds, step.strip("_"), getattr(sweeper, step))
            )
        p, s = models.payments.c, models.sweeps.c

        async def all_sent() -> bool:
            unclaimed = await count(gw, p.status == Status.FORWARDING.value, p.sweep_id.is_(None))
            unsent = await count(gw, s.status == "signed", table=models.sweeps)
            return unclaimed == 0 and unsent == 0

        async def all_forwarded() -> bool:
            return await count(gw, p.status == Status.FORWARDED.value) == int(args.payments)

        height = chain.height()
        calls_before = rpc_calls(chain.name)
        started = time.perf_counter()
        result.rounds_sent = await until("sweeps sent", all_sent, sweeper.round)
        result.sent_seconds = time.perf_counter() - started
        chain.mine(gw.settings.required_confirmations(chain.name))
        more = await until("sweeps forwarded", all_forwarded, sweeper.round)
        result.forwarded_seconds = time.perf_counter() - started
        result.rounds_total = result.rounds_sent + more
        result.rpc_calls = rpc_calls(chain.name) - calls_before
        if isinstance(chain, Eth):
            await verify_eth(chain, gw, payouts, platform_address, height, result)
        elif isinstance(chain, Ltc):
            await verify_ltc(chain, gw, payouts, platform_address, height, result)
    finally:
        await bootstrap.close_gateway(gw)
    return result


async def stored(gw: Gateway) -> tuple[list[Any], list[Any]]:
    async with gw.sessions() as session:
        rows = (
            await session.execute(select(models.payments).where(models.payments.c.mode == "live"))
        ).all()
        sweeps = (await session.execute(select(models.sweeps))).all()
    return list(rows), list(sweeps)


def check_books(rows: Sequence[Any], sweeps: Sequence[Any], result: Result) -> dict[str, int]:
    """Database-side checks; returns what each business is owed (received − commission − fee)."""
    fail = result.failures
    by_id = {s.id: s for s in sweeps}
    owed: dict[str, int] = Counter()
    for r in rows:
        if r.status != Status.FORWARDED.value:
            fail.append(f"payment {r.id} is {r.status}, not forwarded")
            continue
        sweep = by_id.get(r.sweep_id)
        if sweep is None or sweep.status != "confirmed" or r.forward_tx_hash != sweep.tx_hash:
            fail.append(f"payment {r.id}: its sweep is missing, unconfirmed or another hash")
        if r.commission_amount != r.received_amount // 100:  # 1 %, the free plan
            fail.append(f"payment {r.id}: commission {r.commission_amount} of {r.received_amount}")
        owed[r.business_id] += r.received_amount - r.commission_amount - r.network_fee
    if sum(s.payments for s in sweeps) != len(rows) or len({s.tx_hash for s in sweeps}) != len(
        sweeps
    ):
        fail.append("sweeps do not add up to the payments, or two share a hash")
    return owed


async def verify_eth(
    chain: Eth,
    gw: Gateway,
    payouts: dict[str, str],
    platform_address: str,
    height: int,
    result: Result,
) -> None:
    rows, sweeps = await stored(gw)
    owed = check_books(rows, sweeps, result)
    fail = result.failures
    for r in rows:
        if chain.nonce(r.payment_address) != 2 or chain.balance(r.payment_address) != 0:
            fail.append(f"payment address {r.payment_address}: not exactly one sweep, or not empty")
    for business_id, address in payouts.items():
        if chain.balance(address) != owed[business_id]:
            fail.append(
                f"merchant {address}: {chain.balance(address)} wei, owed {owed[business_id]}"
            )
    commission = sum(r.commission_amount for r in rows)
    if chain.balance(platform_address) != commission:
        fail.append(f"platform: {chain.balance(platform_address)} wei, commission {commission}")
    ours = {r.payment_address.lower() for r in rows}
    for number in range(height + 1, chain.height() + 1):
        block = chain.node.rpc("eth_getBlockByNumber", hex(number), True)
        for tx in block["transactions"]:
            if tx["from"].lower() in ours:
                receipt = chain.node.receipt(tx["hash"])
                result.transactions += 1
                result.fees += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    if result.transactions != 2 * len(rows):
        fail.append(f"{result.transactions} sweep transactions on chain for {len(rows)} payments")
    recorded = sum(r.network_fee for r in rows)
    if result.fees != recorded:
        fail.append(f"the chain charged {result.fees} wei, the payments record {recorded}")


async def verify_ltc(
    chain: Ltc,
    gw: Gateway,
    payouts: dict[str, str],
    platform_address: str,
    height: int,
    result: Result,
) -> None:
    rows, sweeps = await stored(gw)
    owed = check_books(rows, sweeps, result)
    fail = result.failures
    node = chain.node
    depth = gw.settings.required_confirmations("LTC")
    mined: set[str] = set()
    for number in range(height + 1, chain.height() + 1):
        mined.update(node.rpc("getblock", node.rpc("getblockhash", number))["tx"])
    async with gw.sessions() as session:
        t = models.chain_transfers
        deposits = (
            await session.execute(
                select(t.c.tx_hash, t.c.position, t.c.amount).where(t.c.chain == "LTC")
            )
        ).all()
    amounts = {(d.tx_hash, int(d.position)): int(d.amount) for d in deposits}
    spent_by: Counter[tuple[str, int]] = Counter()
    for sweep in sweeps:
        tx = node.rpc("decoderawtransaction", sweep.raw_tx)
        if tx["txid"] != sweep.tx_hash or sweep.tx_hash not in mined:
            fail.append(f"sweep {sweep.tx_hash} is not on chain")
        inputs = [(i["txid"], int(i["vout"])) for i in tx["vin"]]
        spent_by.update(inputs)
        spent = sum(amounts.get(i, 0) for i in inputs)
        result.fees += spent - sum(chain.units(o["value"]) for o in tx["vout"])
    result.transactions = len(sweeps)
    for d in deposits:
        if (
            spent_by[(d.tx_hash, int(d.position))] != 1
            or node.rpc("gettxout", d.tx_hash, d.position) is not None
        ):
            fail.append(f"deposit {d.tx_hash}:{d.position} not spent exactly once")
    if sum(spent_by.values()) != len(deposits):
        fail.append("a sweep spends an output that is no payment's deposit")
    for business_id, address in payouts.items():
        got = chain.units(node.rpc("getreceivedbyaddress", address, depth))
        if got != owed[business_id]:
            fail.append(f"merchant {address}: {got} sat, owed {owed[business_id]}")
    commission = sum(r.commission_amount for r in rows)
    got = chain.units(node.rpc("getreceivedbyaddress", platform_address, depth))
    if got != commission:
        fail.append(f"platform: {got} sat, commission {commission}")
    recorded = sum(r.network_fee for r in rows)
    if result.fees != recorded:
        fail.append(f"the chain charged {result.fees} sat, the payments record {recorded}")


def fee_text(chain: str, units: int) -> str:
    if chain == "ETH":
        return f"{units / 10**18:.6f} ETH"
    return f"{units / 10**8:.8f} LTC"


def report(results: Sequence[Result], args: argparse.Namespace, load: tuple[float, ...]) -> None:
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python "
        f"{platform.python_version()}; load average before {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f}, after {' / '.join(f'{x:.2f}' for x in os.getloadavg())}. "
        f"{args.payments} confirmed live payments per contender from {args.merchants} "
        "merchants, a fresh SQLite database and seed each; anvil (automine off) and litecoind "
        "-regtest on 127.0.0.1, mined to each chain's default depth (ETH 12, LTC 2)."
    )
    print()
    print(
        "| chain | contender | parallel × batch | rounds (sent / all) | sent s | sent payments/s "
        "| to forwarded s | forwarded payments/s | txs on chain | fees paid | RPC calls |"
    )
    print("|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        print(
            f"| {r.chain} | {r.contender.label} | {r.parallel} × {r.batch_limit} "
            f"| {r.rounds_sent} / {r.rounds_total} | {r.sent_seconds:.1f} "
            f"| {r.payments / r.sent_seconds:.1f} | {r.forwarded_seconds:.1f} "
            f"| {r.payments / r.forwarded_seconds:.1f} | {r.transactions} "
            f"| {fee_text(r.chain, r.fees)} | {sum(r.rpc_calls.values()):,} |"
        )
    print()
    print("| chain | contender | sign + claim s | send s | confirm s | RPC calls by method |")
    print("|:--|:--|--:|--:|--:|:--|")
    for r in results:
        methods = ", ".join(f"{m} {n:,}" for m, n in r.rpc_calls.most_common())
        s = r.step_seconds
        print(
            f"| {r.chain} | {r.contender.label} | {s['sign_and_claim']:.1f} | {s['send']:.1f} "
            f"| {s['confirm']:.1f} | {methods} |"
        )
    print()
    for chain in dict.fromkeys(r.chain for r in results):
        mine = [r for r in results if r.chain == chain]
        ours = [r for r in mine if r.contender is OURS]
        base = [r for r in mine if r.contender is ONE_AT_A_TIME]
        if not ours or not base:
            continue
        sent = _median([r.payments / r.sent_seconds for r in ours]) / _median(
            [r.payments / r.sent_seconds for r in base]
        )
        done = _median([r.payments / r.forwarded_seconds for r in ours]) / _median(
            [r.payments / r.forwarded_seconds for r in base]
        )
        fees = _median([r.fees for r in base]) / max(1, _median([r.fees for r in ours]))
        print(
            f"{chain} ratio ours/one-at-a-time: {sent:.1f}x sent, {done:.1f}x to forwarded; "
            f"fees one-at-a-time/ours {fees:.1f}x"
        )
    failures = [f"{r.chain} {r.contender.label}: {f}" for r in results for f in r.failures]
    print()
    if failures:
        print(f"FAILED: {len(failures)} checks")
        for failure in failures[:50]:
            print(f"- {failure}")
    else:
        print(
            "Checks passed: every payment forwarded exactly once, each merchant paid exactly "
            "received − commission − network fee, the platform the commission sum, the fees the "
            "chain charged equal to those recorded."
        )


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


async def run_chain(
    chain: Chain, args: argparse.Namespace, tmp: str, results: list[Result]
) -> None:
    order = [ONE_AT_A_TIME, OURS]
    for repeat in range(args.repeat):
        for contender in order if repeat % 2 == 0 else order[::-1]:
            index = len(results)
            print(f"{chain.name}: {contender.label}, {args.payments} payments", file=sys.stderr)
            result = await sweep(chain, contender, args, tmp, index)
            print(
                f"  sent in {result.sent_seconds:.1f} s, forwarded in "
                f"{result.forwarded_seconds:.1f} s, {len(result.failures)} failed checks",
                file=sys.stderr,
            )
            results.append(result)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--merchants", type=int, default=10)
    parser.add_argument("--chains", default="eth,ltc")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, alternating order")
    args = parser.parse_args(argv)
    chains = [c.strip().lower() for c in args.chains.split(",") if c.strip()]
    if not set(chains) <= {"eth", "ltc"} or args.payments < 1 or args.merchants < 1:
        parser.error("--chains takes eth and/or ltc; --payments and --merchants at least 1")
    load = os.getloadavg()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="keel-sweep-bench-") as tmp:
        for name in chains:
            if name == "eth":
                binary = anvil_binary()
                if binary is None:
                    print(
                        "anvil not found: run .ci/run (it installs it into .cache/npm)",
                        file=sys.stderr,
                    )
                    return 2
                anvil = start_anvil(binary, Path(tmp) / "anvil")
                try:
                    await run_chain(Eth(anvil), args, tmp, results)
                finally:
                    anvil.stop()
            else:
                binary = litecoind_binary()
                if binary is None:
                    print("litecoind not found (apt-get install litecoind)", file=sys.stderr)
                    return 2
                node = start_litecoind(binary, Path(tmp) / "litecoind")
                try:
                    node.rpc("createwallet", "bench")
                    # Mature coinbase outputs (50 LTC each) for every contender's payments.
                    node.mine(100 + 2 * args.repeat * (1 + args.payments // 300))
                    await run_chain(Ltc(node), args, tmp, results)
                finally:
                    node.stop()
    report(results, args, load)
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
