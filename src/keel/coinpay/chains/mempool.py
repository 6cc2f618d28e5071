"""What a UTXO source remembers of a node's mempool between polls.

A poll lists the mempool's transaction ids; only the ones not seen before are fetched, at most
``max_fetch`` a poll and ``max_txs`` held, so a flood cannot make one poll unbounded. The
transfers of every transaction read are kept until it leaves the mempool. The view is complete
only when every listed transaction was read: only then may the scanner take a transfer missing
from it (and from every block) as dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.coinpay.chains.base import Mempool, Transfer
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.mempool")


class MempoolCache:
    """The transfers of the mempool transactions read so far (module docstring)."""

    def __init__(self, chain: str, *, max_fetch: int, max_txs: int) -> None:
        if max_fetch < 1 or max_txs < 1:
            raise ValueError("max_fetch and max_txs must be at least 1")
        self.chain = chain
        self._max_fetch = max_fetch
        self._max_txs = max_txs
        # txid -> its transfers (often none), for transactions in the mempool at the last poll
        self._read: dict[str, tuple[Transfer, ...]] = {}

    def to_fetch(self, txids: Sequence[str]) -> list[str]:
        """Forget what left the mempool; the ids of ``txids`` to read this poll."""
        for gone in self._read.keys() - set(txids):
            del self._read[gone]
        unseen = [txid for txid in txids if txid not in self._read]
        room = max(self._max_txs - len(self._read), 0)
        fetch = unseen[: min(self._max_fetch, room)]
        if len(fetch) < len(unseen):
            log.info(
                "mempool larger than one poll fetches",
                chain=self.chain,
                unseen=len(unseen),
                fetched=len(fetch),
                held=len(self._read),
            )
        return fetch

    def add(self, txid: str, transfers: tuple[Transfer, ...]) -> None:
        self._read[txid] = transfers

    def view(self, txids: Sequence[str]) -> Mempool:
        """The transfers of ``txids`` read so far; complete when all were."""
        transfers = tuple(t for txid in txids for t in self._read.get(txid, ()))
        return Mempool(transfers, complete=all(txid in self._read for txid in txids))
