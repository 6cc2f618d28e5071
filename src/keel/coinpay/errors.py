"""Errors of coinpay. Each has a stable ``code`` that clients may switch on.

CoinpayError (KeelError)
├── UnsupportedCoin        blockchain symbol we do not support (400)
├── InvalidAmount          amount is not a positive, sane number (400)
├── UnsupportedCurrency    fiat currency we have no rate for (400)
├── InvalidAddress         a payout address that does not parse for its chain (400)
├── InvalidMnemonic        a BIP39 mnemonic that does not validate (400)
├── InvalidExtendedKey     an xpub/zpub that does not parse for its chain (400)
├── NoWalletForCoin        the business has no payout wallet or xpub for the coin (422)
├── AmountBelowMinimumOutput  the amount is less than the chain lets one output carry (422)
├── PaymentNotFound        no such payment for this key (404)
├── BusinessNotFound       no such business for this key (404)
├── NotTestPayment         simulate called on a live payment (409)
├── PaymentClosed          the payment no longer accepts this action (409)
├── IdempotencyMismatch    Idempotency-Key reused with another body (422)
├── RateUnavailable        no fresh exchange rate from any provider (503)
├── IndexExhausted         an HD derivation family ran out of indexes (503)
├── SeedMissing            the master seed was not initialised (503)
├── InvalidChainConfig     a KEEL_COINPAY_<CHAIN>_… / <COIN>_CONTRACT value is wrong (at boot)
├── ChainUnavailable       no configured node of a chain answered (503)
│   └── BlockNotFound      the nodes have no block at that height (yet) (503)
├── RpcCallRejected        a node answered a call with its own error (a bug or bad input)
│   └── RestCallRejected   a REST provider answered a request with a 4xx of its own
├── SweepRefused           a sweep cannot be signed as asked (dust, wrong key, contract payee)
├── SweepReverted          a sweep transaction was mined and failed: no value moved
└── AccountActivating      the business's XRP account is being funded with its reserve (409)
"""

from __future__ import annotations

from keel.core import errors


class CoinpayError(errors.KeelError):
    """A coinpay error."""


class UnsupportedCoin(CoinpayError, errors.BadRequest):
    """Unsupported blockchain."""

    code = "unsupported_coin"


class InvalidAmount(CoinpayError, errors.BadRequest):
    """The amount must be a positive number within limits."""

    code = "invalid_amount"


class UnsupportedCurrency(CoinpayError, errors.BadRequest):
    """Unsupported fiat currency."""

    code = "unsupported_currency"


class InvalidAddress(CoinpayError, errors.BadRequest):
    """The address is not valid for this chain."""

    code = "invalid_address"


class InvalidMnemonic(CoinpayError, errors.BadRequest):
    """The mnemonic is not a valid BIP39 phrase."""

    code = "invalid_mnemonic"


class InvalidExtendedKey(CoinpayError, errors.BadRequest):
    """The extended public key is not valid for this chain."""

    code = "invalid_extended_key"


class NoWalletForCoin(CoinpayError, errors.Unprocessable):
    """The business has no wallet for this coin."""

    code = "no_wallet_for_coin"


class AmountBelowMinimumOutput(CoinpayError, errors.Unprocessable):
    """The amount is below the smallest output the chain accepts (Cardano's minimum UTxO
    value): no wallet could send it, and its sweep could not be sent on."""

    code = "amount_below_minimum_output"


class ChainNotWatched(CoinpayError, errors.Unprocessable):
    """Live payments on this chain are not available: this server watches no node for it."""

    code = "chain_not_watched"


class PaymentNotFound(CoinpayError, errors.NotFound):
    """Payment not found."""

    code = "payment_not_found"


class BusinessNotFound(CoinpayError, errors.NotFound):
    """Business not found."""

    code = "business_not_found"


class NotTestPayment(CoinpayError, errors.Conflict):
    """Only payments created with a test key can be simulated."""

    code = "not_test_payment"


class PaymentClosed(CoinpayError, errors.Conflict):
    """The payment no longer accepts this action."""

    code = "payment_closed"


class IdempotencyMismatch(CoinpayError, errors.Unprocessable):
    """The Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"


class RateUnavailable(CoinpayError, errors.Unavailable):
    """No fresh exchange rate is available."""

    code = "rate_unavailable"


class IndexExhausted(CoinpayError, errors.Unavailable):
    """The HD derivation family has no indexes left."""

    code = "hd_index_exhausted"


class SeedMissing(CoinpayError, errors.Unavailable):
    """The master seed is not initialised; run `keel coinpay init`."""

    code = "seed_missing"


class InvalidChainConfig(CoinpayError):
    """A chain's configuration (RPC URLs, confirmations, token contract) is invalid."""

    code = "invalid_chain_config"


class ChainUnavailable(CoinpayError, errors.Unavailable):
    """No configured node of the chain answered; retry later."""

    code = "chain_unavailable"


class BlockNotFound(ChainUnavailable):
    """The chain's nodes have no block at that height (yet); retry later."""

    code = "block_not_found"


class RpcCallRejected(CoinpayError):
    """A node answered a JSON-RPC call with an error of its own (bad parameters, unknown
    transaction): the call is wrong, not the node, so no other provider is tried."""

    code = "rpc_call_rejected"

    def __init__(self, detail: str, *, rpc_code: int, rpc_message: str) -> None:
        super().__init__(detail, rpc_code=rpc_code)
        self.rpc_code = rpc_code
        self.rpc_message = rpc_message


class RestCallRejected(RpcCallRejected):
    """A REST provider (Esplora) answered a request with an error of its own (404 "Block not
    found", 400 from the node behind it): the request asks for what is not there or is wrong,
    so no other provider is tried. ``status`` is the HTTP status, ``message`` the body."""

    code = "rest_call_rejected"

    def __init__(self, detail: str, *, status: int, message: str) -> None:
        super().__init__(detail, rpc_code=status, rpc_message=message)
        self.status = status
        self.message = message


class SweepRefused(CoinpayError):
    """A sweep was not signed: the funds do not cover the commission and the network fee
    (dust), the derived key does not control the payment address, or a payee cannot take a
    plain transfer. Nothing was sent; the sweeper logs it and tries again next round."""

    code = "sweep_refused"


class SweepWaiting(CoinpayError):
    """A sweep cannot be signed yet, for a reason that passes by itself: the network fee a token
    sweep needs was sent to the payment address from the platform's fee wallet and has not
    landed. The sweeper tries again next round; past the stuck threshold it is counted."""

    code = "sweep_waiting"


class SweepReverted(CoinpayError):
    """A sweep transaction was mined with a failed status: it paid its fee and moved no value.
    The sweeper records it on the sweep (``last_error``) and it shows as stuck."""

    code = "sweep_reverted"


class AccountActivating(CoinpayError, errors.Conflict):
    """The business's receiving account on a chain with an account reserve (XRP) is being
    activated from the platform's fee wallet: a payment smaller than the reserve sent to it now
    would fail on-chain. Retry in a few seconds."""

    code = "account_activating"
