"""The seams every chain integration implements.

Two sides. A payment reads the transfers to its address through :class:`ChainWatcher` (the
simulator answers from its own table; a real chain from what the scanner stored). A real chain
is read block by block through a :class:`ChainSource`: the scanner asks for each new block
once, matches its transfers against the open addresses with one index lookup, and stores the
matches with the block they are in, so the cost per block does not grow with the number of
watched addresses, and confirmations and reorgs follow from the stored block hashes and the tip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from keel.coinpay.lifecycle import Deposit


class ChainWatcher(Protocol):
    """Reports transfers to addresses on one network."""

    async def deposits_to(self, chain: str, address: str, memo: str | None = None) -> list[Deposit]:
        """Every transfer to ``address`` on ``chain`` as the network sees it now (amounts in
        base units, current confirmations, reverted ones flagged), oldest first; with ``memo``
        (an XRP destination tag), only the transfers carrying it. A provider outage raises
        ``keel.core.errors.Unavailable``; "not seen yet" is an empty list."""
        ...


@dataclass(frozen=True, slots=True)
class BlockRef:
    """Where a block sits: its height, its hash and its parent's hash (hex, as the node
    prints them), so a scanner can tell when the chain it followed was replaced."""

    height: int
    hash: str
    parent_hash: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Value moved to an address by one output (UTXO), one call or log (EVM), one instruction
    (Solana) or one payment (XRP) of a transaction.

    ``coin`` is the coin code of ``keel.coinpay.assets`` (``ETH``, ``USDC_ETH``, ``LTC``);
    ``position`` tells apart several transfers in one transaction (output index, log index;
    ``-1`` for an EVM transaction's own value, which has neither);
    ``address`` is in the canonical form ``keel.coinpay.wallets.address_validation`` gives
    (EIP-55 for EVM); ``memo`` is a destination tag where the chain has one (XRP).
    """

    coin: str
    tx_hash: str
    position: int
    address: str
    amount: int
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class Block:
    ref: BlockRef
    transfers: tuple[Transfer, ...]


@dataclass(frozen=True, slots=True)
class Mempool:
    """Transfers waiting in the mempool. ``complete`` says the source listed all of them: only
    then does a transfer missing from it (and from every block) count as dropped."""

    transfers: tuple[Transfer, ...] = ()
    complete: bool = True


class ChainSource(Protocol):
    """One network (``chain``: ``ETH``, ``LTC``, ``SOL``) read through its nodes.

    Implementations talk to providers over real clients with timeouts, retry a failing call
    on the next configured provider, and raise ``keel.core.errors.Unavailable`` when none
    answers; they never decide what a transfer means for a payment.
    """

    chain: str

    async def tip(self) -> BlockRef:
        """The newest block the providers agree exists."""
        ...

    async def block(self, height: int) -> Block:
        """The block at ``height`` on the providers' current chain, with every transfer in it
        of a coin this source watches (all recipients: matching is the scanner's job). Above
        the tip it raises ``keel.coinpay.errors.BlockNotFound`` (an ``Unavailable``).

        A height below the tip with no block (a skipped Solana slot) is answered as an empty
        block whose ``hash`` and ``parent_hash`` are both the hash of the last block before
        it: the empty height carries its predecessor's hash forward, so each height's
        ``parent_hash`` is still the ``hash`` of the height below and a reorg still shows."""
        ...

    async def pending(self) -> Mempool:
        """Transfers in the mempool not yet in a block (0-conf). A chain with no mempool worth
        watching answers ``Mempool(complete=False)``: nothing is ever concluded from it."""
        ...


@dataclass(frozen=True, slots=True)
class SweepInput:
    """One payment's funds to move: everything at ``address`` (``received`` base units), of which
    ``commission`` goes to the platform and the rest, less its share of the network fee, to
    ``merchant_address``."""

    payment_id: str
    coin: str
    address: str
    derivation_index: int
    received: int
    commission: int
    merchant_address: str


@dataclass(frozen=True, slots=True)
class SignedSweep:
    """A transaction signed and not yet sent. ``fees`` is each swept payment's share of the
    network fee, taken from its merchant's part; ``raw`` holds no secret (a signed transaction
    reveals no key) and is stored before it is broadcast, so a restart sends the very same
    bytes. A batching sender leaves out a payment it cannot sweep yet rather than hold back the
    others: ``left_out`` names each with the reason (only the payments in ``fees`` are swept)."""

    tx_hash: str
    raw: str
    fees: dict[str, int]
    left_out: Mapping[str, str] = field(default_factory=dict)


class ChainSender(Protocol):
    """Signs and sends sweeps on one network.

    ``sign`` spends everything at the inputs' addresses (the same outputs, or the same account
    nonce, every time it is asked), so two signings of one sweep can never both confirm (an
    :class:`ExpiringSender`'s cannot be, and is signed again only once expired). It sends
    nothing of the payments' funds; the one thing it may send is the platform's own network fee
    ahead of a token sweep (an EVM gas top-up), raising ``SweepWaiting`` until it has landed.
    ``broadcast`` treats "already known" and "already in a block" as success.
    """

    chain: str
    batch_limit: int  # payments one transaction may sweep (UTXO: many; account chains: one)

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep: ...

    async def broadcast(self, raw: str) -> None: ...

    async def confirmations(self, tx_hash: str) -> int | None:
        """How deep the transaction is (0 in the mempool); None when the node does not know it."""
        ...


@runtime_checkable
class MultiTxSender(ChainSender, Protocol):
    """A sender whose sweep is several transactions (an account chain pays the commission and
    the merchant from one address, one after the other): the sweep is as deep as the shallowest
    of them, and it failed if any of them failed, not only the last one."""

    def tx_hashes(self, raw: str) -> list[str]:
        """The hash of each transaction in the stored ``raw``, in sending order."""
        ...


@runtime_checkable
class ExpiringSender(ChainSender, Protocol):
    """A sender whose signed transactions expire unsent (Solana: a transaction names a recent
    blockhash and is void about 150 blocks later). Its ``sign`` cannot be pure, so a stored
    sweep that never landed is signed again, but only once :meth:`expired` says the stored
    bytes can never be included: then at most one of the two signings can ever confirm."""

    async def expired(self, tx_hash: str, raw: str) -> bool:
        """True when the stored transaction ``raw`` did not land and never can; False while it
        may still land or has landed. Raises ChainUnavailable when the nodes cannot tell."""
        ...
