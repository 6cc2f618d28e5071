"""Solana through JSON-RPC ``getTransaction`` (any RPC node; no indexer needed).

``getTransaction(sig, {encoding: "jsonParsed", maxSupportedTransactionVersion: 0,
commitment: "finalized"})``: a finalized transaction. A null answer is asked again at
``confirmed``: found there, it is real but not final yet (wait); null again, there is none.
``maxSupportedTransactionVersion: 0`` is needed to be answered about versioned (v0)
transactions at all, which most wallets now send.

What moved is read from balances, not instructions, so any way of paying counts (a plain
transfer, a wallet's program, a swap that ends in our account):

* SOL: ``meta.postBalances[i] - meta.preBalances[i]`` for each account key (lamports). The
  keys are ``transaction.message.accountKeys`` (jsonParsed lists lookup-table keys there too;
  other encodings list them in ``meta.loadedAddresses``, writable then read-only).
* SPL tokens: ``meta.post/preTokenBalances`` per token account: the mint says the token, the
  ``owner`` the wallet it belongs to (the invoice's address is a wallet, not a token account);
  ``uiTokenAmount.amount`` is base units (``uiAmount`` is a float and never read).

``meta.err`` non-null: the transaction failed and moved nothing but its fee.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from keel.coach.payments.adapters import wire
from keel.coach.payments.adapters.base import default_breaker, guarded
from keel.coach.payments.errors import MalformedResponse, TransactionNotFound
from keel.coach.payments.observed import (
    NATIVE,
    Chain,
    ObservedPayment,
    Token,
    Transfer,
    TxStatus,
    canonical_address,
)
from keel.core.resilience import CircuitBreaker

__all__ = ["SolanaRpc"]


class SolanaRpc:
    """:class:`~keel.coach.payments.adapters.base.PaymentSource` for SOL and SPL tokens.

    ``client`` is the caller's (timeouts, closing); ``url`` a Solana JSON-RPC endpoint.
    """

    chain = Chain.SOL

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        name: str = "solana_rpc",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self._rpc = wire.JsonRpc(client, url, source=name)
        self._breaker = breaker or default_breaker(name)

    async def observe(self, tx_hash: str) -> ObservedPayment:
        """Transaction (signature) ``tx_hash`` as the node sees it now."""
        return await guarded(self._breaker, lambda: self._observe(tx_hash))

    async def _observe(self, signature: str) -> ObservedPayment:
        result = await self._get(signature, "finalized")
        finalized = result is not None
        if result is None:
            result = await self._get(signature, "confirmed")
        if result is None:
            raise TransactionNotFound(f"{self.name}: no transaction {signature}")
        return self._read(signature, result, finalized)

    async def _get(self, signature: str, commitment: str) -> Any:
        options = {
            "encoding": "jsonParsed",
            "maxSupportedTransactionVersion": 0,
            "commitment": commitment,
        }
        return await self._rpc.call("getTransaction", [signature, options])

    def _read(self, signature: str, result: Any, finalized: bool) -> ObservedPayment:
        source = self.name
        meta = wire.field(result, "meta", source)
        if not isinstance(meta, dict):
            raise MalformedResponse(f"{source}: the node kept no status for {signature}")
        block_time = result.get("blockTime")
        if block_time is None:
            raise MalformedResponse(f"{source}: no blockTime for {signature}")
        seconds = wire.json_int(block_time, "blockTime", source)
        message = wire.field(wire.field(result, "transaction", source), "message", source)
        keys = _account_keys(message, meta, source)
        if not keys:
            raise MalformedResponse(f"{source}: a transaction without accounts")
        payer = keys[0]
        failed = meta.get("err") is not None
        transfers = (
            ()
            if failed
            else _sol_moves(keys, meta, payer, source) + _token_moves(keys, meta, payer, source)
        )
        return ObservedPayment(
            chain=Chain.SOL,
            tx_hash=signature,
            status=TxStatus.FAILED if failed else TxStatus.SUCCEEDED,
            sender=payer,
            transfers=transfers,
            block_time=datetime.fromtimestamp(seconds, UTC),
            confirmations=None,
            finalized=finalized,
        )


def _account_keys(message: Any, meta: dict[str, Any], source: str) -> list[str]:
    raw = wire.field(message, "accountKeys", source)
    if not isinstance(raw, list):
        raise MalformedResponse(f"{source}: accountKeys is not a list")
    keys = [wire.field(k, "pubkey", source) if isinstance(k, dict) else k for k in raw]
    loaded = meta.get("loadedAddresses")
    balances = meta.get("preBalances")
    if isinstance(loaded, dict) and isinstance(balances, list) and len(keys) < len(balances):
        keys += list(loaded.get("writable", [])) + list(loaded.get("readonly", []))
    return [_address(k, "account key", source) for k in keys]


def _sol_moves(
    keys: list[str], meta: dict[str, Any], payer: str, source: str
) -> tuple[Transfer, ...]:
    pre, post = meta.get("preBalances"), meta.get("postBalances")
    if not isinstance(pre, list) or not isinstance(post, list) or not len(pre) == len(post):
        raise MalformedResponse(f"{source}: pre/postBalances do not pair up")
    if len(pre) != len(keys):
        raise MalformedResponse(f"{source}: {len(keys)} accounts but {len(pre)} balances")
    moves = []
    for key, before, after in zip(keys, pre, post, strict=True):
        gained = wire.json_int(after, "postBalance", source) - wire.json_int(
            before, "preBalance", source
        )
        if gained > 0:
            moves.append(Transfer(NATIVE, payer, key, gained))
    return tuple(moves)


def _token_moves(
    keys: list[str], meta: dict[str, Any], payer: str, source: str
) -> tuple[Transfer, ...]:
    before = _token_balances(meta.get("preTokenBalances"), keys, source)
    after = _token_balances(meta.get("postTokenBalances"), keys, source)
    moves = []
    for account, (mint, owner, amount) in after.items():
        held = before.get(account)
        gained = amount - (held[2] if held is not None and held[0] == mint else 0)
        if gained > 0 and owner is not None:
            moves.append(Transfer(Token(mint), payer, owner, gained))
    return tuple(moves)


def _token_balances(
    entries: Any, keys: list[str], source: str
) -> dict[int, tuple[str, str | None, int]]:
    """Token account index -> (mint, owner, base units)."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise MalformedResponse(f"{source}: token balances are not a list")
    balances = {}
    for entry in entries:
        index = wire.json_int(wire.field(entry, "accountIndex", source), "accountIndex", source)
        if not 0 <= index < len(keys):
            raise MalformedResponse(f"{source}: token balance of account {index} out of range")
        mint = _address(wire.field(entry, "mint", source), "mint", source)
        owner = entry.get("owner")  # absent in transactions older than the field
        ui = wire.field(entry, "uiTokenAmount", source)
        if isinstance(ui, dict) and "amount" in ui:
            amount = wire.base_units(ui["amount"], "token amount", source)
        else:  # never uiAmount (a float): the exact display string, scaled
            amount = wire.display_units(
                wire.field(ui, "uiAmountString", source),
                wire.field(ui, "decimals", source),
                "token amount",
                source,
            )
        holder = None if owner is None else _address(owner, "owner", source)
        balances[index] = (mint, holder, amount)
    return balances


def _address(value: Any, what: str, source: str) -> str:
    try:
        return canonical_address(Chain.SOL, wire.text(value, what, source))
    except ValueError as exc:
        raise MalformedResponse(f"{source}: {what} is not an address: {value!r:.60}") from exc
