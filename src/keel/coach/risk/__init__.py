"""The risk radar: rug-pull and honeypot scans of a token through GoPlus, scored, cached,
and compared between scans for /watch.

The bot builds one radar at boot and calls it per command::

    scanner = risk.GoPlusClient(http, base_url=settings.goplus_url,
                                app_key=settings.goplus_app_key,
                                app_secret=settings.goplus_app_secret)
    radar = risk.RiskRadar(scanner, cache, ttl_seconds=settings.risk_cache_seconds)

    token = risk.parse_query("0x… bsc")              # BadAddress / UnsupportedChain
    report, score = await radar.scan(token.chain, token.address)
    text = risk.format_report(report, score)           # Telegram HTML

    changes = risk.diff(risk.RiskReport.from_json(row.report), report)   # /watch
    if changes:
        text = risk.format_alert(report, changes, score)

Modules: ``addresses`` (what was pasted), ``report`` (the typed report), ``parsing`` (GoPlus
JSON to report), ``scoring`` (points and levels), ``goplus`` (the HTTP adapter), ``radar``
(cache and single flight), ``changes`` (watch diffs) and ``messages`` (Telegram text).
"""

from keel.coach.risk.addresses import CHAINS, SOLANA, Token, chain_name, parse_query, parse_token
from keel.coach.risk.changes import Change, Severity, diff
from keel.coach.risk.errors import (
    BadAddress,
    MalformedReply,
    RateLimited,
    RiskError,
    ScanPending,
    ScanUnavailable,
    StoredReportInvalid,
    TokenNotFound,
    UnsupportedChain,
)
from keel.coach.risk.goplus import GoPlusClient, TokenScanner
from keel.coach.risk.messages import format_alert, format_report
from keel.coach.risk.radar import RiskRadar
from keel.coach.risk.report import RiskReport
from keel.coach.risk.scoring import Level, Reason, RiskScore, score

__all__ = [
    "CHAINS",
    "SOLANA",
    "BadAddress",
    "Change",
    "GoPlusClient",
    "Level",
    "MalformedReply",
    "RateLimited",
    "Reason",
    "RiskError",
    "RiskRadar",
    "RiskReport",
    "RiskScore",
    "ScanPending",
    "ScanUnavailable",
    "Severity",
    "StoredReportInvalid",
    "Token",
    "TokenNotFound",
    "TokenScanner",
    "UnsupportedChain",
    "chain_name",
    "diff",
    "format_alert",
    "format_report",
    "parse_query",
    "parse_token",
    "score",
]
