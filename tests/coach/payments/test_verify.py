"""The domain check alone: each refusal has its own reason, finality is a wait, not a no."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.payments.observed import (
    NATIVE,
    Chain,
    ObservedPayment,
    Token,
    Transfer,
    TxStatus,
)
from keel.coach.payments.verify import (
    BLOCK_TIME_SLACK,
    Accepted,
    Expected,
    Refusal,
    Refused,
    Wait,
    WaitReason,
    check,
)

CREATED = datetime(2025, 1, 15, 11, 40, tzinfo=UTC)
US = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 case: compared case-insensitively
THEM = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
LOOKALIKE = "0x8f3c1d2b7a6e5f4d3c2b1a0f9e8d7c6b5a4f3e2d"


def expected(
    asset: Token | None = None, amount: int = 10_000_000, confirmations: int = 12
) -> Expected:
    return Expected(
        chain=Chain.ETH,
        asset=asset or NATIVE,
        amount=amount,
        recipient=US,
        created_at=CREATED,
        confirmations=confirmations,
    )


def observed(*transfers: Transfer, **changes: object) -> ObservedPayment:
    base = ObservedPayment(
        chain=Chain.ETH,
        tx_hash="0x" + "ab" * 32,
        status=TxStatus.SUCCEEDED,
        sender=THEM,
        transfers=transfers,
        block_time=CREATED + timedelta(minutes=5),
        confirmations=12,
        finalized=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def to_us(amount: int, asset: Token | None = None) -> Transfer:
    return Transfer(asset or NATIVE, THEM, US.lower(), amount)


def test_enough_to_our_address_after_the_invoice_and_final_is_accepted() -> None:
    assert check(expected(), observed(to_us(10_000_000))) == Accepted(10_000_000)


def test_more_than_asked_is_accepted_with_what_arrived() -> None:
    assert check(expected(), observed(to_us(15_000_000))) == Accepted(15_000_000)


def test_several_transfers_to_us_in_one_transaction_add_up() -> None:
    token = Token(USDT.lower())
    verdict = check(expected(token), observed(to_us(4_000_000, token), to_us(6_000_000, token)))
    assert verdict == Accepted(10_000_000)


def test_a_failed_transaction_is_refused() -> None:
    assert check(expected(), observed(status=TxStatus.FAILED)) == Refused(Refusal.FAILED)


def test_paying_someone_else_is_wrong_recipient() -> None:
    other = Transfer(NATIVE, THEM, "0x" + "11" * 20, 10_000_000)
    assert check(expected(), observed(other)) == Refused(Refusal.WRONG_RECIPIENT)


def test_a_lookalike_token_to_us_is_wrong_token() -> None:
    verdict = check(expected(Token(USDT)), observed(to_us(10_000_000, Token(LOOKALIKE))))
    assert verdict == Refused(Refusal.WRONG_TOKEN)


def test_ether_for_a_usdt_invoice_is_wrong_token() -> None:
    assert check(expected(Token(USDT)), observed(to_us(10**18))) == Refused(Refusal.WRONG_TOKEN)


def test_too_little_says_what_arrived() -> None:
    verdict = check(expected(), observed(to_us(9_999_999)))
    assert verdict == Refused(Refusal.TOO_LITTLE, received=9_999_999)
    assert isinstance(verdict, Refused)
    assert "less" in verdict.line


def test_a_block_older_than_the_invoice_is_refused() -> None:
    early = CREATED - BLOCK_TIME_SLACK - timedelta(seconds=1)
    verdict = check(expected(), observed(to_us(10_000_000), block_time=early))
    assert verdict == Refused(Refusal.BEFORE_INVOICE)


def test_a_block_stamped_seconds_before_the_invoice_is_still_accepted() -> None:
    # Block times are whole seconds and a slot's start: see BLOCK_TIME_SLACK.
    stamped = CREATED - BLOCK_TIME_SLACK
    verdict = check(expected(), observed(to_us(10_000_000), block_time=stamped))
    assert verdict == Accepted(10_000_000)


def test_too_few_confirmations_is_a_wait_with_the_count() -> None:
    verdict = check(expected(), observed(to_us(10_000_000), confirmations=3))
    assert verdict == Wait(WaitReason.NOT_FINAL, 3, 12)
    assert "3 of 12" in verdict.line


def test_a_pending_transaction_is_a_wait() -> None:
    pending = observed(to_us(10_000_000), status=TxStatus.PENDING, block_time=None)
    assert check(expected(), pending) == Wait(WaitReason.PENDING)


def test_a_refusal_is_told_before_finality() -> None:
    verdict = check(expected(), observed(to_us(1), confirmations=1))
    assert verdict == Refused(Refusal.TOO_LITTLE, received=1)


def test_a_source_that_vouches_for_finality_needs_no_count() -> None:
    final = observed(to_us(10_000_000), confirmations=None, finalized=True)
    assert check(expected(), final) == Accepted(10_000_000)
    not_final = observed(to_us(10_000_000), confirmations=None, finalized=False)
    assert check(expected(), not_final) == Wait(WaitReason.NOT_FINAL, None, 0)


def test_another_chain_is_refused() -> None:
    tron = observed(to_us(10_000_000), chain=Chain.TRON)
    assert check(expected(), tron) == Refused(Refusal.WRONG_CHAIN)


def test_every_refusal_has_its_own_line() -> None:
    lines = {Refused(reason).line for reason in Refusal}
    assert len(lines) == len(Refusal)


def test_tron_and_solana_addresses_compare_exactly() -> None:
    recipient = "TEY8j5s1oTkAAGk8ZzDGcZe4cu5F7GK9sa"
    invoice = Expected(
        chain=Chain.TRON,
        asset=Token("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
        amount=1,
        recipient=recipient,
        created_at=CREATED,
    )
    usdt = Token("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
    seen = observed(
        Transfer(usdt, "TEgdoy4mDWK4jWRBTHN5Le7azmL2dqb2Yn", recipient.lower(), 5),
        chain=Chain.TRON,
        confirmations=None,
        finalized=True,
    )
    assert check(invoice, seen) == Refused(Refusal.WRONG_RECIPIENT)  # base58 is case-sensitive
    exact = replace(seen, transfers=(replace(seen.transfers[0], recipient=recipient),))
    assert check(invoice, exact) == Accepted(5)


@pytest.mark.parametrize("amount", [0, -1, 1.5, True])
def test_an_invoice_amount_is_a_positive_int(amount: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        expected(amount=amount)  # type: ignore[arg-type]


def test_a_misconfigured_recipient_fails_loudly() -> None:
    with pytest.raises(ValueError, match="not an EVM address"):
        Expected(chain=Chain.ETH, asset=NATIVE, amount=1, recipient="T…", created_at=CREATED)


@given(st.integers(0, 10**30), st.integers(1, 10**30))
def test_accepted_exactly_when_enough_arrived(sent: int, asked: int) -> None:
    verdict = check(expected(amount=asked), observed(to_us(sent)))
    if sent >= asked:
        assert verdict == Accepted(sent)
    else:
        assert verdict == Refused(Refusal.TOO_LITTLE, received=sent)
