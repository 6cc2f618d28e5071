"""Ethereum through Etherscan's V2 API (V1 was shut down on 2025-08-15), proxy module.

``GET <url>?chainid=1&module=proxy&action=<method>&…&apikey=…`` answers the node's JSON-RPC
reply, so :mod:`.evm` reads it as it reads a node. Etherscan's own failures come in another
envelope, HTTP 200 all the same::

    {"status": "0", "message": "NOTOK", "result": "Max calls per sec rate limit reached (5/sec)"}
    {"status": "0", "message": "NOTOK", "result": "Invalid API Key"}

and a proxy call may carry such a sentence as its ``result``. A rate-limit sentence is
SourceRateLimited; one about the API key or the chain id is SourceMisconfigured; any other is
SourceUnavailable.

The key travels in the query string (V2 takes it nowhere else), so it is kept out of every
message we raise, and out of httpx's own request log line (:class:`RedactApiKey`).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import httpx
from pydantic import SecretStr

from keel.coach.payments.adapters import evm, wire
from keel.coach.payments.adapters.base import default_breaker, guarded
from keel.coach.payments.errors import (
    SourceMisconfigured,
    SourceRateLimited,
    SourceUnavailable,
)
from keel.coach.payments.observed import Chain, ObservedPayment
from keel.core.resilience import CircuitBreaker

__all__ = ["DEFAULT_URL", "Etherscan", "RedactApiKey"]

DEFAULT_URL: Final = "https://api.etherscan.io/v2/api"
_API_KEY_PARAM: Final = re.compile(r"(?i)(apikey=)[^&\s\"']+")
_HEX: Final = re.compile(r"0x[0-9a-fA-F]*", re.ASCII)


class RedactApiKey(logging.Filter):
    """Rewrites ``apikey=…`` in a log record to ``apikey=[redacted]``: httpx logs each
    request's full URL (INFO, logger ``httpx``), query string included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg, record.args = _API_KEY_PARAM.sub(r"\1[redacted]", message), None
        return True


def _install_redaction() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactApiKey) for f in httpx_logger.filters):
        httpx_logger.addFilter(RedactApiKey())


class Etherscan:
    """:class:`~keel.coach.payments.adapters.base.PaymentSource` for ETH through Etherscan V2.

    ``client`` is the caller's (timeouts, closing); ``url`` the V2 endpoint; ``chain_id`` the
    chain asked for (1: Ethereum mainnet).
    """

    chain = Chain.ETH

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: SecretStr | None,
        *,
        url: str = DEFAULT_URL,
        chain_id: int = 1,
        name: str = "etherscan",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        _install_redaction()
        self.name = name
        self._client = client
        self._url = url
        self._api_key = api_key
        self._chain_id = chain_id
        self._breaker = breaker or default_breaker(name)

    async def observe(self, tx_hash: str) -> ObservedPayment:
        """Transaction ``tx_hash`` (``0x`` + 64 lower-case hex) as Etherscan sees it now."""
        return await guarded(
            self._breaker, lambda: evm.read_transaction(self._call, tx_hash, source=self.name)
        )

    async def _call(self, method: str, params: list[object]) -> Any:
        query = {"chainid": str(self._chain_id), "module": "proxy", "action": method}
        if method in ("eth_getTransactionByHash", "eth_getTransactionReceipt"):
            query["txhash"] = str(params[0])
        elif method == "eth_getBlockByNumber":
            query["tag"], query["boolean"] = str(params[0]), "true" if params[1] else "false"
        if self._api_key is not None:
            query["apikey"] = self._api_key.get_secret_value()
        _, reply = await wire.request_json(
            self._client, "GET", self._url, source=self.name, params=query
        )
        if isinstance(reply, dict) and "jsonrpc" not in reply and "status" in reply:
            if reply.get("status") != "1":
                raise self._failure(method, reply.get("result"), reply.get("message"))
            return reply.get("result")
        result = wire.read_reply(reply, None, method, self.name)
        if isinstance(result, str) and not _HEX.fullmatch(result):
            raise self._failure(method, result, None)  # a sentence where data belongs
        return result

    def _failure(self, method: str, result: Any, message: Any) -> SourceUnavailable:
        sentence = str(result if isinstance(result, str) else message)[:160]
        if self._api_key is not None:  # never echo the key, even if a proxy ever did
            sentence = sentence.replace(self._api_key.get_secret_value(), "[redacted]")
        detail = f"{self.name}: {method}: {sentence}"
        lowered = sentence.lower()
        if "rate limit" in lowered:
            return SourceRateLimited(detail)
        if "api key" in lowered or "chainid" in lowered:
            return SourceMisconfigured(detail)
        return SourceUnavailable(detail)
