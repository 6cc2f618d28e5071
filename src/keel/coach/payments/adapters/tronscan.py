"""TRON (USDT TRC-20, and TRX) through Tronscan's ``transaction-info``.

``GET <base>/api/transaction-info?hash=<64 hex>``, header ``TRON-PRO-API-KEY`` when we have
a key. What is read from the answer:

* ``contractRet``: ``"SUCCESS"``, else the transaction failed (``REVERT``, ``OUT_OF_ENERGY``…),
  as does ``revert: true``; ``confirmed``: solidified by the super representatives, i.e.
  final (``finalized``); ``timestamp``: the block's time in milliseconds.
* ``trc20TransferInfo[]`` (every TRC-20 Transfer event; ``tokenTransferInfo``, the main one
  alone, when the list is absent): ``from_address``, ``to_address``, ``contract_address`` and
  ``amount_str``, which is already base units (10 USDT is ``"10000000"``, ``decimals`` 6). The
  token is its contract address; the ``symbol`` field is never read, since anyone can name a
  token "USDT". TRC-10 entries (a numeric token id, no contract address) are not tokens we take.
* ``contractType`` 1 (TransferContract): a TRX transfer, ``contractData.amount`` in sun.

An unknown hash is answered with an empty object. Tronscan refuses excess calls with HTTP 403
and ``{"code": 403, "message": "request too quickly, please retry later."}`` or with a JSON
``Error`` sentence: both are SourceRateLimited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from pydantic import SecretStr

from keel.coach.payments.adapters import wire
from keel.coach.payments.adapters.base import default_breaker, guarded
from keel.coach.payments.errors import (
    MalformedResponse,
    SourceMisconfigured,
    SourceRateLimited,
    SourceUnavailable,
    TransactionNotFound,
)
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

__all__ = ["DEFAULT_URL", "USDT_CONTRACT", "Tronscan"]

DEFAULT_URL: Final = "https://apilist.tronscanapi.com"
USDT_CONTRACT: Final = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
_TRANSFER_CONTRACT: Final = 1  # contractType of a plain TRX transfer


class Tronscan:
    """:class:`~keel.coach.payments.adapters.base.PaymentSource` for TRON through Tronscan.

    ``client`` is the caller's (timeouts, closing); ``url`` Tronscan's API root.
    """

    chain = Chain.TRON

    def __init__(
        self,
        client: httpx.AsyncClient,
        api_key: SecretStr | None = None,
        *,
        url: str = DEFAULT_URL,
        name: str = "tronscan",
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self._client = client
        self._url = url.rstrip("/") + "/api/transaction-info"
        self._api_key = api_key
        self._breaker = breaker or default_breaker(name)

    async def observe(self, tx_hash: str) -> ObservedPayment:
        """Transaction ``tx_hash`` (64 lower-case hex) as Tronscan sees it now."""
        return await guarded(self._breaker, lambda: self._observe(tx_hash))

    async def _observe(self, tx_hash: str) -> ObservedPayment:
        headers = {}
        if self._api_key is not None:
            headers["TRON-PRO-API-KEY"] = self._api_key.get_secret_value()
        status, body = await wire.request_json(
            self._client,
            "GET",
            self._url,
            source=self.name,
            params={"hash": tx_hash},
            headers=headers,
            accept_status=frozenset({403}),
        )
        if not isinstance(body, dict):
            raise MalformedResponse(f"{self.name}: the answer is not an object")
        if status == 403 or "Error" in body:
            raise self._failure(status, body)
        if not body or ("hash" not in body and "contractRet" not in body):
            raise TransactionNotFound(f"{self.name}: no transaction {tx_hash}")
        if str(body.get("hash", tx_hash)).lower() != tx_hash:
            raise MalformedResponse(f"{self.name}: answered about another transaction")
        return self._read(tx_hash, body)

    def _read(self, tx_hash: str, body: dict[str, Any]) -> ObservedPayment:
        source = self.name
        result = body.get("contractRet")
        sender = _address(wire.field(body, "ownerAddress", source), "ownerAddress", source)
        if result is None:  # seen before its block: nothing is known of its outcome yet
            return ObservedPayment(
                chain=Chain.TRON,
                tx_hash=tx_hash,
                status=TxStatus.PENDING,
                sender=sender,
                transfers=(),
                block_time=None,
                confirmations=None,
                finalized=False,
            )
        millis = wire.json_int(wire.field(body, "timestamp", source), "timestamp", source)
        confirmed = wire.field(body, "confirmed", source)
        if not isinstance(confirmed, bool):
            raise MalformedResponse(f"{source}: confirmed is not a boolean")
        succeeded = result == "SUCCESS" and body.get("revert") is not True
        block_time = datetime.fromtimestamp(millis // 1000, UTC)
        return ObservedPayment(
            chain=Chain.TRON,
            tx_hash=tx_hash,
            status=TxStatus.SUCCEEDED if succeeded else TxStatus.FAILED,
            sender=sender,
            transfers=_transfers(body, source) if succeeded else (),
            block_time=block_time + timedelta(milliseconds=millis % 1000),
            confirmations=None,
            finalized=confirmed,
        )

    def _failure(self, status: int, body: dict[str, Any]) -> SourceUnavailable:
        sentence = str(body.get("Error") or body.get("message") or body)[:160]
        detail = f"{self.name}: HTTP {status}: {sentence}"
        lowered = sentence.lower()
        if "key" in lowered and "rate" not in lowered:
            return SourceMisconfigured(detail)
        if status == 403 or "rate" in lowered or "too quickly" in lowered:
            return SourceRateLimited(detail)
        return SourceUnavailable(detail)


def _transfers(body: dict[str, Any], source: str) -> tuple[Transfer, ...]:
    moves: list[Transfer] = []
    if body.get("contractType") == _TRANSFER_CONTRACT:
        data = wire.field(body, "contractData", source)
        moves.append(
            Transfer(
                NATIVE,
                _address(wire.field(data, "owner_address", source), "owner_address", source),
                _address(wire.field(data, "to_address", source), "to_address", source),
                wire.json_int(wire.field(data, "amount", source), "amount", source),
            )
        )
    events = body.get("trc20TransferInfo")
    if not events and isinstance(body.get("tokenTransferInfo"), dict):
        events = [body["tokenTransferInfo"]]  # the same event: never count both
    if events is not None and not isinstance(events, list):
        raise MalformedResponse(f"{source}: trc20TransferInfo is not a list")
    for event in events or []:
        contract = wire.field(event, "contract_address", source)
        try:
            token = Token(canonical_address(Chain.TRON, wire.text(contract, "contract", source)))
        except ValueError:
            continue  # a TRC-10 token id: no contract, not a token we take
        moves.append(
            Transfer(
                token,
                _address(wire.field(event, "from_address", source), "from_address", source),
                _address(wire.field(event, "to_address", source), "to_address", source),
                wire.base_units(wire.field(event, "amount_str", source), "amount_str", source),
            )
        )
    return tuple(moves)


def _address(value: Any, what: str, source: str) -> str:
    try:
        return canonical_address(Chain.TRON, wire.text(value, what, source))
    except ValueError as exc:
        raise MalformedResponse(f"{source}: {what} is not an address: {value!r:.60}") from exc
