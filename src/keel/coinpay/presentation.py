"""How a payment looks to the outside: the merchant API object, webhook data, wallet URIs."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from keel.coinpay.assets import Coin, get_coin
from keel.coinpay.money import FIAT_EXPONENTS, format_units

if TYPE_CHECKING:
    from keel.coinpay.chains.config import ChainsConfig
    from keel.coinpay.payments import Payment


def event_data(row: Payment) -> dict[str, Any]:
    """The ``data`` of a webhook about this payment."""
    coin = get_coin(row.blockchain)
    return {
        "payment_id": row.id,
        "status": row.status,
        "amount": fiat_amount(row),
        "amount_crypto": format_units(row.crypto_amount, coin.decimals),
        "amount_received": format_units(row.received_amount, coin.decimals),
        "currency": row.currency,
        "blockchain": row.blockchain,
        "payment_address": row.payment_address,
        "destination_tag": row.destination_tag,
        "tx_hash": row.tx_hash,
        "merchant_tx_hash": row.forward_tx_hash,
        **settlement(row),
        "confirmations": row.confirmations,
        "paid_partial": row.paid_partial,
        "paid_over": row.paid_over,
        "paid_late": row.paid_late,
        "metadata": row.metadata,
    }


def payment_uri(row: Payment, chains: ChainsConfig | None = None) -> str:
    """The wallet URI customers scan: BIP21, EIP-681, Solana Pay, or XRPL's ``xrpl://`` with
    the destination tag in ``dt`` (ADR 0023). A live payment's names the network and token its
    chain is configured with (``chains``: a test network's EIP-155 id, a token contract of
    ``KEEL_COINPAY_<COIN>_CONTRACT``), so a wallet pays on the chain that is watched; a test
    payment's, mainnet's."""
    coin = get_coin(row.blockchain)
    if row.mode == "live" and chains is not None:
        config = chains.chain(coin.chain)
        contract = next((t.contract for t in config.tokens if t.coin == coin.symbol), None)
        coin = replace(
            coin,
            evm_chain_id=config.chain_id or coin.evm_chain_id,
            contract=contract or coin.contract,
        )
    amount = format_units(row.crypto_amount, coin.decimals)
    return _uri(coin, row.payment_address, row.crypto_amount, amount, row.destination_tag)


def _uri(coin: Coin, address: str, units: int, amount: str, tag: int | None = None) -> str:
    if coin.family.value in ("BTC", "LTC", "DOGE"):
        scheme = {"BTC": "bitcoin", "LTC": "litecoin", "DOGE": "dogecoin"}[coin.family.value]
        return f"{scheme}:{address}?amount={amount}"
    if coin.family.value == "BCH":
        return f"{address}?amount={amount}"  # CashAddr already carries "bitcoincash:"
    if coin.evm_chain_id is not None:
        if coin.contract:
            return (
                f"ethereum:{coin.contract}@{coin.evm_chain_id}/transfer"
                f"?address={address}&uint256={units}"
            )
        return f"ethereum:{address}@{coin.evm_chain_id}?value={units}"
    if coin.family.value == "SOL":
        token = f"&spl-token={coin.contract}" if coin.contract else ""
        return f"solana:{address}?amount={amount}{token}"
    if coin.family.value == "XRP":
        # Xaman's and XLS-2's form: a wallet that drops ``dt`` would pay no payment at all.
        dt = "" if tag is None else f"&dt={tag}"
        return f"xrpl://{address}?amount={amount}&network=XRPL{dt}"
    return f"web+cardano:{address}?amount={amount}"


def to_wire(row: Payment, chains: ChainsConfig | None = None) -> dict[str, Any]:
    """The payment object of CoinPayPortal's merchant API (plus our extra fields); ``chains``
    as for :func:`payment_uri`."""
    coin = get_coin(row.blockchain)
    return {
        "id": row.id,
        "business_id": row.business_id,
        "amount": fiat_amount(row),
        "currency": row.currency,
        "blockchain": row.blockchain,
        "crypto_amount": format_units(row.crypto_amount, coin.decimals),
        "crypto_amount_base_units": str(row.crypto_amount),
        "exchange_rate": str(row.rate),
        "payment_address": row.payment_address,
        "destination_tag": row.destination_tag,
        "payment_uri": payment_uri(row, chains),
        "status": row.status,
        "paid_partial": row.paid_partial,
        "paid_over": row.paid_over,
        "paid_late": row.paid_late,
        "amount_received": format_units(row.received_amount, coin.decimals),
        "confirmations": row.confirmations,
        "required_confirmations": row.required_confirmations,
        "tx_hash": row.tx_hash,
        "forward_tx_hash": row.forward_tx_hash,
        **settlement(row),
        "forwarding_reason": row.settlement_note,
        "description": row.description,
        "metadata": row.metadata,
        "mode": row.mode,
        "expires_at": iso(row.expires_at),
        "created_at": iso(row.created_at),
        "confirmed_at": iso(row.confirmed_at),
        "forwarded_at": iso(row.forwarded_at),
    }


def settlement(row: Payment) -> dict[str, str | None]:
    """How the received funds are split, in the coin's units, once the split is written (at
    ``forwarding``; null before): the platform's commission (``fee_amount``, as CoinPayPortal
    names it), the network fee the sweep pays from the merchant's part (0 for a token, whose
    fee is paid in the chain's coin by the platform), and what reaches the merchant."""
    if row.commission_amount is None:
        return {"fee_amount": None, "network_fee": None, "merchant_amount": None}
    decimals = get_coin(row.blockchain).decimals
    fee = row.network_fee
    merchant = None if fee is None else row.received_amount - row.commission_amount - fee
    return {
        "fee_amount": format_units(row.commission_amount, decimals),
        "network_fee": None if fee is None else format_units(fee, decimals),
        "merchant_amount": None if merchant is None else format_units(merchant, decimals),
    }


def fiat_amount(row: Payment) -> Decimal:
    amount: Decimal = row.amount
    return amount.quantize(Decimal(1).scaleb(-FIAT_EXPONENTS[row.currency]))


def iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
