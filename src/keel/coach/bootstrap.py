"""Wire coach once: the database (migrated), the HTTP client, the model router, the
conversation store, budgets, the risk radar, payment checks and billing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.coach import personas as persona_data
from keel.coach.adapters.coinpay import CoinpayClient
from keel.coach.billing import direct
from keel.coach.billing.coinpay import Outcome, Plan
from keel.coach.bot.paying import Paying
from keel.coach.bot.service import Coach
from keel.coach.budgets import Budgets, Limits
from keel.coach.conversations import Conversations
from keel.coach.payments.adapters.base import PaymentSource
from keel.coach.payments.adapters.etherscan import Etherscan
from keel.coach.payments.adapters.evm_rpc import EvmRpc
from keel.coach.payments.adapters.solana_rpc import SolanaRpc
from keel.coach.payments.adapters.tronscan import Tronscan
from keel.coach.payments.observed import Chain
from keel.coach.payments.verifier import PaymentVerifier
from keel.coach.personas import Personas
from keel.coach.risk import GoPlusClient, RiskRadar
from keel.coach.routing import ModelRouter, RouterConfig
from keel.coach.settings import CoachSettings
from keel.coach.watching import Watches
from keel.core import db, migrations
from keel.core.cache import Cache, open_cache
from keel.core.clock import Clock, SystemClock
from keel.core.logging import get_logger
from keel.core.replicated import Database

log = get_logger("keel.coach")

MIGRATIONS = "keel.coach:migrations"
VERSION_TABLE = "coach_alembic_version"
# The models' own timeouts bound each call; this only caps a connection pool wait.
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def database_url(configured: str, data_dir: str = "var") -> str:
    return configured or f"sqlite+aiosqlite:///{data_dir}/coach.db"


async def open_database(url: str) -> AsyncEngine:
    """An engine on ``url`` with the schema migrated to head."""
    migrating = db.create_engine(url, pool_size=1)
    try:
        await migrations.upgrade(migrating, MIGRATIONS, VERSION_TABLE)
    finally:
        await migrating.dispose()
    return db.create_engine(url)


def payment_sources(
    settings: CoachSettings, http: httpx.AsyncClient
) -> dict[Chain, list[PaymentSource]]:
    """Where each chain's transactions are read, in the order tried: a node of our own first,
    then the explorer."""
    eth: list[PaymentSource] = []
    if settings.eth_rpc_url:
        eth.append(EvmRpc(http, settings.eth_rpc_url, chain_id=settings.eth_chain_id))
    if settings.etherscan_api_key is not None:
        eth.append(Etherscan(http, settings.etherscan_api_key, url=settings.etherscan_url))
    sources: dict[Chain, list[PaymentSource]] = {
        Chain.TRON: [Tronscan(http, settings.tronscan_api_key, url=settings.tronscan_url)]
    }
    if eth:
        sources[Chain.ETH] = eth
    if settings.solana_rpc_url:
        sources[Chain.SOL] = [SolanaRpc(http, settings.solana_rpc_url)]
    return sources


async def _no_notice(outcome: Outcome) -> None:
    """Until the bot is running there is no one to tell."""


@dataclass
class Wired:
    """What the app, the bot and the CLI work with."""

    settings: CoachSettings
    database: Database
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    http: httpx.AsyncClient
    cache: Cache
    personas: Personas
    conversations: Conversations
    budgets: Budgets
    router: ModelRouter
    coach: Coach
    plan: Plan
    radar: RiskRadar
    watches: Watches
    paying: Paying
    coinpay: CoinpayClient | None = None
    # Tells a user their subscription is unlocked; the bot replaces it once it runs.
    notify: Callable[[Outcome], Awaitable[None]] = _no_notice

    async def close(self) -> None:
        await self.http.aclose()
        await self.cache.aclose()
        await self.database.primary.dispose()


async def open_coach(
    settings: CoachSettings, *, data_dir: str = "var", clock: Clock | None = None
) -> Wired:
    engine = await open_database(database_url(settings.database_url, data_dir))
    database = Database(engine, name="coach")
    clock = clock or SystemClock()
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, trust_env=False)
    cache = open_cache(
        name="coach", primary_url=settings.redis_url, secondary_url=settings.redis_secondary_url
    )
    personas = persona_data.shipped()
    conversations = Conversations(
        database,
        personas,
        keep=settings.history_messages,
        idle=timedelta(minutes=settings.session_idle_minutes),
    )
    budgets = Budgets(
        database,
        free=Limits(settings.daily_tokens_free, settings.daily_scans_free),
        pro=Limits(settings.daily_tokens_pro, settings.daily_scans_pro),
    )
    router = ModelRouter(
        http,
        RouterConfig(
            base_url=settings.llm_base_url,
            text_models=settings.text_models,
            vision_models=settings.vision_models,
            describe_models=settings.describe_models,
            api_key=settings.llm_api_key,
            read_timeout_seconds=settings.llm_read_timeout_seconds,
            answer_timeout_seconds=settings.llm_answer_timeout_seconds,
            referer=settings.public_url or None,
        ),
    )
    radar = RiskRadar(
        GoPlusClient(
            http,
            base_url=settings.goplus_url,
            timeout_seconds=settings.goplus_timeout_seconds,
            app_key=settings.goplus_app_key,
            app_secret=settings.goplus_app_secret,
        ),
        cache,
        ttl_seconds=settings.risk_cache_seconds,
    )
    watches = Watches(database, radar, interval=timedelta(seconds=settings.watch_interval_seconds))
    coinpay = None
    if settings.coinpay_url and settings.coinpay_api_key is not None:
        coinpay = CoinpayClient(
            http,
            base_url=settings.coinpay_url,
            api_key=settings.coinpay_api_key,
            business_id=settings.coinpay_business_id,
        )
    sessions = db.session_factory(engine)
    plan = Plan.from_settings(settings)
    paying = Paying(
        sessions=sessions,
        plan=plan,
        offers=direct.offers(settings),
        verifier=PaymentVerifier(
            sessions,
            payment_sources(settings, http),
            confirmations={Chain.ETH: settings.eth_confirmations},
            clock=clock,
        ),
        coinpay=coinpay,
        clock=clock,
    )
    coach = Coach(
        conversations=conversations,
        budgets=budgets,
        router=router,
        personas=personas,
        radar=radar,
        watches=watches,
        watch_limits={"free": settings.watches_free, "pro": settings.watches_pro},
        clock=clock,
    )
    return Wired(
        settings=settings,
        database=database,
        sessions=sessions,
        clock=clock,
        http=http,
        cache=cache,
        personas=personas,
        conversations=conversations,
        budgets=budgets,
        router=router,
        coach=coach,
        plan=plan,
        radar=radar,
        watches=watches,
        paying=paying,
        coinpay=coinpay,
    )
