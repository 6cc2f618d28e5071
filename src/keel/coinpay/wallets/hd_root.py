"""The installation's custodial HD root: one BIP39 mnemonic, every family's addresses.

Derivation is split where it becomes per-payment (see ``families.CACHED_PREFIX``):
the hardened prefix of each family is derived once per ``HDRoot`` and cached, so a
new payment address costs only the leaf steps (~0.1 ms).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NoReturn

from bip_utils import (
    AdaShelleyAddrEncoder,
    Bip39SeedGenerator,
    Bip44Changes,
    CardanoShelley,
)
from bip_utils.bip.conf.bip44 import Bip44Conf
from bip_utils.bip.conf.bip84 import Bip84Conf

from keel.coinpay.wallets.cardano import icarus_account, icarus_entropy
from keel.coinpay.wallets.families import CACHED_PREFIX, LEAF, Family, check_index
from keel.coinpay.wallets.mnemonic import normalize_mnemonic

# bip-utils' per-coin configuration supplies the curve, the BIP32 class and the
# address encoder with its mainnet parameters; we only choose the coin.
_COIN_CONF: Final[Mapping[Family, Any]] = MappingProxyType(
    {
        Family.BTC: Bip84Conf.BitcoinMainNet,
        Family.LTC: Bip84Conf.LitecoinMainNet,
        Family.BCH: Bip44Conf.BitcoinCashMainNet,
        Family.DOGE: Bip44Conf.DogecoinMainNet,
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
        self._chains: dict[Family, _Chain] = {}
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

    def address(self, family: Family, index: int) -> str:
        """Return the receive address of ``family`` at ``index`` (mainnet, canonical form).

        Raises ``IndexExhausted`` above ``MAX_INDEX`` and ``ValueError`` below 0.
        """
        check_index(index)
        chain = self._chain(family)
        node = chain.node.DerivePath(chain.leaf.format(index=index))
        return chain.encode(node.PublicKey().KeyObject())

    def private_key(self, family: Family, index: int) -> bytes:
        """Return the raw private key of ``family`` at ``index``.

        32 bytes for secp256k1 families and SOL (the ed25519 seed); for ADA the
        64-byte extended payment key kL ‖ kR (Ed25519-BIP32). Raises like ``address``.
        """
        check_index(index)
        chain = self._chain(family)
        node = chain.node.DerivePath(chain.leaf.format(index=index))
        return bytes(node.PrivateKey().KeyObject().Raw().ToBytes())

    def __repr__(self) -> str:
        return "HDRoot(<secret>)"

    def __reduce__(self) -> NoReturn:
        # Pickling would write the seed to wherever the pickle goes (cache, queue, disk).
        raise TypeError("HDRoot holds key material and cannot be pickled or copied")

    def _chain(self, family: Family) -> _Chain:
        # Lock-free fast path: a dict read is atomic and entries are never replaced.
        chain = self._chains.get(family)
        if chain is None:
            with self._lock:
                chain = self._chains.get(family)
                if chain is None:
                    chain = self._build_chain(Family(family))
                    self._chains[family] = chain
        return chain

    def _build_chain(self, family: Family) -> _Chain:
        if family is Family.ADA:
            return self._build_cardano_chain()
        conf = _COIN_CONF[family]
        master = conf.Bip32Class().FromSeed(self._seed, conf.KeyNetVersions())
        node = master.DerivePath(CACHED_PREFIX[family])
        encoder, params = conf.AddrClass(), conf.AddrParams()
        return _Chain(
            node=node,
            leaf=LEAF[family],
            encode=lambda key: str(encoder.EncodeKey(key, **params)),
        )

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
