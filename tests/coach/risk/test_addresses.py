"""What a pasted token address means: chain detection, canonical forms, one-line errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.risk import BadAddress, Token, UnsupportedChain, parse_query, parse_token
from keel.coach.risk.addresses import CHAINS

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
EVM = "0x4a1f0e2b7c3d9e8f6a5b4c3d2e1f0a9b8c7d6e5f"
MINT = "DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQr"
WSOL = "So11111111111111111111111111111111111111112"


def base58(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = _ALPHABET[digit] + digits
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + digits


@pytest.mark.parametrize(
    ("text", "chain", "expected"),
    [
        (EVM, None, Token("1", EVM)),
        (EVM.upper().replace("0X", "0x"), None, Token("1", EVM)),  # EIP-55 or shouted
        (f"  {EVM}\n", "bsc", Token("56", EVM)),
        (EVM, "56", Token("56", EVM)),
        (EVM, "Base", Token("8453", EVM)),
        (EVM, "polygon", Token("137", EVM)),
        (EVM, "ARB", Token("42161", EVM)),
        (MINT, None, Token("solana", MINT)),
        (MINT, "sol", Token("solana", MINT)),
        (WSOL, None, Token("solana", WSOL)),
        ("1" * 32, None, Token("solana", "1" * 32)),  # 32 zero bytes: shortest form
    ],
)
def test_parse_token(text: str, chain: str | None, expected: Token) -> None:
    assert parse_token(text, chain) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        EVM[:-1],  # 39 hex digits
        EVM + "0",
        "0x" + "g" * 40,
        "4a1f0e2b7c3d9e8f6a5b4c3d2e1f0a9b8c7d6e5f",  # no 0x
        MINT[:-1] + "0",  # 0 is not base58
        MINT.replace("D", "l", 1),  # nor is l
        "1" * 31,  # 31 bytes
        "z" * 44,  # decodes to more than 32 bytes
        "DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQrDYougPS3",
        "<b>scam</b>",
    ],
)
def test_not_an_address(text: str) -> None:
    with pytest.raises(BadAddress) as raised:
        parse_token(text)
    assert "\n" not in raised.value.detail


def test_chain_and_address_must_agree() -> None:
    with pytest.raises(BadAddress, match="Solana address, not a BNB Smart Chain one"):
        parse_token(MINT, "bsc")
    with pytest.raises(BadAddress, match="EVM address"):
        parse_token(EVM, "solana")
    with pytest.raises(UnsupportedChain, match="Unknown chain 'dogechain'"):
        parse_token(EVM, "dogechain")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EVM, Token("1", EVM)),
        (f"{EVM} bsc", Token("56", EVM)),
        (f"base {EVM}", Token("8453", EVM)),
        (f" {MINT} ", Token("solana", MINT)),
    ],
)
def test_parse_query(text: str, expected: Token) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize("text", ["", "   ", f"{EVM} bsc extra"])
def test_parse_query_wants_one_address(text: str) -> None:
    with pytest.raises(BadAddress, match="/scan"):
        parse_query(text)


@given(st.binary(min_size=20, max_size=20), st.sampled_from(sorted(CHAINS.keys() - {"solana"})))
def test_any_evm_address_is_canonical_lower_case(raw: bytes, chain: str) -> None:
    mixed = "0x" + "".join(c.upper() if i % 3 else c for i, c in enumerate(raw.hex()))
    assert parse_token(mixed, chain) == Token(chain, "0x" + raw.hex())


@given(st.binary(min_size=32, max_size=32))
def test_any_32_byte_key_is_a_solana_address(raw: bytes) -> None:
    text = base58(raw)
    assert parse_token(text) == Token("solana", text)


@given(st.binary(min_size=1, max_size=40).filter(lambda raw: len(raw) != 32))
def test_base58_of_another_length_is_refused(raw: bytes) -> None:
    with pytest.raises(BadAddress):
        parse_token(base58(raw))


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=12)))
def test_arbitrary_input_parses_or_raises_a_typed_error(text: str, chain: str | None) -> None:
    try:
        token = parse_token(text, chain)
    except (BadAddress, UnsupportedChain) as exc:
        detail = exc.detail
    else:
        assert token.chain in CHAINS
        assert token.address == text.strip().lower() or token.is_solana
        return
    assert detail
    assert "\n" not in detail
