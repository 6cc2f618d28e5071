"""Validation and normalisation of mainnet payout addresses, per derivation family.

Every accepted form is decoded with bip-utils (checksums included); anything a
decoder rejects, for any reason, is an ``InvalidAddress`` naming the chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import cbor2
from bip_utils import (
    AdaByronAddrDecoder,
    Base58Decoder,
    Base58Encoder,
    BchBech32Encoder,
    BchP2PKHAddrDecoder,
    BchP2SHAddrDecoder,
    Bech32Decoder,
    CoinsConf,
    EthAddrDecoder,
    Kekkak256,
    P2PKHAddrDecoder,
    P2SHAddrDecoder,
    P2WPKHAddrDecoder,
    XrpAddrDecoder,
)

from keel.coinpay.errors import InvalidAddress
from keel.coinpay.wallets.families import Family

# Longest accepted form is a Byron legacy address (~110 chars); the cap keeps
# hostile input away from the CBOR decoder.
_MAX_CHARS: Final = 150
_HASH160_BYTES: Final = 20

# A parser returns (normalised address, decoded payload) or raises anything.
Parser = Callable[[str], tuple[str, bytes]]

_CHAINS: Final = MappingProxyType(
    {
        Family.BTC: ("Bitcoin", "bc1q…, 1… or 3…"),
        Family.LTC: ("Litecoin", "ltc1q…, L… or M…"),
        Family.BCH: ("Bitcoin Cash", "bitcoincash:q…/p… or legacy 1…/3…"),
        Family.DOGE: ("Dogecoin", "D… or 9…/A…"),
        Family.EVM: ("EVM (Ethereum, Polygon, BNB Chain, Base)", "0x and 40 hex digits"),
        Family.SOL: ("Solana", "a base58 ed25519 public key"),
        Family.XRP: ("XRP Ledger", "r… classic address"),
        Family.ADA: ("Cardano", "addr1… or a Byron address"),
    }
)


def validate_address(family: Family, address: str) -> str:
    """Return ``address`` normalised for ``family``'s mainnet, or raise ``InvalidAddress``.

    Normalisation: surrounding whitespace stripped; bech32 lower-cased; BCH as
    ``bitcoincash:`` CashAddr (legacy forms converted); EVM EIP-55 checksummed.
    Mixed-case EVM input must carry a correct EIP-55 checksum. All-zero
    keys/hashes (burn addresses) are rejected.
    """
    family = Family(family)
    chain, expected = _CHAINS[family]
    candidate = address.strip() if isinstance(address, str) else ""
    if 0 < len(candidate) <= _MAX_CHARS and candidate.isascii() and candidate.isprintable():
        for parse in _PARSERS[family]:
            try:
                normalised, payload = parse(candidate)
            except InvalidAddress:
                raise
            except Exception:  # noqa: S112 - decoders signal bad input with assorted types
                continue
            if not any(payload):
                raise InvalidAddress(f"this {chain} address is a burn address (all zeros)")
            return normalised
    raise InvalidAddress(f"not a valid {chain} address (expected {expected})")


_BTC, _LTC, _DOGE = CoinsConf.BitcoinMainNet, CoinsConf.LitecoinMainNet, CoinsConf.DogecoinMainNet
_BCH = CoinsConf.BitcoinCashMainNet
_BCH_HRP: Final[str] = _BCH.ParamByKey("p2pkh_std_hrp")


def _segwit_v0_keyhash(hrp: str) -> Parser:
    def parse(candidate: str) -> tuple[str, bytes]:
        program = bytes(P2WPKHAddrDecoder.DecodeAddr(candidate, hrp=hrp))
        # The bip-utils decoder also lets 32-byte P2WSH programs through.
        if len(program) != _HASH160_BYTES:
            raise ValueError("not a P2WPKH program")
        return candidate.lower(), program

    return parse


def _base58check(decoder: Any, net_ver: bytes, *, cashaddr_ver: bytes | None = None) -> Parser:
    """P2PKH or P2SH; with ``cashaddr_ver`` a legacy BCH form is converted to CashAddr."""

    def parse(candidate: str) -> tuple[str, bytes]:
        hash160 = bytes(decoder.DecodeAddr(candidate, net_ver=net_ver))
        if cashaddr_ver is None:
            return candidate, hash160
        return str(BchBech32Encoder.Encode(_BCH_HRP, cashaddr_ver, hash160)), hash160

    return parse


def _cashaddr(decoder: Any, net_ver: bytes) -> Parser:
    def parse(candidate: str) -> tuple[str, bytes]:
        if candidate.isupper():  # CashAddr may be all upper case (QR codes)
            candidate = candidate.lower()
        if ":" not in candidate:
            candidate = f"{_BCH_HRP}:{candidate}"
        return candidate, bytes(decoder.DecodeAddr(candidate, hrp=_BCH_HRP, net_ver=net_ver))

    return parse


_EVM_FORM: Final = re.compile(r"0x[0-9a-fA-F]{40}")


def _evm(candidate: str) -> tuple[str, bytes]:
    if not _EVM_FORM.fullmatch(candidate):
        raise ValueError("not 0x + 40 hex digits")
    digits = candidate[2:]
    mixed_case = digits != digits.lower() and digits != digits.upper()
    try:
        # With mixed case the sender meant EIP-55; a mismatch means a typo.
        payload = bytes(EthAddrDecoder.DecodeAddr(candidate, skip_chksum_enc=not mixed_case))
    except ValueError:
        raise InvalidAddress(
            "the EVM address fails its EIP-55 checksum (mixed case): check it for a typo"
        ) from None
    return f"0x{_eip55(digits.lower())}", payload


def _eip55(hex_lower: str) -> str:
    """EIP-55: upper-case each hex letter whose nibble in keccak256(address) is >= 8."""
    digest = bytes(Kekkak256.QuickDigest(hex_lower.encode("ascii"))).hex()
    return "".join(
        c.upper() if int(h, 16) >= 8 else c for c, h in zip(hex_lower, digest, strict=False)
    )


def _solana(candidate: str) -> tuple[str, bytes]:
    # Any 32-byte key: program-derived addresses (multisig vaults such as Squads) are off the
    # ed25519 curve yet receive SOL and SPL tokens, so a payout address may be one.
    raw = bytes(Base58Decoder.Decode(candidate))
    if len(raw) != 32 or Base58Encoder.Encode(raw) != candidate:
        raise ValueError("not a 32-byte base58 key")
    return candidate, raw


def _xrp(candidate: str) -> tuple[str, bytes]:
    return candidate, bytes(XrpAddrDecoder.DecodeAddr(candidate))


# CIP-19 header: high nibble = address type, low nibble = network (1 = mainnet).
# Accepted types and their byte lengths: base (0-3: key/script payment x key/script
# stake) and enterprise (6-7: no stake part). Pointer addresses are deprecated.
_ADA_LENGTHS: Final = MappingProxyType({0: 57, 1: 57, 2: 57, 3: 57, 6: 29, 7: 29})
_ADA_MAINNET: Final = 1


def _cardano_shelley(candidate: str) -> tuple[str, bytes]:
    data = bytes(Bech32Decoder.Decode(CoinsConf.CardanoMainNet.ParamByKey("addr_hrp"), candidate))
    kind, network = data[0] >> 4, data[0] & 0x0F
    if network != _ADA_MAINNET or _ADA_LENGTHS.get(kind) != len(data):
        raise ValueError("not a mainnet base or enterprise address")
    return candidate.lower(), data[1:]


def _cardano_byron(candidate: str) -> tuple[str, bytes]:
    payload = bytes(AdaByronAddrDecoder.DecodeAddr(candidate))
    # bip-utils validates structure and CRC but not the network: attribute 2 (the
    # protocol magic) is present only on testnet addresses.
    tagged = cbor2.loads(Base58Decoder.Decode(candidate))[0]
    if 2 in cbor2.loads(tagged.value)[1]:
        raise ValueError("testnet Byron address")
    return candidate, payload


_PARSERS: Final[Mapping[Family, tuple[Parser, ...]]] = MappingProxyType(
    {
        Family.BTC: (
            _segwit_v0_keyhash(_BTC.ParamByKey("p2wpkh_hrp")),
            _base58check(P2PKHAddrDecoder, _BTC.ParamByKey("p2pkh_net_ver")),
            _base58check(P2SHAddrDecoder, _BTC.ParamByKey("p2sh_net_ver")),
        ),
        Family.LTC: (
            _segwit_v0_keyhash(_LTC.ParamByKey("p2wpkh_hrp")),
            _base58check(P2PKHAddrDecoder, _LTC.ParamByKey("p2pkh_std_net_ver")),
            # Only M… for P2SH: the deprecated 3… form is a Bitcoin look-alike.
            _base58check(P2SHAddrDecoder, _LTC.ParamByKey("p2sh_std_net_ver")),
        ),
        Family.BCH: (
            _cashaddr(BchP2PKHAddrDecoder, _BCH.ParamByKey("p2pkh_std_net_ver")),
            _cashaddr(BchP2SHAddrDecoder, _BCH.ParamByKey("p2sh_std_net_ver")),
            _base58check(
                P2PKHAddrDecoder,
                _BCH.ParamByKey("p2pkh_legacy_net_ver"),
                cashaddr_ver=_BCH.ParamByKey("p2pkh_std_net_ver"),
            ),
            _base58check(
                P2SHAddrDecoder,
                _BCH.ParamByKey("p2sh_legacy_net_ver"),
                cashaddr_ver=_BCH.ParamByKey("p2sh_std_net_ver"),
            ),
        ),
        Family.DOGE: (
            _base58check(P2PKHAddrDecoder, _DOGE.ParamByKey("p2pkh_net_ver")),
            _base58check(P2SHAddrDecoder, _DOGE.ParamByKey("p2sh_net_ver")),
        ),
        Family.EVM: (_evm,),
        Family.SOL: (_solana,),
        Family.XRP: (_xrp,),
        Family.ADA: (_cardano_shelley, _cardano_byron),
    }
)
