"""Wire coinpay once: engine, migrations, master key, adapters, workers."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx

from keel.coinpay import models, notify, payments, rates, tags
from keel.coinpay.addresses import IndexAllocator, SequenceAllocator, system_family_key
from keel.coinpay.assets import DEFAULT_CONFIRMATIONS
from keel.coinpay.chains import config as chain_config
from keel.coinpay.chains import senders as chain_senders
from keel.coinpay.chains.base import ChainSource, ChainWatcher
from keel.coinpay.chains.cardano_sender import CardanoSender
from keel.coinpay.chains.evm_sender import EvmSender
from keel.coinpay.chains.scanner import ObservedChain, Scanner
from keel.coinpay.chains.simulated import SimulatedChain, SimulatedSender
from keel.coinpay.chains.solana_sender import SolanaSender
from keel.coinpay.chains.sources import open_source
from keel.coinpay.chains.utxo_sender import UtxoSender
from keel.coinpay.chains.xrp_sender import XrpSender
from keel.coinpay.custody import Custody
from keel.coinpay.gateway import Gateway
from keel.coinpay.payments import activation
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets import Family, Network
from keel.core import db, migrations, netguard
from keel.core.clock import Clock, SystemClock
from keel.core.crypto import SecretBox, load_or_create_key_file, parse_key
from keel.core.jobs import Job, JobQueue, Periodic, Worker
from keel.core.logging import get_logger
from keel.core.lookups import Lookups
from keel.core.ratelimit import RateLimitStore, SqlRateLimiter, open_limiter

log = get_logger("keel.coinpay")

MIGRATIONS = "keel.coinpay:migrations"
VERSION_TABLE = "coinpay_alembic_version"
EXPIRY_SWEEP = timedelta(seconds=10)
CONFIG_CHANGE_WINDOW_SECONDS = 3600
# A delivery is one request bounded by ``webhook_timeout_seconds`` (deliver() enforces it as a
# whole-attempt deadline) plus two short writes that open and close the attempt in the log.
# Its lease must outlast all of that, or a live worker's attempt is claimed and sent a second
# time; every second beyond is time a crashed worker's deliveries wait to come back. The
# margin covers those writes queueing briefly for the database's write lock; a pathological
# wait (SQLite's busy timeout is 30 s) costs at worst a duplicate send, which at-least-once
# delivery allows (receivers dedupe on the event id) and the job's fencing token keeps from
# being recorded twice as done.
DELIVERY_LEASE_MARGIN = timedelta(seconds=5)


def delivery_lease(settings: CoinpaySettings) -> timedelta:
    """How long a claimed webhook delivery stays invisible to other workers."""
    return timedelta(seconds=math.ceil(settings.webhook_timeout_seconds)) + DELIVERY_LEASE_MARGIN


def database_url(settings: CoinpaySettings, data_dir: str = "var") -> str:
    return settings.database_url or f"sqlite+aiosqlite:///{data_dir}/coinpay.db"


def load_box(settings: CoinpaySettings) -> SecretBox:
    """The master key from ``KEEL_COINPAY_MASTER_KEY``, else from (or into) its key file,
    which lives in the user's config directory, never beside the data."""
    if settings.master_key is not None:
        return SecretBox(parse_key(settings.master_key.get_secret_value()))
    encoded, created = load_or_create_key_file(settings.master_key_file)
    if created:
        log.warning(
            "master_key_created",
            path=str(settings.master_key_file),
            advice="back this file up: without it the seed and webhook secrets are unreadable",
        )
    return SecretBox(parse_key(encoded))


async def open_gateway(
    settings: CoinpaySettings,
    *,
    data_dir: str = "var",
    clock: Clock | None = None,
    rate_provider: rates.RateProvider | None = None,
    allocator: IndexAllocator | None = None,
    rate_limits: RateLimitStore | None = None,
    migrate: bool = True,
    sources: Sequence[ChainSource] | None = None,
    environ: Mapping[str, str] | None = None,
    networks: Mapping[str, Network] | None = None,
) -> Gateway:
    """Everything coinpay runs on. ``sources`` are the live chains' nodes: each is scanned
    block by block and watched for live payments; a chain without one takes no live payment.
    When not given they are opened from ``KEEL_COINPAY_<CHAIN>_RPC_URLS`` in ``environ``
    (``os.environ``), which also gives ``KEEL_COINPAY_<CHAIN>_CONFIRMATIONS`` and
    ``KEEL_COINPAY_<CHAIN>_NETWORK``; with ``sources`` given, ``networks`` says which live UTXO
    chains are not on mainnet (``{"LTC": Network.REGTEST}``)."""
    closers: list[Callable[[], Awaitable[None]]] = []
    chains: chain_config.ChainsConfig | None = None
    networks = dict(networks or {})
    if sources is None:
        chains = chain_config.load(os.environ if environ is None else environ)
        networks = {name: config.network for name, config in chains.chains.items()}
        opened = [open_source(chains.chain(chain)) for chain in chains.configured]
        closers.extend(source.aclose for source in opened)
        sources = opened
        # A chain's own variable wins over the JSON map of KEEL_COINPAY_CONFIRMATIONS.
        chosen = {
            chain: config.confirmations
            for chain, config in chains.chains.items()
            if config.confirmations != DEFAULT_CONFIRMATIONS[chain]
        }
        settings = settings.model_copy(
            update={"confirmations": {**settings.confirmations, **chosen}}
        )
    clock = clock or SystemClock()
    # Its reads are lookups by key and short indexed lists: inline on the loop (core.db).
    engine = db.create_engine(database_url(settings, data_dir), inline_reads=True)
    if migrate:
        await migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE)
    sessions = db.session_factory(engine)
    box = load_box(settings)
    custody = Custody(box, sessions)
    # Live sweeps of the configured chains that have a sender; keys are derived when signing.
    live_senders: dict[str, EvmSender | UtxoSender | CardanoSender | SolanaSender | XrpSender] = {}
    if chains is not None:
        live_senders = chain_senders.open_senders(
            chains, custody.root, sessions=sessions, platform_wallets=settings.platform_wallets
        )
    closers.extend(sender.aclose for sender in live_senders.values())
    http = netguard.guarded_client(
        allow_private=settings.webhook_allow_private, timeout=settings.webhook_timeout_seconds
    )
    rate_http = httpx.AsyncClient(timeout=10.0)
    provider = rate_provider or rates.build_rate_provider(
        settings.rates, rate_http, max_age_seconds=settings.rate_max_age_seconds
    )
    if allocator is None:
        allocator = SequenceAllocator(engine)
        await allocator.prepare(system_family_key(f) for f in Family)
    simulated = SimulatedChain(sessions, clock)
    test_watchers: dict[str, ChainWatcher] = dict.fromkeys(DEFAULT_CONFIRMATIONS, simulated)
    limiter = open_limiter(
        rate_limits or RateLimitStore(),
        namespace="coinpay",
        window_seconds=settings.rate_limit_window_seconds,
        table=models.rate_limits,
        sessions=sessions,
        clock=clock,
    )
    scanners = {source.chain: Scanner(source, sessions, clock) for source in sources}
    observed = ObservedChain(sessions)
    live_watchers: dict[str, ChainWatcher] = dict.fromkeys(scanners, observed)
    lookups = Lookups(engine)
    return Gateway(
        settings=settings,
        engine=engine,
        lookups=lookups,
        sessions=sessions,
        clock=clock,
        box=box,
        custody=custody,
        rates=provider,
        allocator=allocator,
        queue=JobQueue(models.jobs, sessions, clock),
        limiter=limiter,
        security_limiter=SqlRateLimiter(
            models.rate_limits, sessions, clock, window_seconds=CONFIG_CHANGE_WINDOW_SECONDS
        ),
        http=http,
        simulated_chain=simulated,
        watchers={"test": test_watchers, "live": live_watchers},
        scanners=scanners,
        senders={
            "test": {c: SimulatedSender(c) for c in DEFAULT_CONFIRMATIONS},
            "live": live_senders,
        },
        networks={c: n for c, n in networks.items() if n is not Network.MAINNET},
        live_chains=chains or chain_config.load(environ or {}),
        closers=[
            *closers,
            http.aclose,
            rate_http.aclose,
            limiter.aclose,
            lookups.aclose,
            engine.dispose,
        ],
    )


async def close_gateway(gw: Gateway) -> None:
    for close in gw.closers:
        await close()


def build_worker(gw: Gateway) -> Worker:
    async def expire() -> None:
        await payments.expire_due(gw)

    async def watch() -> None:
        await payments.watch_active(gw)

    async def forward(job: Job) -> None:
        await payments.forward(gw, job)

    async def activate(job: Job) -> None:
        await activation.activate(gw, job)

    async def sample_queue() -> None:
        await gw.queue.count_ready()

    def scan(scanner: Scanner) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            await payments.after_scan(gw, await scanner.step())

        return step

    def sweep(mode: str, chains: Sequence[str]) -> Callable[[], Awaitable[None]]:
        async def rounds() -> None:
            for chain in chains:
                sweeps = payments.sweeper(gw, mode, chain)
                if sweeps is not None:
                    await sweeps.round()

        return rounds

    sweep_every = timedelta(seconds=gw.settings.watch_interval_seconds)
    sweeps = [
        # One task per live chain, as for scans; the simulated chains share one.
        *(Periodic(f"sweep:{c}", sweep_every, sweep("live", [c])) for c in gw.senders["live"]),
        Periodic("sweep:test", sweep_every, sweep("test", list(gw.senders["test"]))),
    ]
    # One periodic task per chain: a chain's outage or slow node holds up no other chain.
    scans = [
        Periodic(f"scan:{chain}", timedelta(seconds=gw.settings.watch_interval_seconds), scan(s))
        for chain, s in gw.scanners.items()
    ]

    deliverer = notify.Deliverer(
        gw.sessions, gw.box, gw.clock, gw.http, timeout=gw.settings.webhook_timeout_seconds
    )
    return Worker(
        gw.queue,
        {
            notify.DELIVER_JOB: deliverer,
            payments.FORWARD_JOB: forward,
            tags.ACTIVATE_JOB: activate,
        },
        periodic=[
            Periodic("expire", EXPIRY_SWEEP, expire),
            Periodic("watch", timedelta(seconds=gw.settings.watch_interval_seconds), watch),
            Periodic("queue-depth", timedelta(seconds=15), sample_queue),
            *scans,
            *sweeps,
        ],
        lease=timedelta(seconds=gw.settings.job_lease_seconds),
        leases={notify.DELIVER_JOB: delivery_lease(gw.settings)},
        poll_interval=gw.settings.worker_poll_seconds,
    )


@asynccontextmanager
async def running_worker(gw: Gateway) -> AsyncIterator[Worker]:
    worker = build_worker(gw)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task
