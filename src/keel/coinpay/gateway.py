"""Everything coinpay's services need, wired once (by ``bootstrap.build``) and passed in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.coinpay import tags
from keel.coinpay.addresses import IndexAllocator
from keel.coinpay.chains.base import ChainSender, ChainWatcher
from keel.coinpay.chains.config import ChainsConfig
from keel.coinpay.chains.config import load as load_chains
from keel.coinpay.chains.scanner import Scanner
from keel.coinpay.chains.simulated import SimulatedChain
from keel.coinpay.custody import Custody
from keel.coinpay.rates import RateProvider
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets import Network
from keel.core.clock import Clock
from keel.core.crypto import SecretBox
from keel.core.jobs import JobQueue
from keel.core.lookups import Lookups
from keel.core.ratelimit import RateLimiter, SqlRateLimiter


@dataclass
class Gateway:
    settings: CoinpaySettings
    engine: AsyncEngine
    # The hottest reads (an API key, a payment by id), prepared; see keel.core.lookups.
    lookups: Lookups
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    box: SecretBox
    custody: Custody
    rates: RateProvider
    allocator: IndexAllocator
    queue: JobQueue
    # Every API request: in memory or Redis, never a database write.
    limiter: RateLimiter
    # Few, security-relevant limits (key creation, wallet changes, logins), in the database.
    security_limiter: SqlRateLimiter
    http: httpx.AsyncClient
    simulated_chain: SimulatedChain
    # Per mode ("test", "live"): who watches chains and who sweeps funds.
    watchers: Mapping[str, Mapping[str, ChainWatcher]] = field(default_factory=dict)
    # Live chains read block by block, by chain ("ETH", "LTC"); each feeds watchers["live"].
    scanners: Mapping[str, Scanner] = field(default_factory=dict)
    # Per mode and chain: who signs and sends sweeps (payments.sweeping); none, no sweep.
    senders: Mapping[str, Mapping[str, ChainSender]] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The network of each live UTXO chain not on mainnet ("LTC": Network.REGTEST), from
    # KEEL_COINPAY_<CHAIN>_NETWORK; see network().
    networks: Mapping[str, Network] = field(default_factory=dict)
    # The live chains' configuration (KEEL_COINPAY_<CHAIN>_*): chain ids and token contracts
    # for wallet URIs. Mainnet's when nothing is configured.
    live_chains: ChainsConfig = field(default_factory=lambda: load_chains({}))
    # Where XRP destination tags are drawn from (tags.draw_tag; a test makes them predictable).
    destination_tags: Callable[[], int] = tags.draw_tag

    def network(self, mode: str, chain: str) -> Network:
        """The network whose address forms ``chain`` uses in ``mode``: a live chain's
        configured one; always mainnet in test mode, whose chains are simulated."""
        return self.networks_of(mode).get(chain, Network.MAINNET)

    def networks_of(self, mode: str) -> Mapping[str, Network]:
        """The chains of ``mode`` not on mainnet, by chain (none in test mode)."""
        return self.networks if mode == "live" else {}
