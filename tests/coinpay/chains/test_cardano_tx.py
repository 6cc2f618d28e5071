"""Cardano transaction arithmetic: minimum outputs, exact fees, Ed25519-BIP32 signatures."""

from __future__ import annotations

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.coinpay import commission
from keel.coinpay.chains import cardano_tx
from keel.coinpay.chains.cardano_sender import plan_sweep
from keel.coinpay.chains.cardano_tx import MAINNET_PARAMS, ProtocolParams, TxIn, TxOut
from keel.coinpay.chains.utxo_sender import NotSweepable
from keel.coinpay.errors import AmountBelowMinimumOutput
from keel.coinpay.wallets import Family, HDRoot
from tests.coinpay.conftest import ABANDON

ROOT = HDRoot.from_mnemonic(ABANDON)
BASE = cardano_tx.address_bytes(ROOT.address(Family.ADA, 0))
ENTERPRISE = bytes([0x61]) + bytes(range(1, 29))
BYRON = (
    bytes([0x82, 0xD8, 0x18, 0x58, 0x42]) + bytes(range(66)) + bytes([0x1A, 1, 2, 3, 4])
)  # its length


def test_the_smallest_output_to_a_base_address_is_what_the_ledger_rule_gives() -> None:
    # (160 + 65 bytes: array, 57-byte address, a 5-byte amount) x 4310 lovelace per byte.
    smallest = cardano_tx.min_output_lovelace(BASE)
    assert smallest == (160 + 65) * 4310 == 969_750
    assert cardano_tx.output_minimum(TxOut(BASE, smallest)) <= smallest
    assert cardano_tx.output_minimum(TxOut(BASE, smallest - 1)) > smallest - 1
    # Longer addresses need more; the rule follows the protocol parameter.
    assert (
        cardano_tx.min_output_lovelace(BYRON)
        > smallest
        > cardano_tx.min_output_lovelace(ENTERPRISE)
    )
    doubled = ProtocolParams(44, 155_381, 8620, 16_384)
    assert cardano_tx.min_output_lovelace(BASE, doubled) == 2 * smallest


def test_a_payment_must_leave_the_merchant_an_output_after_commission_and_fee() -> None:
    minimum = cardano_tx.minimum_payment_lovelace(max(commission.PLANS.values()))
    assert 1_000_000 < minimum < 1_300_000  # about 1.17 ADA at mainnet's parameters
    cardano_tx.check_payment_amount(minimum)
    with pytest.raises(AmountBelowMinimumOutput) as refused:
        cardano_tx.check_payment_amount(minimum - 1)
    assert refused.value.extra == {"minimum_ada": f"{minimum / 1_000_000:.6f}".rstrip("0")}


def test_a_signature_is_ed25519_under_the_payment_addresss_key() -> None:
    key = ROOT.private_key(Family.ADA, 3)
    vkey, signature = cardano_tx.sign(key, b"\x01" * 32)
    Ed25519PublicKey.from_public_bytes(vkey).verify(signature, b"\x01" * 32)  # raises if bad
    address = cardano_tx.address_bytes(ROOT.address(Family.ADA, 3))
    assert cardano_tx.key_hash(vkey) == address[1:29]
    assert cardano_tx.sign(key, b"\x01" * 32) == (vkey, signature)  # deterministic


def test_a_body_decodes_to_its_inputs_outputs_fee_and_ttl() -> None:
    tx = cardano_tx.build(
        [TxIn("bb" * 32, 1), TxIn("aa" * 32, 0)],
        lambda fee: [TxOut(BASE, 5_000_000 - fee)],
        signers=1,
        ttl=123_456,
        params=MAINNET_PARAMS,
    )
    body = cbor2.loads(tx.body)
    assert body == {
        0: [[bytes.fromhex("aa" * 32), 0], [bytes.fromhex("bb" * 32), 1]],
        1: [[BASE, 5_000_000 - tx.fee]],
        2: tx.fee,
        3: 123_456,
    }
    signed = cardano_tx.signed_tx(tx.body, [cardano_tx.sign(ROOT.private_key(Family.ADA, 0), b"")])
    assert tx.fee == cardano_tx.min_fee(len(signed), MAINNET_PARAMS)
    # A stored transaction reads back to the id signed, the inputs spent and the TTL.
    assert cardano_tx.read_signed(signed) == cardano_tx.SignedBody(
        tx.tx_hash, (TxIn("aa" * 32, 0), TxIn("bb" * 32, 1)), 123_456
    )
    for other in (b"", signed[1:], b"\x84\xa0" + signed[-2:], cbor2.dumps([1, 2, 3, 4])):
        with pytest.raises(ValueError, match="not a signed Cardano transaction"):
            cardano_tx.read_signed(other)


addresses = st.sampled_from([BASE, ENTERPRISE, BYRON, bytes([0x01]) + bytes(56)])
payment = st.tuples(
    st.lists(st.integers(1_000_000, 10**13), min_size=1, max_size=3),  # its outputs
    st.integers(0, 500),  # commission in basis points
    addresses,  # its merchant
)
params = st.builds(
    ProtocolParams,
    min_fee_a=st.integers(1, 100),
    min_fee_b=st.integers(0, 1_000_000),
    coins_per_utxo_byte=st.integers(1_000, 10_000),
    max_tx_size=st.just(16_384),
)


@settings(max_examples=300, deadline=None)
@given(payments=st.lists(payment, min_size=1, max_size=8), params=params, ttl=st.integers(0, 2**40))
def test_a_planned_sweep_pays_exactly_what_it_spends_and_no_output_is_below_its_minimum(
    payments: list[tuple[list[int], int, bytes]], params: ProtocolParams, ttl: int
) -> None:
    refs, owed, merchants = [], {}, {}
    commission_total = 0
    for n, (amounts, bps, merchant) in enumerate(payments):
        pid = f"p{n}"
        refs += [TxIn(f"{n:02x}{k:02x}" * 16, k) for k in range(len(amounts))]
        received = sum(amounts)
        cut = received * bps // 10_000
        owed[pid], merchants[pid] = received - cut, merchant
        commission_total += cut
    try:
        tx, shares = plan_sweep(
            refs,
            owed,
            merchants,
            BASE,
            commission_total,
            signers=len(payments),
            ttl=ttl,
            params=params,
        )
    except NotSweepable:
        return
    dummy = [(bytes(32), bytes(64))] * len(payments)
    size = len(cardano_tx.signed_tx(tx.body, dummy))
    # The fee covers the final size, and exceeds the least one by at most a few bytes' worth.
    assert cardano_tx.min_fee(size, params) <= tx.fee < cardano_tx.min_fee(size + 9, params)
    # merchant + commission + fee == inputs, to the lovelace.
    assert sum(o.lovelace for o in tx.outputs) + tx.fee == sum(owed.values()) + commission_total
    assert sum(shares.values()) == tx.fee
    assert all(o.lovelace >= cardano_tx.output_minimum(o, params) for o in tx.outputs)
    paid: dict[bytes, int] = {}
    for pid, amount in owed.items():
        paid[merchants[pid]] = paid.get(merchants[pid], 0) + amount - shares[pid]
    expected = [TxOut(a, v) for a, v in paid.items()]
    if commission_total:
        expected.append(TxOut(BASE, commission_total))
    assert sorted(tx.outputs, key=repr) == sorted(expected, key=repr)
    assert cbor2.loads(tx.body)[3] == ttl


def test_a_commission_below_the_minimum_output_waits_for_more_payments() -> None:
    owed = {"p": 20_000_000 - 200_000}
    with pytest.raises(NotSweepable, match="waits for more payments"):
        plan_sweep(
            [TxIn("aa" * 32, 0)],
            owed,
            {"p": ENTERPRISE},
            BASE,
            200_000,
            signers=1,
            ttl=1,
            params=MAINNET_PARAMS,
        )
    # A hundred such payments in one batch carry it.
    many = {f"p{n}": 20_000_000 - 200_000 for n in range(100)}
    tx, _ = plan_sweep(
        [TxIn(f"{n:064x}", 0) for n in range(100)],
        many,
        dict.fromkeys(many, ENTERPRISE),
        BASE,
        100 * 200_000,
        signers=100,
        ttl=1,
        params=ProtocolParams(44, 155_381, 4310, 10**6),
    )
    assert tx.outputs[-1] == TxOut(BASE, 20_000_000)
