"""A chain the test writes block by block: what a scanner reads from a node, scripted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer


@dataclass
class ScriptedChain:
    """A chain the test writes block by block (the scanner's view of a node): the canonical
    blocks, a mempool, and how many times each block was read."""

    chain: str = "ETH"
    blocks: list[Block] = field(default_factory=list)
    mempool: list[Transfer] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.blocks.append(Block(BlockRef(0, "genesis", "none"), ()))

    def mine(self, *transfers: Transfer) -> BlockRef:
        parent = self.blocks[-1].ref
        ref = BlockRef(parent.height + 1, uuid.uuid4().hex, parent.hash)
        self.blocks.append(Block(ref, tuple(transfers)))
        mined = {(t.tx_hash, t.position) for t in transfers}
        self.mempool = [t for t in self.mempool if (t.tx_hash, t.position) not in mined]
        return ref

    def reorg(self, depth: int) -> list[Transfer]:
        """Drop the newest ``depth`` blocks; returns their transfers."""
        dropped = self.blocks[-depth:]
        del self.blocks[-depth:]
        return [t for b in dropped for t in b.transfers]

    async def tip(self) -> BlockRef:
        return self.blocks[-1].ref

    async def block(self, height: int) -> Block:
        self.reads.append(height)
        return self.blocks[height]

    async def pending(self) -> Mempool:
        return Mempool(tuple(self.mempool))
