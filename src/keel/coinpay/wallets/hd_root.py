"""The installation's custodial HD root: one BIP39 mnemonic, every family's addresses.

Derivation is split where it becomes per-payment (see ``families.CACHED_PREFIX``):
the hardened prefix of each family (and network) is derived once per ``HDRoot`` and
cached, so a new payment address costs only the leaf steps (~0.1 ms).

A UTXO family derives and writes its addresses for one ``Network`` at a time
(``wallets.networks``): mainnet by default; a test network uses coin type 1 in the
path and that network's encoding, both from one table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NoReturn

from bip_utils import (
    AdaShelleyAddrEncoder,
    BchP2PKHAddrEncoder,
    Bip32Slip10Secp256k1,
    Bip39SeedGenerator,
    Bip44Changes,
    CardanoShelley,
    P2PKHAddrEncoder,
    P2WPKHAddrEncoder,
)
from bip_utils.bip.conf.bip44 import Bip44Conf

from keel.coinpay.wallets.cardano import icarus_account, icarus_entropy
from keel.coinpay.wallets.families import (
    FEE_WALLET_PATHS,
    LEAF,
    UTXO_FAMILIES,
    Family,
    cached_prefix,
    check_index,
)
from keel.coinpay.wallets.mnemonic import normalize_mnemonic
from keel.coinpay.wallets.networks import Network, UtxoNetwork, check_network, utxo_network

# Account families: bip-utils' per-coin configuration supplies the curve, the BIP32
# class and the address encoder with its parameters; we only choose the coin. UTXO
# families are built from ``wallets.networks`` instead, for the network asked for.
_COIN_CONF: Final[Mapping[Family, Any]] = MappingProxyType(
    {
        Family.EVM: Bip44Conf.Ethereum,
        Family.SOL: Bip44Conf.Solana,
        Family.XRP: Bip44Conf.Ripple,
    }
)


@dataclass(frozen=True, slots=True)
class _Chain:
    """A family's cached prefix node and how to turn a leaf key into an address."""

    # Addresses are derived from the private node too: for ADA, bip-utils' public
    # Ed25519-BIP32 derivation decompresses points in pure Python and is ~4x slower.
    node: Any  # bip-utils Bip32 node at CACHED_PREFIX, with its private key
    leaf: str
    encode: Callable[[Any], str]  # bip-utils public key object -> address


class HDRoot:
    """Custodial HD wallet root built from the installation's BIP39 mnemonic.

    Create with ``HDRoot.from_mnemonic``. Safe to share between threads. Never
    reveals its secrets through ``repr``/``str`` and refuses to be pickled.
    """

    __slots__ = ("_chains", "_entropy", "_lock", "_passphrase", "_seed")

    def __init__(self, *, seed: bytes, entropy: bytes, passphrase: str) -> None:
        """Internal: use ``from_mnemonic``. ``seed`` is the 64-byte BIP39 seed,
        ``entropy`` the mnemonic's entropy (Cardano Icarus derives from it)."""
        self._seed = seed
        self._entropy = entropy
        self._passphrase = passphrase
        self._chains: dict[tuple[Family, Network], _Chain] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_mnemonic(cls, mnemonic: str, passphrase: str = "") -> HDRoot:
        """Build the root from a BIP39 ``mnemonic`` and optional BIP39 ``passphrase``.

        Whitespace and case are normalised. Raises ``InvalidMnemonic`` for a wrong
        word count, an unknown word or a bad checksum. Costs ~5 ms (PBKDF2).
        """
        phrase = normalize_mnemonic(mnemonic)
        return cls(
            seed=bytes(Bip39SeedGenerator(phrase).Generate(passphrase)),
            entropy=icarus_entropy(phrase),
            passphrase=passphrase,
        )

    def address(self, family: Family, index: int, network: Network = Network.MAINNET) -> str:
        """Return the receive address of ``family`` at ``index`` on ``network`` (canonical
        form: ``ltc1q…`` on mainnet, ``rltc1q…`` on Litecoin's regtest).

        Raises ``IndexExhausted`` above ``MAX_INDEX``, ``ValueError`` below 0 and for a test
        network of a family that has none (only UTXO families choose a network).
        """
        check_index(index)
        chain = self._chain(family, network)
        node = chain.node.DerivePath(chain.leaf.format(index=index))
        return chain.encode(node.PublicKey().KeyObject())

    def private_key(self, family: Family, index: int, network: Network = Network.MAINNET) -> bytes:
        """Return the raw private key of ``family`` at ``index`` on ``network``.

        32 bytes for secp256k1 families and SOL (the ed25519 seed); for ADA the
        64-byte extended payment key kL ‖ kR (Ed25519-BIP32). Raises like ``address``.
        """
        check_index(index)
        chain = self._chain(family, network)
        node = chain.node.DerivePath(chain.leaf.format(index=index))
        return bytes(node.PrivateKey().KeyObject().Raw().ToBytes())

    def fee_wallet(self, family: Family) -> tuple[str, bytes]:
        """The platform fee wallet of ``family`` (``FEE_WALLET_PATHS``: EVM and SOL): its address
        and raw private key. It pays the network fees of token sweeps; the operator keeps it
        funded (``/readyz`` and the sweep metrics show when it runs dry). KeyError for a family
        without one."""
        conf = _COIN_CONF[family] if family in FEE_WALLET_PATHS else None
        if conf is None:
            raise KeyError(f"{family} has no fee wallet")
        master = conf.Bip32Class().FromSeed(self._seed, conf.KeyNetVersions())
        node = master.DerivePath(FEE_WALLET_PATHS[family])
        address = str(conf.AddrClass().EncodeKey(node.PublicKey().KeyObject(), **conf.AddrParams()))
        return address, bytes(node.PrivateKey().KeyObject().Raw().ToBytes())

    def __repr__(self) -> str:
        return "HDRoot(<secret>)"

    def __reduce__(self) -> NoReturn:
        # Pickling would write the seed to wherever the pickle goes (cache, queue, disk).
        raise TypeError("HDRoot holds key material and cannot be pickled or copied")

    def _chain(self, family: Family, network: Network) -> _Chain:
        # Lock-free fast path: a dict read is atomic and entries are never replaced.
        key = (family, network)
        chain = self._chains.get(key)
        if chain is None:
            family, network = Family(family), check_network(family, network)
            with self._lock:
                chain = self._chains.get(key)
                if chain is None:
                    chain = self._build_chain(family, network)
                    self._chains[key] = chain
        return chain

    def _build_chain(self, family: Family, network: Network) -> _Chain:
        if family in UTXO_FAMILIES:
            return self._build_utxo_chain(family, network)
        if family is Family.ADA:
            return self._build_cardano_chain()
        conf = _COIN_CONF[family]
        master = conf.Bip32Class().FromSeed(self._seed, conf.KeyNetVersions())
        node = master.DerivePath(cached_prefix(family))
        encoder, params = conf.AddrClass(), conf.AddrParams()
        return _Chain(
            node=node,
            leaf=LEAF[family],
            encode=lambda key: str(encoder.EncodeKey(key, **params)),
        )

    def _build_utxo_chain(self, family: Family, network: Network) -> _Chain:
        master = Bip32Slip10Secp256k1.FromSeed(self._seed)
        node = master.DerivePath(cached_prefix(family, network))
        encode = _receive_encoder(family, utxo_network(family, network))
        return _Chain(node=node, leaf=LEAF[family], encode=encode)

    def _build_cardano_chain(self) -> _Chain:
        account = icarus_account(self._entropy, self._passphrase)
        # CardanoShelley knows where CIP-1852 puts the staking key (account/2/0).
        staking = CardanoShelley.FromCip1852Object(account).StakingObject()
        staking_key = staking.Bip32Object().PublicKey().KeyObject()
        node = account.Change(Bip44Changes.CHAIN_EXT).Bip32Object()
        return _Chain(
            node=node,
            leaf=LEAF[Family.ADA],
            encode=lambda key: str(AdaShelleyAddrEncoder.EncodeKey(key, pub_skey=staking_key)),
        )


# CashAddr's version byte of a P2PKH key hash: 0 on every network (the prefix tells them apart).
_CASHADDR_P2PKH: Final = b"\x00"


def _receive_encoder(family: Family, params: UtxoNetwork) -> Callable[[Any], str]:
    """How a payment address of a UTXO family is written: BIP84 P2WPKH for BTC and LTC, BIP44
    P2PKH for DOGE, and P2PKH as CashAddr for BCH, each with its network's prefix."""
    if family in (Family.BTC, Family.LTC):
        hrp = params.segwit_hrp
        return lambda key: str(P2WPKHAddrEncoder.EncodeKey(key, hrp=hrp))
    if family is Family.BCH:
        cash_hrp = params.cashaddr_hrp
        return lambda key: str(
            BchP2PKHAddrEncoder.EncodeKey(key, hrp=cash_hrp, net_ver=_CASHADDR_P2PKH)
        )
    net_ver = params.p2pkh
    return lambda key: str(P2PKHAddrEncoder.EncodeKey(key, net_ver=net_ver))
