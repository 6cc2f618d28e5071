"""Sweeps on Solana, SOL and SPL tokens: signed here, sent through its nodes (ADR 0022).

One payment, one transaction (``batch_limit`` 1):

* **SOL.** Signed by the payment address's key alone (``m/44'/501'/i'/0'``), which pays the
  fee: it sends the commission to the platform wallet and ``received - commission - fee`` to
  the merchant, leaving the address at exactly 0 lamports (a system account may hold 0 or at
  least the rent-exempt minimum, nothing between). The fee is the node's ``getFeeForMessage``
  for the very message (5,000 lamports a signature today; no priority fee is added); when the
  node cannot price it (it answers null for a blockhash it has not seen) the base fee of
  ``LAMPORTS_PER_SIGNATURE`` per signature is used, which is what a transaction without a
  compute-budget instruction pays. A surplus at the address (a late extra transfer) below the
  rent-exempt minimum could not stay behind, so it joins the platform's part (logged); a
  larger one stays at the address for an operator (logged). A payee account that does not
  exist yet must be paid at least the rent-exempt minimum, or the runtime refuses the whole
  transaction: such a sweep is refused here instead (dust).
* **SPL tokens.** The fee payer is the platform's Solana fee wallet (``HDRoot.fee_wallet``), so
  a payment address never needs SOL: the transaction creates the merchant's and the platform's
  associated token accounts if missing (idempotent, rent paid by the fee wallet),
  ``transfer_checked`` the merchant's part and the commission out of the payment address's
  associated token account, then closes that account, its rent going back to the fee wallet.
  The merchant gets exactly ``received - commission`` of the token; the payment's network fee
  in the token is 0 (the fee wallet's SOL paid it). Refused: a fee wallet too poor to pay the
  fee and the new accounts' rent, a Token-2022 account, fewer tokens than received. A surplus
  of tokens stays in the (then not closed) account, logged.

**Expiry and signing again.** A transaction names a recent blockhash and is void once the
chain's block height passes that blockhash's ``lastValidBlockHeight`` (about 150 blocks,
a minute). So signing is not pure: the stored ``raw`` is the base64 transaction and, on a
second line, its ``lastValidBlockHeight``, and :meth:`SolanaSender.expired` says when the stored
one can never land: the node's *finalized* block height is past it (no block built from then on
accepts it, and a node that lags cannot claim this), the node no longer accepts the blockhash,
and the signature is in no block (``getSignatureStatuses`` with the transaction history). Only
then does the sweeper sign the payment again (``keel.coinpay.payments.sweeping``).

**Keys** are derived from the custody root at signing time, checked against the address, and
never put in a message, log or repr.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.token.state import TokenAccount
from solders.transaction import Transaction

from keel.coinpay.chains import spl
from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.chains.config import MAX_CONFIRMATIONS, ChainConfig, Token
from keel.coinpay.chains.rpc import (
    DEFAULT_TIMEOUT_SECONDS,
    MalformedResponse,
    RpcClient,
    default_breaker,
)
from keel.coinpay.chains.solana import COMMITMENT
from keel.coinpay.errors import (
    InvalidAddress,
    InvalidChainConfig,
    RpcCallRejected,
    SweepRefused,
    SweepReverted,
)
from keel.coinpay.wallets import Family, HDRoot, validate_address
from keel.core.logging import get_logger
from keel.core.resilience import CircuitBreaker

__all__ = [
    "FINALIZED_DEPTH",
    "LAMPORTS_PER_SIGNATURE",
    "SEND_REJECTED_CODES",
    "SolanaSender",
    "open_solana_sender",
]

# The base fee of a signature (no compute-budget instruction, so no priority fee).
LAMPORTS_PER_SIGNATURE: Final = 5_000
# How deep a finalized transaction counts: deeper than any confirmation policy can ask.
FINALIZED_DEPTH: Final = MAX_CONFIRMATIONS
# sendTransaction refusals that are the transaction's fault: preflight failure (its simulation
# failed: a spent blockhash, "already processed", too little balance), bad signatures, a
# precompile, signature count, unsupported version. Not the node's: no failover, no breaker.
SEND_REJECTED_CODES: Final = frozenset({-32002, -32003, -32006, -32013, -32015})

RootSource = Callable[[], Awaitable[HDRoot]]

log = get_logger("keel.coinpay.sweeps")


class SolanaSender:
    """:class:`~keel.coinpay.chains.base.ExpiringSender` of Solana (module docstring).
    ``root`` returns the installation's HD root (``Custody.root``); ``tokens`` are the SPL
    coins it may sweep (their mints and decimals, from ``chains.config``)."""

    batch_limit = 1  # one payment address signs, one transaction per sweep

    def __init__(
        self, chain: str, rpc: RpcClient, root: RootSource, tokens: Sequence[Token] = ()
    ) -> None:
        self.chain = chain
        self._rpc = rpc
        self._root = root
        self._tokens = {token.coin: token for token in tokens}

    def __repr__(self) -> str:
        return f"SolanaSender({self.chain!r})"

    async def aclose(self) -> None:
        """Close the RPC client's connections."""
        await self._rpc.aclose()

    # ChainSender ------------------------------------------------------------------------------

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        """The one transaction sweeping a payment (module docstring), signed against a fresh
        blockhash; raises SweepRefused and ChainUnavailable."""
        if len(inputs) != 1:
            raise ValueError(f"a Solana sweep moves one payment, not {len(inputs)}")
        [sweep] = inputs
        if sweep.received <= 0 or not 0 <= sweep.commission <= sweep.received:
            raise SweepRefused(
                f"nothing to sweep: received {sweep.received}, commission out of range"
            )
        deposit = _pubkey(sweep.address, "payment address")
        merchant = _pubkey(sweep.merchant_address, "merchant payout address")
        platform = _pubkey(platform_address, "platform address")
        if sweep.coin == self.chain:
            return await self._sign_sol(sweep, deposit, merchant, platform)
        token = self._tokens.get(sweep.coin)
        if token is None:
            raise SweepRefused(f"{sweep.coin} is not a token this sender knows")
        return await self._sign_token(sweep, token, deposit, merchant, platform)

    async def broadcast(self, raw: str) -> None:
        """Send the stored transaction; one the node already has counts as sent. Raises
        RpcCallRejected for a refusal (an expired blockhash among them), ChainUnavailable."""
        encoded, _ = _stored(raw)
        signature = str(_transaction(encoded).signatures[0])
        try:
            await self._rpc.call(
                "sendTransaction",
                [encoded, {"encoding": "base64", "preflightCommitment": COMMITMENT}],
                rejected_codes=SEND_REJECTED_CODES,
            )
        except RpcCallRejected as exc:
            if "already been processed" in exc.rpc_message.lower():
                return
            if await self._status(signature) is None:
                raise

    async def confirmations(self, tx_hash: str) -> int | None:
        """How deep the transaction is: 0 while only processed, its confirmations counting its
        own block once confirmed, ``FINALIZED_DEPTH`` once finalized; None when the node knows
        it nowhere. Raises SweepReverted when it landed and failed."""
        status = await self._status(tx_hash)
        if status is None:
            return None
        if status.get("err") is not None:
            raise SweepReverted(
                f"{self.chain} sweep {tx_hash} failed in slot {status.get('slot')}: "
                f"{str(status['err'])[:120]}"
            )
        level = status.get("confirmationStatus")
        depth = status.get("confirmations")
        if level == "finalized" or depth is None:
            return FINALIZED_DEPTH
        if level == "processed":
            return 0
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise MalformedResponse(f"confirmations {depth!r:.30}")
        return depth + 1

    async def expired(self, tx_hash: str, raw: str) -> bool:
        """True once the stored transaction can never land (module docstring)."""
        encoded, last_valid = _stored(raw)
        blockhash = str(_transaction(encoded).message.recent_blockhash)
        finalized: int = await self._rpc.call(
            "getBlockHeight", [{"commitment": "finalized"}], parse=_count
        )
        if finalized <= last_valid:
            return False
        valid: bool = await self._rpc.call(
            "isBlockhashValid", [blockhash, {"commitment": "processed"}], parse=_bool_value
        )
        if valid:
            return False  # nodes disagree: wait
        return await self._status(tx_hash) is None

    async def _status(self, signature: str) -> dict[str, Any] | None:
        """The signature's status wherever it landed (transaction history included)."""
        status: dict[str, Any] | None = await self._rpc.call(
            "getSignatureStatuses",
            [[signature], {"searchTransactionHistory": True}],
            parse=_one_status,
        )
        return status

    # Signing ----------------------------------------------------------------------------------

    async def _sign_sol(
        self, sweep: SweepInput, deposit: Pubkey, merchant: Pubkey, platform: Pubkey
    ) -> SignedSweep:
        accounts, blockhash, last_valid, rent = await self._state([deposit, merchant, platform], 0)
        held = _lamports_of(accounts[0])
        if held < sweep.received:
            raise SweepRefused(f"{deposit} holds {held} lamports, less than {sweep.received}")
        surplus = held - sweep.received
        platform_part = sweep.commission
        if 0 < surplus < rent:
            platform_part += surplus  # it could not stay: a system account holds 0 or >= rent
            log.warning(
                "sweep_dust_to_platform", chain=self.chain, address=str(deposit), lamports=surplus
            )
        elif surplus:
            log.warning(
                "sweep_leaves_surplus", chain=self.chain, address=str(deposit), lamports=surplus
            )

        def instructions(merchant_part: int) -> list[Instruction]:
            payees = [(platform, platform_part), (merchant, merchant_part)]
            return [
                transfer(TransferParams(from_pubkey=deposit, to_pubkey=to, lamports=amount))
                for to, amount in payees
                if amount > 0
            ]

        draft = instructions(1)
        fee = await self._fee(Message.new_with_blockhash(draft, deposit, blockhash))
        merchant_part = sweep.received - sweep.commission - fee
        if merchant_part <= 0:
            raise SweepRefused(
                f"dust: {sweep.received} lamports received do not cover the commission "
                f"{sweep.commission} and the network fee {fee}"
            )
        for account, amount, who in (
            (accounts[1], merchant_part, "merchant"),
            (accounts[2], platform_part, "platform"),
        ):
            if account is None and 0 < amount < rent:
                raise SweepRefused(
                    f"dust: {amount} lamports to the {who}'s new account is below the rent-exempt "
                    f"minimum of {rent}"
                )
        message = Message.new_with_blockhash(instructions(merchant_part), deposit, blockhash)
        tx = await self._signed(message, blockhash, sweep, payer=None)
        return _signed_sweep(tx, last_valid, {sweep.payment_id: fee})

    async def _sign_token(
        self, sweep: SweepInput, token: Token, deposit: Pubkey, merchant: Pubkey, platform: Pubkey
    ) -> SignedSweep:
        mint = Pubkey.from_string(token.contract)
        fee_address = (await self._root()).fee_wallet(Family.SOL)[0]  # its key dropped at once
        payer = Pubkey.from_string(fee_address)
        source = spl.associated_token_address(deposit, mint)
        merchant_ata = spl.associated_token_address(merchant, mint)
        platform_ata = spl.associated_token_address(platform, mint)
        accounts, blockhash, last_valid, rent = await self._state(
            [source, payer, merchant_ata, platform_ata], spl.TOKEN_ACCOUNT_SIZE
        )
        held = _token_amount(accounts[0], source, mint, deposit)
        if held < sweep.received:
            raise SweepRefused(f"{source} holds {held} of {sweep.coin}, less than {sweep.received}")
        merchant_part = sweep.received - sweep.commission
        if merchant_part <= 0:
            raise SweepRefused(f"dust: nothing left for the merchant of {sweep.received}")
        ixs = [spl.create_ata_idempotent(payer, merchant, mint)]
        if sweep.commission:
            ixs.append(spl.create_ata_idempotent(payer, platform, mint))
        ixs.append(
            spl.transfer_checked(source, mint, merchant_ata, deposit, merchant_part, token.decimals)
        )
        if sweep.commission:
            ixs.append(
                spl.transfer_checked(
                    source, mint, platform_ata, deposit, sweep.commission, token.decimals
                )
            )
        if held == sweep.received:
            ixs.append(spl.close_account(source, payer, deposit))  # its rent back to the payer
        else:
            log.warning(
                "sweep_leaves_surplus",
                chain=self.chain,
                address=str(deposit),
                units=held - sweep.received,
            )
        message = Message.new_with_blockhash(ixs, payer, blockhash)
        fee = await self._fee(message)
        new_accounts = sum(
            1 for account in accounts[2 : 4 if sweep.commission else 3] if account is None
        )
        needed = fee + new_accounts * rent
        has = _lamports_of(accounts[1])
        if has < needed:
            raise SweepRefused(
                f"the {self.chain} fee wallet {fee_address} holds {has} lamports; this token sweep "
                f"needs {needed} (fee {fee}, {new_accounts} new token account(s)): fund it"
            )
        tx = await self._signed(message, blockhash, sweep, payer=payer)
        return _signed_sweep(tx, last_valid, {sweep.payment_id: 0})

    async def _state(
        self, keys: list[Pubkey], rent_size: int
    ) -> tuple[list[dict[str, Any] | None], Hash, int, int]:
        """The accounts at ``keys``, a fresh blockhash with its last valid block height, and
        the rent-exempt minimum of ``rent_size`` bytes, in one request (one node's view)."""
        calls: list[tuple[str, Sequence[object]]] = [
            (
                "getMultipleAccounts",
                [[str(k) for k in keys], {"encoding": "base64", "commitment": COMMITMENT}],
            ),
            ("getLatestBlockhash", [{"commitment": COMMITMENT}]),
            ("getMinimumBalanceForRentExemption", [rent_size]),
        ]
        answers: list[Any] = []
        for result in await self._rpc.batch(calls, parse=_any):
            if isinstance(result, RpcCallRejected):
                raise result
            answers.append(result)
        accounts, latest, rent = answers
        try:
            found = accounts["value"]
            if not isinstance(found, list) or len(found) != len(keys):
                raise MalformedResponse("getMultipleAccounts answered another list")
            blockhash = Hash.from_string(latest["value"]["blockhash"])
            last_valid = _count(latest["value"]["lastValidBlockHeight"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(f"unreadable account state: {exc}"[:200]) from exc
        return found, blockhash, last_valid, _count(rent)

    async def _fee(self, message: Message) -> int:
        """The node's fee for ``message``; the base fee per signature when it cannot say."""
        encoded = base64.b64encode(bytes(message)).decode()
        value = await self._rpc.call(
            "getFeeForMessage", [encoded, {"commitment": COMMITMENT}], parse=_optional_value
        )
        if value is None:
            return LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures
        return _count(value)

    async def _signed(
        self, message: Message, blockhash: Hash, sweep: SweepInput, *, payer: Pubkey | None
    ) -> Transaction:
        """``message`` signed by the payment address's key (and the fee wallet's when
        ``payer`` is it). Keys live in this frame alone and are gone before anything is
        raised."""
        root = await self._root()
        signers: list[Keypair] = []
        deposit: Keypair | None = None
        fee_wallet: Keypair | None = None
        problem = None
        try:
            deposit = Keypair.from_seed(root.private_key(Family.SOL, sweep.derivation_index))
            if str(deposit.pubkey()) != sweep.address:
                problem = (
                    f"the key at derivation index {sweep.derivation_index} does not control "
                    f"{sweep.address}"
                )
            else:
                if payer is not None:
                    fee_address = root.fee_wallet(Family.SOL)[0]
                    fee_wallet = Keypair.from_seed(root.fee_wallet(Family.SOL)[1])
                    if str(fee_wallet.pubkey()) != fee_address or fee_wallet.pubkey() != payer:
                        problem = "the fee wallet key does not match its address"
                    signers.append(fee_wallet)
                signers.append(deposit)
                if problem is None:
                    return Transaction(signers, message, blockhash)
        except Exception as exc:  # a library's message could quote its input
            problem = f"signing failed ({type(exc).__name__})"
        finally:
            signers.clear()
            deposit = fee_wallet = None
            del root
        raise SweepRefused(problem or "signing failed")


def open_solana_sender(
    config: ChainConfig,
    root: RootSource,
    *,
    platform_address: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    breaker: Callable[[str], CircuitBreaker] = default_breaker,
) -> SolanaSender:
    """The sender of Solana through its providers (close with ``aclose()``). Refuses at boot,
    not at the first sweep, a chain with no URL and a platform wallet that is not a Solana
    address (InvalidChainConfig)."""
    if not config.configured:
        raise InvalidChainConfig(f"{config.chain} has no RPC URL to sweep through")
    try:
        validate_address(Family.SOL, platform_address)
    except InvalidAddress as exc:
        raise InvalidChainConfig(
            f"{config.chain}: the platform wallet is not a Solana address ({exc.detail})"
        ) from None
    rpc = RpcClient(config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, breaker=breaker)
    return SolanaSender(config.chain, rpc, root, config.tokens)


def _signed_sweep(tx: Transaction, last_valid: int, fees: dict[str, int]) -> SignedSweep:
    encoded = base64.b64encode(bytes(tx)).decode()
    return SignedSweep(str(tx.signatures[0]), f"{encoded}\n{last_valid}", fees)


def _stored(raw: str) -> tuple[str, int]:
    """(base64 transaction, last valid block height) of a stored sweep."""
    encoded, _, last_valid = raw.partition("\n")
    if not last_valid.isdigit():
        raise ValueError("not a sweep of SolanaSender: base64 transaction, then a block height")
    return encoded, int(last_valid)


def _transaction(encoded: str) -> Transaction:
    try:
        return Transaction.from_bytes(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a sweep of SolanaSender: undecodable transaction") from exc


def _pubkey(value: str, what: str) -> Pubkey:
    try:
        return Pubkey.from_string(validate_address(Family.SOL, value.strip()))
    except (InvalidAddress, ValueError):
        raise SweepRefused(f"the {what} {value[:50]!r} is not a Solana address") from None


def _lamports_of(account: dict[str, Any] | None) -> int:
    if account is None:
        return 0
    return _count(account.get("lamports"))


def _token_amount(
    account: dict[str, Any] | None, address: Pubkey, mint: Pubkey, owner: Pubkey
) -> int:
    """Base units held by the token account ``address`` of ``owner`` for ``mint``; refuses one
    that is missing, of another program (Token-2022) or not what its address says."""
    if account is None:
        raise SweepRefused(f"{address} (the payment's token account) does not exist")
    if account.get("owner") != str(spl.TOKEN_PROGRAM_ID):
        raise SweepRefused(f"{address} is not an account of the Token program: not swept")
    try:
        data = base64.b64decode(account["data"][0], validate=True)
        state = TokenAccount.from_bytes(data)
    except (KeyError, TypeError, IndexError, ValueError, binascii.Error) as exc:
        raise MalformedResponse(f"unreadable token account {address}") from exc
    if state.mint != mint or state.owner != owner:
        raise SweepRefused(f"{address} is not {owner}'s account of {mint}")
    return int(state.amount)


def _any(value: Any) -> Any:
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedResponse(f"not a count: {value!r:.30}")
    return value


def _optional_value(result: Any) -> Any:
    if not isinstance(result, dict) or "value" not in result:
        raise MalformedResponse("an answer without context and value")
    return result["value"]


def _bool_value(result: Any) -> bool:
    value = _optional_value(result)
    if not isinstance(value, bool):
        raise MalformedResponse(f"not a boolean: {value!r:.30}")
    return value


def _one_status(result: Any) -> dict[str, Any] | None:
    statuses = _optional_value(result)
    if not isinstance(statuses, list) or len(statuses) != 1:
        raise MalformedResponse("getSignatureStatuses answered another list")
    status = statuses[0]
    if status is not None and not isinstance(status, dict):
        raise MalformedResponse("a signature status is not an object")
    return status
