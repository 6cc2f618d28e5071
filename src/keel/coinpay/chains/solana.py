"""Solana read slot by slot over its JSON-RPC (ADR 0022).

A *height* here is a slot. Per slot, whatever the number of watched addresses:

* ``block(slot)``: ``getBlock(slot, {encoding: jsonParsed, transactionDetails: full,
  maxSupportedTransactionVersion: 0, rewards: false})``. Transfers are read from what each
  successful transaction (``meta.err`` null) did to balances, not from its instructions, so a
  payment made through any program (a wallet's plain transfer, a DEX route, a multisig) counts:

  - **SOL**: every account whose ``postBalances`` exceed its ``preBalances`` received the
    difference in lamports (position: the account's index in the transaction).
  - **SPL tokens** of a configured mint: every token account whose ``postTokenBalances`` amount
    exceeds its ``preTokenBalances`` amount (absent: 0). The transfer's address is the token
    account's **owner**, the payment address, when the account is the owner's **associated**
    token account of that mint (``spl.associated_token_address``, the account the sweep spends
    from; position: ``TOKEN_POSITION + `` the account's index). Tokens that reached any other
    account the owner holds are set aside (:meth:`SolanaSource.set_aside`): the sweep could not
    move them, so no payment is credited with them, and the scanner logs and counts those paying
    a payment address for an operator. Amounts are the exact ``amount`` strings in base units,
    never ``uiAmount`` floats.

  A failed transaction moved nothing but its fee and is skipped.
* **Skipped slots.** A slot whose leader produced no block has none: nodes answer ``-32007`` /
  ``-32009`` (skipped, below the root) or ``-32004`` (not available: skipped above the root,
  or not reached yet). Which one is settled by ``getBlocks(slot, tip)``, the produced slots of
  the chain the node confirmed: a slot below the tip missing from it was skipped. A skipped slot
  is answered as an empty block carrying forward the hash of the last block before it
  (``hash == parent_hash`` = the next produced block's ``previousBlockhash``): the rule
  ``keel.coinpay.chains.base`` gives every chain with empty heights, so the scanner's parent
  check holds across it and a reorg is still seen. The next produced block, fetched to learn
  that hash, is kept for the scanner's next call, and the rest of the run of skipped slots is
  answered without asking again.
* ``tip()``: ``getSlot`` then that slot's block header (``transactionDetails: none``).
* ``pending()``: Solana has no public mempool; nothing is concluded from it.

Commitment ``confirmed`` throughout: a block voted on by two thirds of the stake, about a
second behind the leader. ``processed`` blocks are rolled back routinely (forks are part of
normal operation); ``finalized`` adds about 13 s and makes the scanner's reorg path dead code.
The payment's confirmation policy then counts slots on top (ADR 0022 says why this is enough).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from solders.pubkey import Pubkey

from keel.coinpay.chains import spl
from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer
from keel.coinpay.chains.config import Token
from keel.coinpay.chains.rpc import MalformedResponse, RpcClient
from keel.coinpay.chains.scanner import SetAside
from keel.coinpay.errors import BlockNotFound, RpcCallRejected

__all__ = [
    "COMMITMENT",
    "MAX_SKIPPED_RUN",
    "NOT_ASSOCIATED",
    "SKIPPED_CODES",
    "TOKEN_POSITION",
    "UNAVAILABLE_CODES",
    "SolanaSource",
    "associated_account",
    "block_transfers",
]

COMMITMENT: Final = "confirmed"
# A token balance's position: past any account index (a transaction has at most 256 accounts),
# so a SOL and a token transfer to one transaction never share a (tx, position) key.
TOKEN_POSITION: Final = 1000
# getBlock: SLOT_SKIPPED, LONG_TERM_STORAGE_SLOT_SKIPPED: the slot has no block, for good.
SKIPPED_CODES: Final = frozenset({-32007, -32009})
# getBlock: BLOCK_NOT_AVAILABLE, BLOCK_STATUS_NOT_AVAILABLE_YET: skipped above the root, or
# not reached yet. The call's own answer about that slot, not a failing node.
UNAVAILABLE_CODES: Final = frozenset({-32004, -32014})
# Why a token deposit is set aside: it reached a token account of the owner other than its
# associated one, which the sweep does not read.
NOT_ASSOCIATED: Final = "not_associated_token_account"
# Blocks whose set-aside deposits are kept until the scanner asks (it asks right after reading).
_ASIDE_KEPT: Final = 64
# The longest run of skipped slots one getBlocks call looks across (a few leaders' worth is
# common; a longer stall is seen over several calls).
MAX_SKIPPED_RUN: Final = 500

_BLOCK_OPTIONS: Final = {
    "encoding": "jsonParsed",
    "transactionDetails": "full",
    "maxSupportedTransactionVersion": 0,
    "rewards": False,
    "commitment": COMMITMENT,
}
_HEADER_OPTIONS: Final = {
    "encoding": "json",
    "transactionDetails": "none",
    "maxSupportedTransactionVersion": 0,
    "rewards": False,
    "commitment": COMMITMENT,
}
_BASE58: Final = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,88}", re.ASCII)
_DIGITS: Final = re.compile(r"[0-9]{1,20}", re.ASCII)


@dataclass(frozen=True, slots=True)
class _Skipped:
    """Slots ``first`` to ``last`` were skipped; the block before them has ``hash``."""

    first: int
    last: int
    hash: str


class SolanaSource:
    """:class:`~keel.coinpay.chains.base.ChainSource` of Solana (module docstring).

    ``tokens`` are the SPL coins to report (``chains.config`` gives their mints with
    overrides).
    """

    def __init__(self, chain: str, rpc: RpcClient, tokens: Sequence[Token] = ()) -> None:
        self.chain = chain
        self._rpc = rpc
        self._mints = {token.contract: token for token in tokens}
        if len(self._mints) != len(tokens):
            raise ValueError(f"{chain}: two tokens share a mint")
        self._tip: int | None = None
        self._skipped: _Skipped | None = None
        self._ahead: Block | None = None  # the produced block after the last skipped run
        self._aside: dict[tuple[int, str], tuple[SetAside, ...]] = {}

    async def aclose(self) -> None:
        """Close the RPC client's connections."""
        await self._rpc.aclose()

    async def tip(self) -> BlockRef:
        """The newest confirmed slot and its block's hash (and its parent's)."""
        slot: int = await self._rpc.call(
            "getSlot", [{"commitment": COMMITMENT}], parse=_slot_number
        )
        try:
            ref: BlockRef = await self._rpc.call(
                "getBlock",
                [slot, _HEADER_OPTIONS],
                parse=lambda result: _block_ref(result, slot),
                rejected_codes=SKIPPED_CODES | UNAVAILABLE_CODES,
            )
        except RpcCallRejected as exc:
            if exc.rpc_code not in SKIPPED_CODES | UNAVAILABLE_CODES:
                raise
            # Failed over between the two calls to a node that is behind the first.
            raise BlockNotFound(
                f"{self.chain}: no block at the tip {slot}", chain=self.chain
            ) from exc
        self._tip = slot
        return ref

    async def block(self, height: int) -> Block:
        """The transfers of slot ``height`` (an empty block carrying its predecessor's hash
        when the slot was skipped); BlockNotFound above the tip or when the node cannot tell
        yet, ChainUnavailable when no provider answers."""
        if height < 0:
            raise ValueError("height must be >= 0")
        if self._ahead is not None and self._ahead.ref.height == height:
            ahead, self._ahead = self._ahead, None
            return ahead
        skipped = self._skipped
        if skipped is not None and skipped.first <= height <= skipped.last:
            return Block(BlockRef(height, skipped.hash, skipped.hash), ())
        self._skipped = self._ahead = None
        try:
            return await self._fetch(height)
        except RpcCallRejected as exc:
            if exc.rpc_code not in SKIPPED_CODES | UNAVAILABLE_CODES:
                raise
        return await self._skipped_slot(height)

    async def pending(self) -> Mempool:
        """Nothing, and nothing to conclude from it: Solana has no public mempool (a
        transaction goes straight to the next leaders)."""
        return Mempool(complete=False)

    def set_aside(self, ref: BlockRef) -> tuple[SetAside, ...]:
        """The token deposits of the block ``ref`` (as :meth:`block` returned it) that reached
        a token account other than the owner's associated one: in no ``Block.transfers``, as
        the sweep could not move them (``scanner.SetsAside``). Each is answered once."""
        return self._aside.pop((ref.height, ref.hash), ())

    async def _fetch(self, height: int) -> Block:
        """``getBlock(height)``; RpcCallRejected with the node's code when it has none."""
        block: Block = await self._rpc.call(
            "getBlock",
            [height, _BLOCK_OPTIONS],
            parse=lambda result: self._block(result, height),
            rejected_codes=SKIPPED_CODES | UNAVAILABLE_CODES,
        )
        return block

    async def _skipped_slot(self, height: int) -> Block:
        """The empty block of a slot that has none, once the node's produced slots show it was
        skipped; BlockNotFound when they do not (not reached yet, or a node behind)."""
        tip = self._tip
        if tip is None or height >= tip:
            raise BlockNotFound(f"{self.chain} has no block at slot {height} yet", chain=self.chain)
        last = min(tip, height + MAX_SKIPPED_RUN)
        produced: list[int] = await self._rpc.call(
            "getBlocks", [height, last, {"commitment": COMMITMENT}], parse=_slots
        )
        after = [slot for slot in produced if slot > height]
        if height in produced or not after:
            raise BlockNotFound(
                f"{self.chain}: slot {height} is not available from the node yet",
                chain=self.chain,
            )
        try:
            following = await self._fetch(after[0])
        except RpcCallRejected as exc:
            if exc.rpc_code not in SKIPPED_CODES | UNAVAILABLE_CODES:
                raise
            # Failed over between the calls to a node that has not got that block.
            raise BlockNotFound(
                f"{self.chain}: slot {after[0]} vanished", chain=self.chain
            ) from exc
        carried = following.ref.parent_hash
        self._skipped = _Skipped(height, after[0] - 1, carried)
        self._ahead = following
        return Block(BlockRef(height, carried, carried), ())

    def _block(self, result: Any, height: int) -> Block:
        ref = _block_ref(result, height)
        transactions = result.get("transactions")
        if not isinstance(transactions, list):
            raise MalformedResponse("a block without its transactions")
        transfers: list[Transfer] = []
        aside: list[SetAside] = []
        for tx in transactions:
            credited, other = block_transfers(self.chain, tx, self._mints)
            transfers.extend(credited)
            aside.extend(other)
        if aside:
            while len(self._aside) >= _ASIDE_KEPT:
                del self._aside[next(iter(self._aside))]  # the oldest: never asked for
            self._aside[(ref.height, ref.hash)] = tuple(aside)
        return Block(ref, tuple(transfers))


def block_transfers(
    chain: str, tx: Any, mints: dict[str, Token]
) -> tuple[list[Transfer], list[SetAside]]:
    """The transfers one ``getBlock`` transaction (jsonParsed) made: positive SOL balance
    changes, and positive token balance changes of ``mints`` credited to the token account's
    owner when it is the owner's associated token account; and, set aside, those of any other
    token account (module docstring). Nothing for a failed transaction."""
    if not isinstance(tx, dict):
        raise MalformedResponse("a transaction is not an object")
    meta, body = tx.get("meta"), tx.get("transaction")
    if not isinstance(meta, dict) or not isinstance(body, dict):
        raise MalformedResponse("a transaction without meta (the node keeps no status)")
    if meta.get("err") is not None:
        return [], []  # it paid its fee and moved nothing else
    signatures = body.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise MalformedResponse("a transaction without a signature")
    signature = _base58(signatures[0])
    keys = [_account_key(key) for key in body["message"]["accountKeys"]]
    pre, post = _lamports(meta["preBalances"]), _lamports(meta["postBalances"])
    if not len(pre) == len(post) == len(keys):
        raise MalformedResponse("balances do not match the transaction's accounts")
    transfers = [
        Transfer(chain, signature, index, keys[index], after - before)
        for index, (before, after) in enumerate(zip(pre, post, strict=True))
        if after > before
    ]
    aside: list[SetAside] = []
    if mints:
        before_tokens = _token_balances(meta.get("preTokenBalances"), len(keys), mints)
        for index, (mint, owner, amount) in sorted(
            _token_balances(meta.get("postTokenBalances"), len(keys), mints).items()
        ):
            earlier = before_tokens.get(index)
            held = earlier[2] if earlier is not None and earlier[0] == mint else 0
            if amount > held:
                coin = mints[mint].coin
                found = Transfer(coin, signature, TOKEN_POSITION + index, owner, amount - held)
                if keys[index] == associated_account(owner, mint):
                    transfers.append(found)
                else:
                    aside.append(SetAside(found, NOT_ASSOCIATED, keys[index]))
    return transfers, aside


@lru_cache(maxsize=4096)
def associated_account(owner: str, mint: str) -> str:
    """The associated token account of ``owner`` for ``mint`` (base58), the one the sweep
    spends from (``spl.associated_token_address``); cached, as a busy owner (a DEX vault's
    authority) receives tokens in most blocks."""
    try:
        keys = Pubkey.from_string(owner), Pubkey.from_string(mint)
    except ValueError as exc:
        raise MalformedResponse(f"not a public key: {owner!r:.60} or {mint!r:.60}") from exc
    return str(spl.associated_token_address(*keys))


def _token_balances(
    entries: Any, accounts: int, mints: dict[str, Token]
) -> dict[int, tuple[str, str, int]]:
    """Account index -> (mint, owner, amount) of the token balances of watched mints."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise MalformedResponse("token balances are not a list")
    out: dict[int, tuple[str, str, int]] = {}
    for entry in entries:
        mint = entry.get("mint")
        if mint not in mints:
            continue
        index = entry["accountIndex"]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < accounts:
            raise MalformedResponse(f"token balance of account {index!r:.20}")
        owner = entry.get("owner")
        if owner is None:
            raise MalformedResponse("a token balance without its owner (node too old)")
        amount = entry["uiTokenAmount"]["amount"]
        if not isinstance(amount, str) or _DIGITS.fullmatch(amount) is None:
            raise MalformedResponse(f"token amount {amount!r:.30}")
        out[index] = (mint, _base58(owner), int(amount))
    return out


def _account_key(key: Any) -> str:
    """An account of ``message.accountKeys``: an object with ``pubkey`` (jsonParsed, lookup
    table accounts included) or a plain string (json)."""
    return _base58(key["pubkey"] if isinstance(key, dict) else key)


def _lamports(values: Any) -> list[int]:
    if not isinstance(values, list):
        raise MalformedResponse("balances are not a list")
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MalformedResponse(f"a balance of {value!r:.30} lamports")
    return values


def _base58(value: Any) -> str:
    if not isinstance(value, str) or _BASE58.fullmatch(value) is None:
        raise MalformedResponse(f"not a base58 key, hash or signature: {value!r:.90}")
    return value


def _slot_number(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedResponse(f"not a slot: {value!r:.30}")
    return value


def _slots(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise MalformedResponse("getBlocks returned no list")
    return [_slot_number(slot) for slot in value]


def _block_ref(result: Any, height: int) -> BlockRef:
    if not isinstance(result, dict):
        raise MalformedResponse(f"no block at slot {height}")
    parent_slot = _slot_number(result["parentSlot"])
    if parent_slot >= height and height != 0:
        raise MalformedResponse(f"block {height} names a later parent slot {parent_slot}")
    return BlockRef(height, _base58(result["blockhash"]), _base58(result["previousBlockhash"]))
