"""Ethereum through a JSON-RPC node (ours, or a provider's URL).

The node's chain id is checked once (``eth_chainId``) before its first answer is believed: a
URL pointing at a testnet or another EVM chain would otherwise accept payments made with free
or cheaper coins. Reading the transaction itself is :mod:`.evm`'s.
"""

from __future__ import annotations

from typing import Any

import httpx

from keel.coach.payments.adapters import evm, wire
from keel.coach.payments.adapters.base import default_breaker, guarded
from keel.coach.payments.errors import SourceMisconfigured
from keel.coach.payments.observed import Chain, ObservedPayment
from keel.core.resilience import CircuitBreaker

__all__ = ["MAINNET_CHAIN_ID", "EvmRpc"]

MAINNET_CHAIN_ID = 1


class EvmRpc:
    """:class:`~keel.coach.payments.adapters.base.PaymentSource` for ETH over JSON-RPC.

    ``client`` is the caller's (its timeouts apply to each call, and the caller closes it);
    ``chain_id`` is the chain the node must serve (1: Ethereum mainnet).
    """

    chain = Chain.ETH

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        chain_id: int = MAINNET_CHAIN_ID,
        name: str = "eth_rpc",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self._rpc = wire.JsonRpc(client, url, source=name)
        self._chain_id = chain_id
        self._chain_checked = False
        self._breaker = breaker or default_breaker(name)

    async def observe(self, tx_hash: str) -> ObservedPayment:
        """Transaction ``tx_hash`` (``0x`` + 64 lower-case hex) as the node sees it now."""
        return await guarded(self._breaker, lambda: self._observe(tx_hash))

    async def _observe(self, tx_hash: str) -> ObservedPayment:
        if not self._chain_checked:
            served = wire.hex_int(await self._call("eth_chainId", []), "eth_chainId", self.name)
            if served != self._chain_id:
                raise SourceMisconfigured(
                    f"{self.name}: the node serves chain {served}, not {self._chain_id}"
                )
            self._chain_checked = True
        return await evm.read_transaction(self._call, tx_hash, source=self.name)

    async def _call(self, method: str, params: list[object]) -> Any:
        return await self._rpc.call(method, params)
