"""HD wallets of coinpay: custodial derivation, watch-only xpubs, address validation.

``HDRoot`` derives every family's receive addresses and keys from the
installation's BIP39 mnemonic; ``WatchOnlyKey`` derives a merchant's UTXO
addresses from their account xpub; ``validate_address`` checks payout addresses.
A UTXO family's addresses are written for one ``Network`` (mainnet by default).
"""

from keel.coinpay.wallets.address_validation import (
    output_script,
    script_address,
    validate_address,
)
from keel.coinpay.wallets.families import (
    MAX_INDEX,
    PATH_TEMPLATES,
    UTXO_FAMILIES,
    Family,
    cached_prefix,
    path_for,
)
from keel.coinpay.wallets.hd_root import HDRoot
from keel.coinpay.wallets.mnemonic import generate_mnemonic
from keel.coinpay.wallets.networks import Network
from keel.coinpay.wallets.watch_only import WatchOnlyKey

__all__ = [
    "MAX_INDEX",
    "PATH_TEMPLATES",
    "UTXO_FAMILIES",
    "Family",
    "HDRoot",
    "Network",
    "WatchOnlyKey",
    "cached_prefix",
    "generate_mnemonic",
    "output_script",
    "path_for",
    "script_address",
    "validate_address",
]
