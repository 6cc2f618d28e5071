"""A pasted hash, end to end: detect → read from the right chain → check → claim.

:meth:`PaymentVerifier.verify` returns an :data:`Outcome` the bot turns into a message (each
has a ``code`` and a one-line ``line``); it raises nothing for what a user can paste or a
source can answer. Which invoice a hash pays:

* with ``invoice_id``: that invoice, if it is the user's and not paid yet;
* without: the user's unpaid direct invoices on the hash's candidate chains (an expired one
  too: billing lets a late payment through). When those are on two chains (a bare 64-hex hash
  with an ETH and a TRON invoice) the user is asked which (:class:`AskChain`; call again with
  ``chain``). On one chain, the transaction is read once and checked against each, newest
  first: the first it pays is claimed, which unlocks it (``billing.invoices.unlock``).

A hash already in the replay store is answered from there, before any source is asked. The
claim itself (:func:`keel.coach.payments.claims.claim`) decides a race between two
submissions of the same hash: exactly one unlocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach.billing import invoices
from keel.coach.billing.lifecycle import InvoiceStatus
from keel.coach.payments import claims, hashes
from keel.coach.payments.adapters.base import PaymentSource
from keel.coach.payments.adapters.tronscan import USDT_CONTRACT as TRON_USDT
from keel.coach.payments.errors import (
    InvalidHash,
    SourceMisconfigured,
    SourceUnavailable,
    TransactionNotFound,
)
from keel.coach.payments.observed import NATIVE, Asset, Chain, ObservedPayment, Token
from keel.coach.payments.verify import Accepted, Expected, Refused, Wait, check
from keel.core.clock import Clock, SystemClock
from keel.core.logging import get_logger

__all__ = [
    "DEFAULT_ASSETS",
    "AlreadyUsed",
    "AskChain",
    "BadHash",
    "Declined",
    "InvoiceClosed",
    "NoOpenInvoice",
    "NotFound",
    "Outcome",
    "PaymentVerifier",
    "SourceDown",
    "Unlocked",
    "Waiting",
]

log = get_logger(__name__)

VERIFICATIONS = Counter(
    "coach_payment_verifications_total",
    "Pasted transaction hashes by chain ('' before one is known) and outcome code",
    ["chain", "outcome"],
)

# An invoice's (chain, asset symbol) -> what must arrive. Tokens by contract / mint address,
# the one thing a look-alike token cannot copy.
DEFAULT_ASSETS: Final[Mapping[tuple[Chain, str], Asset]] = {
    (Chain.ETH, "ETH"): NATIVE,
    (Chain.ETH, "USDT"): Token("0xdac17f958d2ee523a2206206994597c13d831ec7"),
    (Chain.ETH, "USDC"): Token("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"),
    (Chain.SOL, "SOL"): NATIVE,
    (Chain.SOL, "USDC"): Token("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
    (Chain.SOL, "USDT"): Token("Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"),
    (Chain.TRON, "TRX"): NATIVE,
    (Chain.TRON, "USDT"): Token(TRON_USDT),
}


@dataclass(frozen=True, slots=True)
class Unlocked:
    """The transaction paid the invoice: it is paid, and the user is pro until
    ``paid_until``."""

    invoice_id: str
    chain: Chain
    tx_hash: str
    amount: int  # base units of the invoice's asset received
    chat_id: int
    paid_until: datetime
    code = "unlocked"

    @property
    def line(self) -> str:
        return "Payment confirmed: your subscription is unlocked."


@dataclass(frozen=True, slots=True)
class AlreadyUsed:
    """The transaction already unlocked an invoice (``mine``: one of this user's)."""

    chain: Chain
    tx_hash: str
    mine: bool
    code = "already_used"

    @property
    def line(self) -> str:
        if self.mine:
            return "That transaction was already used: it unlocked your subscription before."
        return "That transaction was already used to pay another invoice."


@dataclass(frozen=True, slots=True)
class Declined:
    """The transaction does not pay the invoice (``refusal.reason`` says why)."""

    invoice_id: str
    chain: Chain
    tx_hash: str
    refusal: Refused

    @property
    def code(self) -> str:
        return str(self.refusal.reason)

    @property
    def line(self) -> str:
        return self.refusal.line


@dataclass(frozen=True, slots=True)
class Waiting:
    """The transaction may pay the invoice once final: paste it again later."""

    invoice_id: str
    chain: Chain
    tx_hash: str
    wait: Wait
    code = "wait"

    @property
    def line(self) -> str:
        return self.wait.line


@dataclass(frozen=True, slots=True)
class AskChain:
    """The hash fits several chains with open invoices: ask which, then call again."""

    chains: tuple[Chain, ...]
    code = "ask_chain"

    @property
    def line(self) -> str:
        return f"Which network did you pay on: {' or '.join(self.chains)}?"


@dataclass(frozen=True, slots=True)
class NotFound:
    chain: Chain
    tx_hash: str
    code = "not_found"

    @property
    def line(self) -> str:
        return (
            f"No {self.chain} transaction with that hash was found. Check the hash, or try "
            "again in a minute if you just sent it."
        )


@dataclass(frozen=True, slots=True)
class SourceDown:
    """No source of the chain answered (or none is configured)."""

    chain: Chain
    code = "source_unavailable"

    @property
    def line(self) -> str:
        return f"{self.chain} cannot be checked right now; please try again in a few minutes."


@dataclass(frozen=True, slots=True)
class BadHash:
    line: str
    code = "bad_hash"


@dataclass(frozen=True, slots=True)
class NoOpenInvoice:
    chains: tuple[Chain, ...]
    code = "no_open_invoice"

    @property
    def line(self) -> str:
        return f"You have no open invoice to pay on {' or '.join(self.chains)}: /subscribe first."


@dataclass(frozen=True, slots=True)
class InvoiceClosed:
    invoice_id: str
    code = "invoice_closed"

    @property
    def line(self) -> str:
        return "That invoice is already paid."


Outcome = (
    Unlocked
    | AlreadyUsed
    | Declined
    | Waiting
    | AskChain
    | NotFound
    | SourceDown
    | BadHash
    | NoOpenInvoice
    | InvoiceClosed
)


class PaymentVerifier:
    """Verifies pasted hashes against coach's invoices (module docstring).

    ``sessions``: coach's (``keel.core.db.session_factory``). ``sources``: per chain, the
    sources tried in order (the next when one is unavailable, never when one says "not
    found"). ``assets`` maps an invoice's (chain, asset symbol) to what must arrive;
    ``confirmations`` the blocks a chain that counts them needs (ETH).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sources: Mapping[Chain, Sequence[PaymentSource]],
        *,
        confirmations: Mapping[Chain, int] | None = None,
        assets: Mapping[tuple[Chain, str], Asset] = DEFAULT_ASSETS,
        clock: Clock | None = None,
    ) -> None:
        self._sessions = sessions
        self._sources = {chain: tuple(found) for chain, found in sources.items()}
        self._confirmations = dict(confirmations or {Chain.ETH: 12})
        self._assets = dict(assets)
        self._clock = clock or SystemClock()

    async def verify(
        self,
        *,
        user_id: int,
        text: str,
        invoice_id: str | None = None,
        chain: Chain | None = None,
    ) -> Outcome:
        """What ``text`` (a pasted hash) does for ``user_id``'s invoice(s); never raises for a
        user's input or a source's answer. ``chain`` answers an earlier AskChain."""
        outcome = await self._verify(user_id, text, invoice_id, chain)
        on = getattr(outcome, "chain", "")
        VERIFICATIONS.labels(str(on), outcome.code).inc()
        log.info(
            "coach_payment_verify",
            user_id=user_id,
            chain=str(on),
            tx_hash=getattr(outcome, "tx_hash", None),
            invoice_id=getattr(outcome, "invoice_id", invoice_id),
            outcome=outcome.code,
        )
        return outcome

    async def _verify(
        self, user_id: int, text: str, invoice_id: str | None, chain: Chain | None
    ) -> Outcome:
        try:
            detected = hashes.detect(text)
        except InvalidHash as exc:
            return BadHash(exc.detail)
        candidates = detected.chains
        if chain is not None:
            if chain not in candidates:
                return BadHash(f"That is not a {chain} transaction hash.")
            candidates = (chain,)
        if invoice_id is not None:
            invoice = await claims.load_invoice(
                self._sessions, invoice_id=invoice_id, user_id=user_id
            )
            if invoice is not None and invoice.status is InvoiceStatus.PAID:
                return InvoiceClosed(invoice.id)
            found = [] if invoice is None else [invoice]
        else:
            found = await claims.payable_invoices(
                self._sessions, user_id=user_id, chains=candidates
            )
        payable = [i for i in found if i.route == claims.DIRECT and i.chain in candidates]
        chains = tuple(c for c in candidates if any(i.chain == c for i in payable))
        if not chains:
            return NoOpenInvoice(candidates)
        if len(chains) > 1:
            return AskChain(chains)
        on = chains[0]
        tx_hash = detected.on(on)
        assert tx_hash is not None  # on is one of the detected chains
        existing = await claims.find_claim(self._sessions, chain=on, tx_hash=tx_hash)
        if existing is not None:
            return AlreadyUsed(on, tx_hash, mine=existing.user_id == user_id)
        observed = await self._observe(on, tx_hash)
        if not isinstance(observed, ObservedPayment):
            return observed
        return await self._settle(on, tx_hash, observed, payable)

    async def _observe(self, chain: Chain, tx_hash: str) -> ObservedPayment | Outcome:
        for source in self._sources.get(chain, ()):
            try:
                return await source.observe(tx_hash)
            except TransactionNotFound:
                return NotFound(chain, tx_hash)
            except SourceUnavailable as exc:
                # A refused key or a node of another chain needs the operator, not patience.
                report = log.error if isinstance(exc, SourceMisconfigured) else log.warning
                report(
                    "coach_payment_source_unavailable",
                    source=source.name,
                    error=exc.code,
                    detail=exc.detail,
                )
        return SourceDown(chain)

    async def _settle(
        self,
        chain: Chain,
        tx_hash: str,
        observed: ObservedPayment,
        candidates: list[invoices.Invoice],
    ) -> Outcome:
        verdicts = [(i, check(self._expected(chain, i), observed)) for i in candidates]
        taken: invoices.Invoice | None = None
        for invoice, verdict in verdicts:
            if not isinstance(verdict, Accepted):
                continue
            claimed = await claims.claim(
                self._sessions, chain=chain, tx_hash=tx_hash, invoice=invoice, now=self._clock.now()
            )
            if claimed.unlocked is not None:
                return Unlocked(
                    invoice.id,
                    chain,
                    tx_hash,
                    verdict.amount,
                    claimed.unlocked.chat_id,
                    claimed.unlocked.paid_until,
                )
            if claimed.result is claims.ClaimResult.TX_USED:
                return AlreadyUsed(
                    chain, tx_hash, mine=await self._claimed_by(chain, tx_hash, invoice.user_id)
                )
            taken = taken or invoice  # paid by another transaction meanwhile: try the next
        for invoice, verdict in verdicts:
            if isinstance(verdict, Wait):
                return Waiting(invoice.id, chain, tx_hash, verdict)
        for invoice, verdict in verdicts:
            if isinstance(verdict, Refused):
                return Declined(invoice.id, chain, tx_hash, verdict)
        assert taken is not None  # every verdict was Accepted, and every invoice was taken
        return InvoiceClosed(taken.id)

    async def _claimed_by(self, chain: Chain, tx_hash: str, user_id: int) -> bool:
        # Only reached when another submission won the race: whose was it?
        existing = await claims.find_claim(self._sessions, chain=chain, tx_hash=tx_hash)
        return existing is not None and existing.user_id == user_id

    def _expected(self, chain: Chain, invoice: invoices.Invoice) -> Expected:
        asset = self._assets.get((chain, invoice.asset.upper()))
        if asset is None:
            raise LookupError(f"no asset {invoice.asset!r} on {chain} (PaymentVerifier assets)")
        return Expected(
            chain=chain,
            asset=asset,
            amount=invoice.amount,
            recipient=invoice.recipient,
            created_at=invoice.created_at,
            confirmations=self._confirmations.get(chain, 0),
        )
