"""A real coinpay worker process for the sweep kill tests (``test_nodes_sweeps.py``).

    python tests/coinpay/chains/sweep_worker.py {before|between|after|never}

It runs what ``keel coinpay worker`` runs, configured from the environment the same way
(``KEEL_COINPAY_*``, ``KEEL_DATA_DIR``), with the live senders of
:func:`keel.coinpay.chains.senders.open_senders` (as ``bootstrap.open_gateway`` is to build
them). Each sender is wrapped here, in the test, never in ``src``: at the first broadcast it is
asked for, at the named point, it prints ``frozen <point> <tx hash>`` on stdout and then blocks
the whole process (the event loop's thread waits forever, so no task of this worker does
anything more) until the test kills it with SIGKILL:

* ``before``: the sweep is stored, nothing has reached the node;
* ``between``: the commission's transaction (nonce n) has reached the node, the merchant's not;
* ``after``: both are on chain, and the sweep's row still says ``signed``;
* ``never``: a plain worker (the restart).
"""

from __future__ import annotations

import asyncio
import sys
import threading

from eth_utils.crypto import keccak

from keel.coinpay import bootstrap
from keel.coinpay.chains.base import ChainSender, SignedSweep, SweepInput
from keel.coinpay.settings import CoinpaySettings
from keel.core import cli
from keel.core import logging as keel_logging
from keel.core.settings import KeelSettings

POINTS = ("before", "between", "after", "never")


class Freezing:
    """A :class:`ChainSender` that freezes the process at one point of its first broadcast."""

    def __init__(self, inner: ChainSender, point: str) -> None:
        self.inner = inner
        self.chain = inner.chain
        self.batch_limit = inner.batch_limit
        self.point = point

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        return await self.inner.sign(inputs, platform_address)

    async def broadcast(self, raw: str) -> None:
        transactions = raw.split("\n")
        if self.point == "before":
            self._freeze(raw)
        if self.point == "between":
            await self.inner.broadcast(transactions[0])
            self._freeze(raw)
        await self.inner.broadcast(raw)
        if self.point == "after":
            self._freeze(raw)

    async def confirmations(self, tx_hash: str) -> int | None:
        return await self.inner.confirmations(tx_hash)

    def _freeze(self, raw: str) -> None:
        merchant_tx = "0x" + keccak(bytes.fromhex(raw.split("\n")[-1][2:])).hex()
        sys.stdout.write(f"frozen {self.point} {merchant_tx}\n")
        sys.stdout.flush()
        threading.Event().wait()  # blocks the loop's thread: this worker stops here, for good


async def main(point: str) -> None:
    gw = await bootstrap.open_gateway(CoinpaySettings(), data_dir=str(KeelSettings().data_dir))
    # The senders keel serve opened from the environment, each wrapped to freeze at ``point``.
    live: dict[str, ChainSender] = {c: Freezing(s, point) for c, s in gw.senders["live"].items()}
    gw.senders = {**gw.senders, "live": live}
    stop = cli.stop_on_signals()
    try:
        await bootstrap.build_worker(gw).run(stop)
    finally:
        await bootstrap.close_gateway(gw)  # closes the senders it opened


if __name__ == "__main__":
    [chosen] = sys.argv[1:]
    if chosen not in POINTS:
        raise SystemExit(f"usage: sweep_worker.py {{{'|'.join(POINTS)}}}")
    keel_logging.configure("INFO")  # to stderr: stdout carries only the "frozen" line
    asyncio.run(main(chosen))
