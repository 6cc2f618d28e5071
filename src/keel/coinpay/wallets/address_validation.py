"""Validation and normalisation of payout addresses, per derivation family and network.

A UTXO family accepts the forms of one ``Network`` at a time (mainnet by default; a testnet
or regtest address is refused on mainnet and the other way round); other families have
mainnet only.

Every accepted form is decoded with bip-utils (checksums included); anything a
decoder rejects, for any reason, is an ``InvalidAddress`` naming the chain.

Segwit (BTC, LTC) follows BIP173/BIP350: witness v0 must carry a bech32 checksum and a 20-byte
(P2WPKH) or 32-byte (P2WSH) program, v1 a bech32m checksum; of v1 only 32-byte Taproot outputs
(BIP341) are accepted. Other versions and lengths decode, but no soft fork gives them meaning
yet: anyone could spend what is sent there, so a payout address is never one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import cbor2
from bip_utils import (
    AdaByronAddrDecoder,
    Base58Alphabets,
    Base58Decoder,
    Base58Encoder,
    BchBech32Decoder,
    BchBech32Encoder,
    BchP2PKHAddrDecoder,
    BchP2SHAddrDecoder,
    Bech32Decoder,
    CoinsConf,
    EthAddrDecoder,
    Kekkak256,
    P2PKHAddrDecoder,
    P2SHAddrDecoder,
    Secp256k1PublicKey,
    SegwitBech32Decoder,
    SegwitBech32Encoder,
    XrpAddrDecoder,
)

from keel.coinpay.errors import InvalidAddress
from keel.coinpay.wallets.families import UTXO_FAMILIES, Family
from keel.coinpay.wallets.networks import Network, UtxoNetwork, check_network, utxo_network

# Longest accepted form is a Byron legacy address (~110 chars); the cap keeps
# hostile input away from the CBOR decoder.
_MAX_CHARS: Final = 150
# BIP173: a segwit address is at most 90 characters (the checksum's guarantees end there).
_MAX_SEGWIT_CHARS: Final = 90
_P2WPKH_BYTES, _P2WSH_BYTES, _TAPROOT_BYTES = 20, 32, 32

# A parser returns (normalised address, decoded payload) or raises anything.
Parser = Callable[[str], tuple[str, bytes]]
# Turns a decoded hash160 into the preferred written form of the same address.
Rewrite = Callable[[bytes], str]

_CHAINS: Final = MappingProxyType(
    {
        Family.BTC: ("Bitcoin", "bc1q…, bc1p…, 1… or 3…"),
        Family.LTC: ("Litecoin", "ltc1q…, ltc1p…, L…, M… or 3…"),
        Family.BCH: ("Bitcoin Cash", "bitcoincash:q…/p… or legacy 1…/3…"),
        Family.DOGE: ("Dogecoin", "D… or 9…/A…"),
        Family.EVM: ("EVM (Ethereum, Polygon, BNB Chain, Base)", "0x and 40 hex digits"),
        Family.SOL: ("Solana", "a base58 ed25519 public key"),
        Family.XRP: ("XRP Ledger", "r… classic address or X… X-address"),
        Family.ADA: ("Cardano", "addr1… or a Byron address"),
    }
)


def validate_address(family: Family, address: str, network: Network = Network.MAINNET) -> str:
    """Return ``address`` normalised for ``family`` on ``network``, or raise ``InvalidAddress``.

    Normalisation: surrounding whitespace stripped; bech32 lower-cased; BCH as
    CashAddr with its network's prefix (``bitcoincash:``; legacy forms converted); LTC
    P2SH as ``M…`` (``Q…`` on its test networks; the deprecated ``3…``/``2…`` form
    converted); EVM EIP-55 checksummed; an XRP X-address without a tag as its classic
    ``r…`` address (one with a tag is kept, since the tag must reach the payout).
    Mixed-case EVM input must carry a correct EIP-55 checksum. All-zero keys/hashes
    (burn addresses) are rejected. ValueError for a test network of a family without one.
    """
    family = Family(family)
    network = check_network(family, network)
    if network is Network.MAINNET:
        chain, expected = _CHAINS[family]
    else:
        chain, expected = _test_chain(family, network)
    candidate = address.strip() if isinstance(address, str) else ""
    if 0 < len(candidate) <= _MAX_CHARS and candidate.isascii() and candidate.isprintable():
        for parse in _PARSERS[(family, network)]:
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


def output_script(family: Family, address: str, network: Network = Network.MAINNET) -> bytes:
    """The scriptPubKey paying ``address`` of a UTXO ``family`` on ``network`` (P2PKH, P2SH,
    segwit v0 or Taproot; BCH's CashAddr as its P2PKH or P2SH script). Raises InvalidAddress
    for an address ``validate_address`` refuses, ValueError for another family."""
    params = utxo_network(family, network)
    normalised = validate_address(family, address, network)
    hrp = params.segwit_hrp
    if hrp is not None and normalised.startswith(f"{hrp}1"):
        version, program = SegwitBech32Decoder.Decode(hrp, normalised)
        # OP_0 for v0, OP_1..OP_16 (0x51..0x60) above it; then the program's push.
        return bytes([0x50 + version if version else 0, len(program)]) + bytes(program)
    if params.cashaddr_hrp is not None:
        kind, hash160 = BchBech32Decoder.Decode(params.cashaddr_hrp, normalised)
        version, payload = bytes(kind), bytes(hash160)
        is_p2sh = version == _CASHADDR_P2SH
    else:
        raw = bytes(Base58Decoder.CheckDecode(normalised))
        version, payload = raw[:1], raw[1:]
        is_p2sh = version == params.p2sh
    if is_p2sh:
        return b"\xa9\x14" + payload + b"\x87"  # OP_HASH160 <20> OP_EQUAL
    return b"\x76\xa9\x14" + payload + b"\x88\xac"  # OP_DUP OP_HASH160 <20> OP_EQUALVERIFY …


def script_address(family: Family, script: bytes, network: Network = Network.MAINNET) -> str | None:
    """The address an output's ``script`` pays, in the form ``validate_address`` gives (the
    inverse of :func:`output_script`): P2PKH, P2SH, segwit v0 (20 or 32 bytes) and Taproot on
    a UTXO ``family``'s ``network``. None for a script no address stands for (``OP_RETURN``,
    bare multisig, P2PK, witness versions without spending rules). ValueError for another family.
    """
    params = utxo_network(family, network)
    size = len(script)
    if size == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return _hash160_address(params, script[3:23], p2sh=False)
    if size == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return _hash160_address(params, script[2:22], p2sh=True)
    hrp = params.segwit_hrp
    if hrp is None or size < 4 or script[1] != size - 2:
        return None
    if script[0] == 0 and size - 2 in (_P2WPKH_BYTES, _P2WSH_BYTES):
        return str(SegwitBech32Encoder.Encode(hrp, 0, script[2:]))
    if script[0] == 0x51 and size - 2 == _TAPROOT_BYTES:  # OP_1 <32>: bech32m (BIP350)
        return str(SegwitBech32Encoder.Encode(hrp, 1, script[2:]))
    return None


def _hash160_address(params: UtxoNetwork, hash160: bytes, *, p2sh: bool) -> str:
    if params.cashaddr_hrp is not None:
        kind = _CASHADDR_P2SH if p2sh else _CASHADDR_P2PKH
        return _as_cashaddr(params.cashaddr_hrp, kind)(hash160)
    return _as_base58check(params.p2sh if p2sh else params.p2pkh)(hash160)


def _test_chain(family: Family, network: Network) -> tuple[str, str]:
    """The chain's name and the forms expected on one of its test networks."""
    name = f"{_CHAINS[family][0]} {network}"
    params = utxo_network(family, network)
    if params.segwit_hrp is not None:
        hrp = params.segwit_hrp
        return name, f"{hrp}1q…, {hrp}1p… or a base58 {network} address"
    if params.cashaddr_hrp is not None:
        return name, f"{params.cashaddr_hrp}:q…/p… or a legacy base58 {network} address"
    return name, f"a base58 {network} address"


# CashAddr version bytes (the type of hash), the same on every network: the prefix tells
# networks apart.
_CASHADDR_P2PKH, _CASHADDR_P2SH = b"\x00", b"\x08"


def _segwit(hrp: str) -> Parser:
    def parse(candidate: str) -> tuple[str, bytes]:
        if len(candidate) > _MAX_SEGWIT_CHARS:
            raise ValueError("longer than a segwit address can be")
        # Picks bech32 for v0 and bech32m for v1+ (BIP350) and checks case, padding and the
        # v0 program lengths (BIP141).
        version, raw = SegwitBech32Decoder.Decode(hrp, candidate)
        program = bytes(raw)
        if version == 0 and len(program) in (_P2WPKH_BYTES, _P2WSH_BYTES):
            return candidate.lower(), program
        if version == 1 and len(program) == _TAPROOT_BYTES:
            # BIP341: the program is an x-only key; one off the curve can never be spent.
            if not Secp256k1PublicKey.IsValidBytes(b"\x02" + program):
                raise InvalidAddress("this Taproot address is not a valid public key")
            return candidate.lower(), program
        raise InvalidAddress(
            f"segwit version {version} with a {len(program)}-byte program has no spending "
            "rules yet, so anyone could take the funds: use a v0 (…1q…) or Taproot (…1p…) address"
        )

    return parse


def _base58check(decoder: Any, net_ver: bytes, *, rewrite: Rewrite | None = None) -> Parser:
    """P2PKH or P2SH; ``rewrite`` turns the hash160 into the preferred form of the address."""

    def parse(candidate: str) -> tuple[str, bytes]:
        hash160 = bytes(decoder.DecodeAddr(candidate, net_ver=net_ver))
        return (candidate if rewrite is None else rewrite(hash160)), hash160

    return parse


def _as_cashaddr(hrp: str, version: bytes) -> Rewrite:
    return lambda hash160: str(BchBech32Encoder.Encode(hrp, version, hash160))


def _as_base58check(version: bytes) -> Rewrite:
    return lambda hash160: str(Base58Encoder.CheckEncode(version + hash160))


def _cashaddr(decoder: Any, hrp: str, net_ver: bytes) -> Parser:
    def parse(candidate: str) -> tuple[str, bytes]:
        if candidate.isupper():  # CashAddr may be all upper case (QR codes)
            candidate = candidate.lower()
        if ":" not in candidate:
            candidate = f"{hrp}:{candidate}"
        return candidate, bytes(decoder.DecodeAddr(candidate, hrp=hrp, net_ver=net_ver))

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


def eip55(address: str) -> str:
    """``0x`` and 40 hex digits in any case, written in its EIP-55 checksummed form (no checksum
    check, no burn-address check: for addresses a node reports, not ones a person typed).
    Raises ValueError for anything else."""
    if not _EVM_FORM.fullmatch(address):
        raise ValueError(f"{address[:50]!r} is not 0x and 40 hex digits")
    return f"0x{_eip55(address[2:].lower())}"


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


# XLS-5 X-address: base58check (XRPL alphabet) of a 2-byte network prefix, the 20-byte account
# id, a flag (0: no tag, 1: 32-bit tag) and 8 bytes of little-endian tag whose upper 4 are 0.
_X_MAINNET: Final = b"\x05\x44"
_X_BYTES: Final = 31
_ACCOUNT: Final = slice(2, 22)


def _xrp_x_address(candidate: str) -> tuple[str, bytes]:
    raw = bytes(Base58Decoder.CheckDecode(candidate, Base58Alphabets.RIPPLE))
    if len(raw) != _X_BYTES or raw[:2] != _X_MAINNET:
        raise ValueError("not a mainnet X-address")
    account, flag, tag = raw[_ACCOUNT], raw[22], raw[23:]
    if flag == 0 and not any(tag):
        classic = Base58Encoder.CheckEncode(b"\x00" + account, Base58Alphabets.RIPPLE)
        return str(classic), account
    if flag == 1 and not any(tag[4:]):
        return candidate, account
    raise ValueError("X-address with a reserved flag or a 64-bit tag")


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


def _utxo_parsers(family: Family, params: UtxoNetwork) -> tuple[Parser, ...]:
    """Every accepted form of a UTXO family's addresses on one network, preferred form first."""
    if params.cashaddr_hrp is not None:  # BCH
        hrp = params.cashaddr_hrp
        return (
            _cashaddr(BchP2PKHAddrDecoder, hrp, _CASHADDR_P2PKH),
            _cashaddr(BchP2SHAddrDecoder, hrp, _CASHADDR_P2SH),
            _base58check(
                P2PKHAddrDecoder, params.p2pkh, rewrite=_as_cashaddr(hrp, _CASHADDR_P2PKH)
            ),
            _base58check(P2SHAddrDecoder, params.p2sh, rewrite=_as_cashaddr(hrp, _CASHADDR_P2SH)),
        )
    parsers: list[Parser] = []
    if params.segwit_hrp is not None:
        # Litecoin activated segwit and (in 0.21, by BIP8) Taproot with Bitcoin's rules.
        parsers.append(_segwit(params.segwit_hrp))
    parsers += [
        _base58check(P2PKHAddrDecoder, params.p2pkh),
        _base58check(P2SHAddrDecoder, params.p2sh),
    ]
    if params.p2sh_legacy is not None:
        # Older Litecoin wallets still show P2SH with Bitcoin's prefix (3…, 2… on test
        # networks; same script); stored in Litecoin's own form (M…, Q…) so the record cannot
        # be mistaken for a Bitcoin address.
        parsers.append(
            _base58check(P2SHAddrDecoder, params.p2sh_legacy, rewrite=_as_base58check(params.p2sh))
        )
    return tuple(parsers)


_PARSERS: Final[Mapping[tuple[Family, Network], tuple[Parser, ...]]] = MappingProxyType(
    {
        **{
            (family, network): _utxo_parsers(family, utxo_network(family, network))
            for family in sorted(UTXO_FAMILIES)
            for network in Network
        },
        (Family.EVM, Network.MAINNET): (_evm,),
        (Family.SOL, Network.MAINNET): (_solana,),
        (Family.XRP, Network.MAINNET): (_xrp, _xrp_x_address),
        (Family.ADA, Network.MAINNET): (_cardano_shelley, _cardano_byron),
    }
)
