"""Real nodes for the chain-source tests (see tests/chains_nodes.py)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from keel.coinpay.chains.rpc import breaker_name, provider_label
from tests.chains_nodes import anvil, chain_nodes, litecoind

__all__ = ["anvil", "breaker_state", "chain_nodes", "litecoind", "provider_errors"]

OPEN = 2.0


def breaker_state(chain: str, url: str) -> float | None:
    """``keel_circuit_state`` of the provider at ``url``: 0 closed, 1 half-open, 2 open."""
    name = breaker_name(chain, provider_label(url))
    return REGISTRY.get_sample_value("keel_circuit_state", {"name": name})


def provider_errors(chain: str, url: str, kind: str) -> float:
    labels = {"chain": chain, "provider": provider_label(url), "kind": kind}
    return REGISTRY.get_sample_value("coinpay_rpc_errors_total", labels) or 0.0
