"""Watch-only address derivation from a merchant's account-level extended public key.

The merchant exports the key of an account (e.g. the zpub of m/84'/0'/0'); we
derive its receive chain ``/0/index`` and never hold a private key. The address
type follows the key's SLIP-132 version bytes, so the addresses we hand out are
the ones the merchant's wallet scans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from bip_utils import (
    Base58ChecksumError,
    Base58Decoder,
    BchP2PKHAddrEncoder,
    Bip32KeyError,
    Bip32KeyNetVersions,
    Bip32Slip10Secp256k1,
    CoinsConf,
    P2PKHAddrEncoder,
    P2SHAddrEncoder,
    P2WPKHAddrEncoder,
)

from keel.coinpay.errors import InvalidExtendedKey
from keel.coinpay.wallets.families import UTXO_FAMILIES, Family, check_index

_SERIALIZED_BYTES: Final = 78  # BIP32: version 4, depth 1, parent 4, child 4, chain 32, key 33
_KEY_OFFSET: Final = 45  # first byte of the key; 0x00 marks a private key
_ACCOUNT_DEPTH: Final = 3

Encode = Callable[[Any], str]


def _p2wpkh(hrp: str) -> Encode:
    return lambda key: str(P2WPKHAddrEncoder.EncodeKey(key, hrp=hrp))


def _p2sh_p2wpkh(net_ver: bytes) -> Encode:
    # bip-utils' P2SH encoder builds the BIP49 P2SH-wrapped P2WPKH script.
    return lambda key: str(P2SHAddrEncoder.EncodeKey(key, net_ver=net_ver))


def _p2pkh(net_ver: bytes) -> Encode:
    return lambda key: str(P2PKHAddrEncoder.EncodeKey(key, net_ver=net_ver))


def _cashaddr(hrp: str, net_ver: bytes) -> Encode:
    return lambda key: str(BchP2PKHAddrEncoder.EncodeKey(key, hrp=hrp, net_ver=net_ver))


@dataclass(frozen=True, slots=True)
class _Version:
    """One public key version: its name, the private twin, the address it implies."""

    name: str
    public: bytes
    private: bytes
    encode: Encode


_BTC, _LTC = CoinsConf.BitcoinMainNet, CoinsConf.LitecoinMainNet
_BCH, _DOGE = CoinsConf.BitcoinCashMainNet, CoinsConf.DogecoinMainNet


def _xpub(encode: Encode) -> _Version:
    return _Version("xpub", bytes.fromhex("0488b21e"), bytes.fromhex("0488ade4"), encode)


def _ypub(encode: Encode) -> _Version:
    return _Version("ypub", bytes.fromhex("049d7cb2"), bytes.fromhex("049d7878"), encode)


def _zpub(encode: Encode) -> _Version:
    return _Version("zpub", bytes.fromhex("04b24746"), bytes.fromhex("04b2430c"), encode)


_VERSIONS: Final[Mapping[Family, tuple[_Version, ...]]] = MappingProxyType(
    {
        Family.BTC: (
            _zpub(_p2wpkh(_BTC.ParamByKey("p2wpkh_hrp"))),
            _ypub(_p2sh_p2wpkh(_BTC.ParamByKey("p2sh_net_ver"))),
            _xpub(_p2pkh(_BTC.ParamByKey("p2pkh_net_ver"))),
        ),
        Family.LTC: (
            _zpub(_p2wpkh(_LTC.ParamByKey("p2wpkh_hrp"))),
            # Litecoin's own SLIP-132 prefixes (Ltub, Mtub) next to the Bitcoin ones.
            _ypub(_p2sh_p2wpkh(_LTC.ParamByKey("p2sh_std_net_ver"))),
            _Version(
                "Mtub",
                bytes.fromhex("01b26ef6"),
                bytes.fromhex("01b26792"),
                _p2sh_p2wpkh(_LTC.ParamByKey("p2sh_std_net_ver")),
            ),
            _Version(
                "Ltub",
                bytes.fromhex("019da462"),
                bytes.fromhex("019d9cfe"),
                _p2pkh(_LTC.ParamByKey("p2pkh_std_net_ver")),
            ),
            _xpub(_p2pkh(_LTC.ParamByKey("p2pkh_std_net_ver"))),
        ),
        Family.BCH: (
            _xpub(
                _cashaddr(_BCH.ParamByKey("p2pkh_std_hrp"), _BCH.ParamByKey("p2pkh_std_net_ver"))
            ),
        ),
        Family.DOGE: (
            _Version(
                "dgub",
                bytes.fromhex("02facafd"),
                bytes.fromhex("02fac398"),
                _p2pkh(_DOGE.ParamByKey("p2pkh_net_ver")),
            ),
            _xpub(_p2pkh(_DOGE.ParamByKey("p2pkh_net_ver"))),
        ),
    }
)

_PRIVATE_VERSIONS: Final = frozenset(v.private for vs in _VERSIONS.values() for v in vs)


class WatchOnlyKey:
    """An account-level extended public key of a UTXO family; derives receive addresses.

    Create with ``WatchOnlyKey.parse``. Immutable and safe to share between threads.
    """

    __slots__ = ("_encode", "_family", "_fingerprint", "_key", "_receive", "_version")

    def __init__(
        self, family: Family, key: str, version: str, receive: Any, fingerprint: str, encode: Encode
    ) -> None:
        """Internal: use ``parse``."""
        self._family = family
        self._key = key
        self._version = version
        self._receive = receive
        self._fingerprint = fingerprint
        self._encode = encode

    @classmethod
    def parse(cls, family: Family, extended_key: str) -> WatchOnlyKey:
        """Parse an account-level extended public key (xpub/ypub/zpub/Ltub/Mtub/dgub).

        Raises ``InvalidExtendedKey`` if ``family`` is not a UTXO family, if the key
        is private, malformed, of a version this family does not use, or deeper
        than an account key.
        """
        family = Family(family)
        if family not in UTXO_FAMILIES:
            raise InvalidExtendedKey(
                f"watch-only is supported for UTXO chains (BTC, LTC, BCH, DOGE), not {family}"
            )
        key = extended_key.strip()
        try:
            raw = bytes(Base58Decoder.CheckDecode(key))
        except (Base58ChecksumError, ValueError):
            raise InvalidExtendedKey(
                f"not a valid {family} extended public key: base58check decoding failed"
            ) from None
        if len(raw) != _SERIALIZED_BYTES:
            raise InvalidExtendedKey(
                f"not a valid {family} extended public key: {len(raw)} bytes, "
                f"expected {_SERIALIZED_BYTES}"
            )
        if raw[:4] in _PRIVATE_VERSIONS or raw[_KEY_OFFSET] == 0:
            raise InvalidExtendedKey(
                "this is a private extended key; never paste a private key anywhere. "
                "Export the account's extended public key (xpub/ypub/zpub) instead"
            )
        version = next((v for v in _VERSIONS[family] if v.public == raw[:4]), None)
        if version is None:
            accepted = ", ".join(v.name for v in _VERSIONS[family])
            raise InvalidExtendedKey(
                f"this extended key's version is not used by {family}; expected one of {accepted}"
            )
        if raw[4] > _ACCOUNT_DEPTH:
            # A change- or address-level key would make us derive below the
            # receive chain, into addresses no wallet scans.
            raise InvalidExtendedKey(
                f"this key is at depth {raw[4]}; export the account-level key "
                f"(depth {_ACCOUNT_DEPTH}, e.g. m/84'/0'/0')"
            )
        try:
            account = Bip32Slip10Secp256k1.FromExtendedKey(
                key, Bip32KeyNetVersions(version.public, version.private)
            )
        except (Bip32KeyError, ValueError):
            raise InvalidExtendedKey(
                f"not a valid {family} extended public key: the key is not a curve point"
            ) from None
        return cls(
            family=family,
            key=key,
            version=version.name,
            receive=account.ChildKey(0),
            fingerprint=account.FingerPrint().ToHex(),
            encode=version.encode,
        )

    @property
    def family(self) -> Family:
        """The derivation family the key belongs to."""
        return self._family

    @property
    def key(self) -> str:
        """The extended public key as given (whitespace stripped), for storage."""
        return self._key

    @property
    def version(self) -> str:
        """The key's version name, e.g. ``zpub``; it decides the address type."""
        return self._version

    @property
    def fingerprint(self) -> str:
        """The key's own BIP32 fingerprint, 8 hex digits: a short stable id for display."""
        return self._fingerprint

    def address(self, index: int) -> str:
        """Return the receive address ``/0/index`` under the account key.

        Raises ``IndexExhausted`` above ``MAX_INDEX`` and ``ValueError`` below 0.
        """
        child = self._receive.ChildKey(check_index(index))
        return self._encode(child.PublicKey().KeyObject())

    def __repr__(self) -> str:
        return f"WatchOnlyKey({self._family}, {self._version}, fingerprint={self._fingerprint})"
