"""Scan cost per block with 1,000 against 100,000 open payments (issue 11: ratio <= 1.2).

Two SQLite databases, the same except for the number of open live ETH payments waiting at
their own addresses. Each is scanned by coinpay's own code, the path ``keel serve`` runs: the
chain's ``Scanner.step`` (read the block, match its recipients against payment addresses, store
the matches, move the cursor) and then ``payments.after_scan`` (refresh the payments the block
concerns: those paid in it and every one still counting confirmations). The node is a scripted
in-process chain (no network: what is measured is our side), each block carrying ``--transfers``
transfers of which ``--ours`` pay open payments of that database in full.

The two databases take turns, ``--slice`` blocks each, so the machine's load falls on both
alike. Prints ms per block (p50, mean) for each and the ratio.

    PYTHONPATH=src .venv/bin/python bench/coinpay_scan.py [--small 1000] [--large 100000]
        [--blocks 150] [--transfers 300] [--ours 5]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from keel.coinpay import bootstrap, businesses, models, payments
from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets.address_validation import eip55
from keel.core.clock import SystemClock
from keel.core.crypto import new_key

AMOUNT = 10**16  # 0.01 ETH per payment


@dataclass
class Chain:
    """An EVM-like chain made up block by block as the scanner asks for it."""

    open_addresses: list[str]
    transfers: int
    ours: int
    chain: str = "ETH"
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.blocks.append(Block(BlockRef(0, "0" * 64, "f" * 64), ()))

    def mine(self) -> None:
        parent = self.blocks[-1].ref
        paid = [self.open_addresses.pop() for _ in range(self.ours)]
        strangers = [_address() for _ in range(self.transfers - self.ours)]
        transfers = tuple(
            Transfer("ETH", "0x" + secrets.token_hex(32), 0, address, AMOUNT)
            for address in [*paid, *strangers]
        )
        ref = BlockRef(parent.height + 1, secrets.token_hex(32), parent.hash)
        self.blocks.append(Block(ref, transfers))

    async def tip(self) -> BlockRef:
        return self.blocks[-1].ref

    async def block(self, height: int) -> Block:
        return self.blocks[height]

    async def pending(self) -> Mempool:
        return Mempool(complete=False)


def _address() -> str:
    return eip55("0x" + secrets.token_hex(20))


@dataclass
class Subject:
    label: str
    gw: Gateway
    chain: Chain
    times: list[float] = field(default_factory=list)
    scans: list[float] = field(default_factory=list)  # Scanner.step alone


async def open_subject(
    label: str, open_payments: int, args: argparse.Namespace, tmp: str
) -> Subject:
    addresses = [_address() for _ in range(open_payments)]
    chain = Chain(list(addresses), args.transfers, args.ours)
    settings = CoinpaySettings(
        database_url=f"sqlite+aiosqlite:///{tmp}/{label}.db",
        master_key=new_key(),
        run_workers=False,
    )
    clock = SystemClock()
    gw = await bootstrap.open_gateway(settings, data_dir=tmp, clock=clock, sources=[chain])
    now = clock.now()
    async with gw.sessions() as session, session.begin():
        business_id = await businesses.create_business(session, clock, name="Bench shop")
    rows = [
        {
            "id": str(uuid.uuid4()),
            "business_id": business_id,
            "mode": "live",
            "amount": Decimal("30.00"),
            "currency": "USD",
            "blockchain": "ETH",
            "crypto_amount": AMOUNT,
            "rate": Decimal(3000),
            "rate_source": "bench",
            "payment_address": address,
            "family_key": "bench",
            "derivation_index": i,
            "custody": "system",
            "payout_address": None,
            "status": Status.PENDING.value,
            "paid_partial": False,
            "paid_over": False,
            "paid_late": False,
            "received_amount": 0,
            "confirmations": 0,
            "required_confirmations": 12,
            "tolerance_percent": Decimal(0),
            "description": None,
            "metadata": {},
            "expires_at": now + timedelta(days=1),
            "monitor_until": now + timedelta(days=2),
            "created_at": now,
            "updated_at": now,
        }
        for i, address in enumerate(addresses)
    ]
    for start in range(0, len(rows), 5_000):
        async with gw.sessions() as session, session.begin():
            await session.execute(models.payments.insert(), rows[start : start + 5_000])
    scanner = gw.scanners["ETH"]
    chain.mine()
    await scanner.step()  # starts at the tip
    return Subject(label, gw, chain)


async def scan_one(subject: Subject) -> None:
    subject.chain.mine()
    started = time.perf_counter()
    report = await subject.gw.scanners["ETH"].step()
    scanned = time.perf_counter()
    await payments.after_scan(subject.gw, report)
    subject.times.append(time.perf_counter() - started)
    subject.scans.append(scanned - started)
    assert len(report.touched) == subject.chain.ours, report


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--blocks", type=int, default=150)
    parser.add_argument("--transfers", type=int, default=300)
    parser.add_argument("--ours", type=int, default=5)
    parser.add_argument("--slice", type=int, default=10)
    args = parser.parse_args(argv)
    needed = args.blocks * args.ours + args.ours
    if args.small < needed:
        parser.error(f"--small must be at least --blocks x --ours + --ours ({needed})")
    with tempfile.TemporaryDirectory(prefix="keel-scan-bench-") as tmp:
        print(f"seeding {args.small:,} and {args.large:,} open payments", file=sys.stderr)
        subjects = [
            await open_subject("small", args.small, args, tmp),
            await open_subject("large", args.large, args, tmp),
        ]
        try:
            done = 0
            while done < args.blocks:
                for subject in subjects:
                    for _ in range(min(args.slice, args.blocks - done)):
                        await scan_one(subject)
                done += args.slice
        finally:
            for subject in subjects:
                await bootstrap.close_gateway(subject.gw)
    small, large = subjects
    print(
        f"Machine: {platform.machine()}, Python {platform.python_version()}; {args.blocks} "
        f"blocks each of {args.transfers} transfers, {args.ours} paying open payments; SQLite"
    )
    print()
    print("| open payments | ms/block p50 | ms/block mean | of which the scan (p50) |")
    print("|--:|--:|--:|--:|")
    for subject, count in ((small, args.small), (large, args.large)):
        ms = [t * 1000 for t in subject.times]
        scan = statistics.median(subject.scans) * 1000
        print(
            f"| {count:,} | {statistics.median(ms):.2f} | {statistics.fmean(ms):.2f} | {scan:.2f} |"
        )
    ratio = statistics.median(large.times) / statistics.median(small.times)
    scan_ratio = statistics.median(large.scans) / statistics.median(small.scans)
    print()
    print(f"ratio large/small (p50): {ratio:.2f} per block, {scan_ratio:.2f} for the scan alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
