"""Which chain a pasted hash belongs to, and what a user is told when it is no hash at all."""

from __future__ import annotations

import pytest
from bip_utils import Base58Encoder
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.payments.errors import InvalidHash
from keel.coach.payments.hashes import detect
from keel.coach.payments.observed import Chain

HEX = "0123456789abcdefABCDEF"
SOL_SIGNATURE = (
    "5LPJY1NnqD9kWiejiZAUynaxhGooGC5yYJujcm1UGEwMFrnQ2tqrG8fYjuD2L1kCfFJYV5qJ7YpioMkZPa9kxPiS"
)


@given(st.binary(min_size=32, max_size=32), st.sampled_from(["0x", "0X"]), st.booleans())
def test_a_0x_hash_is_ethereum_in_lower_case(raw: bytes, prefix: str, upper: bool) -> None:
    digits = raw.hex().upper() if upper else raw.hex()
    detected = detect(f"  {prefix}{digits}\n")
    assert detected.chains == (Chain.ETH,)
    assert not detected.ambiguous
    assert detected.on(Chain.ETH) == "0x" + raw.hex()


@given(st.binary(min_size=32, max_size=32), st.booleans())
def test_bare_64_hex_is_tron_or_ethereum_and_asks(raw: bytes, upper: bool) -> None:
    detected = detect(raw.hex().upper() if upper else raw.hex())
    assert detected.ambiguous
    assert set(detected.chains) == {Chain.ETH, Chain.TRON}
    assert detected.on(Chain.TRON) == raw.hex()
    assert detected.on(Chain.ETH) == "0x" + raw.hex()
    assert detected.on(Chain.SOL) is None


@given(st.binary(min_size=64, max_size=64))
def test_any_64_byte_signature_in_base58_is_solana_unchanged(raw: bytes) -> None:
    signature = str(Base58Encoder.Encode(raw))
    if not 86 <= len(signature) <= 88:
        return  # leading zero bytes shorten it; the reference's lengths are 86 to 88
    detected = detect(signature)
    assert detected.chains == (Chain.SOL,)
    assert detected.on(Chain.SOL) == signature


@given(st.text(max_size=120))
def test_anything_else_is_refused_with_one_line_or_detected(text: str) -> None:
    problem: InvalidHash | None = None
    try:
        detected = detect(text)
    except InvalidHash as exc:
        problem = exc
    if problem is None:
        assert detected.candidates
        return
    assert problem.detail
    assert "\n" not in problem.detail
    assert problem.code == "invalid_tx_hash"


@given(st.text(alphabet=HEX, min_size=1, max_size=90).filter(lambda s: len(s) != 64))
def test_hex_of_the_wrong_length_says_how_long_it_is(digits: str) -> None:
    for text in (digits, "0x" + digits):
        with pytest.raises(InvalidHash, match=rf"has {len(digits)}\.$|wallet address|too long"):
            detect(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Paste the transaction hash"),
        ("   \n", "Paste the transaction hash"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "wallet address"),
        ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "wallet address"),
        ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "wallet address"),
        ("0x" + "a" * 63, "has 63"),
        ("g" * 64, "not a transaction hash"),
        ("0x" + "a" * 64 + "a", "has 65"),
        (SOL_SIGNATURE[:-1] + "0", "not a transaction hash"),  # 0 is not base58
        (SOL_SIGNATURE * 2, "too long"),
        ("z" * 88, "does not decode to 64 bytes"),  # 58**88 needs 65 bytes
        (SOL_SIGNATURE + "z", "does not decode to 64 bytes"),  # 89 characters
        ("https://etherscan.io/tx/0x" + "a" * 64, "not a transaction hash"),
        ("0x" + "a" * 32 + " " + "a" * 32, "not a transaction hash"),
    ],
)
def test_bad_input_gets_a_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidHash, match=says):
        detect(text)


def test_a_real_looking_signature_is_solana() -> None:
    assert detect(SOL_SIGNATURE).chains == (Chain.SOL,)
