"""BIP39 mnemonic generation and validation.

Error messages name word positions, never words: they end up in logs and API
responses, and each word is a piece of the secret.
"""

from __future__ import annotations

from typing import Final

from bip_utils import (
    Bip39Languages,
    Bip39MnemonicGenerator,
    Bip39MnemonicValidator,
    MnemonicChecksumError,
)
from bip_utils.bip.bip39.bip39_mnemonic_utils import Bip39WordsListGetter

from keel.coinpay.errors import InvalidMnemonic

WORD_COUNTS: Final = (12, 15, 18, 21, 24)


def generate_mnemonic(words: int = 24) -> str:
    """Return a new English BIP39 mnemonic of ``words`` words from the OS CSPRNG.

    Raises ``ValueError`` unless ``words`` is one of 12, 15, 18, 21, 24.
    """
    if words not in WORD_COUNTS:
        raise ValueError(f"words must be one of {WORD_COUNTS}, got {words}")
    return str(Bip39MnemonicGenerator(Bip39Languages.ENGLISH).FromWordsNumber(words).ToStr())


def normalize_mnemonic(mnemonic: str) -> str:
    """Return ``mnemonic`` lower-cased with single spaces if it is a valid BIP39 phrase.

    Any BIP39 wordlist bip-utils knows is accepted. Raises ``InvalidMnemonic`` naming
    the problem (word count, unknown word positions, checksum).
    """
    words = mnemonic.lower().split()
    if len(words) not in WORD_COUNTS:
        raise InvalidMnemonic(
            f"a BIP39 mnemonic has 12, 15, 18, 21 or 24 words; this one has {len(words)}"
        )
    phrase = " ".join(words)
    try:
        Bip39MnemonicValidator().Validate(phrase)
    except MnemonicChecksumError:
        raise InvalidMnemonic(
            "the mnemonic checksum does not match: a word is mistyped or out of order"
        ) from None
    except ValueError:
        # bip-utils only says "Invalid language"; point at the culprits by position
        # against English, the list nearly every wallet uses.
        raise InvalidMnemonic(_unknown_words_message(words)) from None
    return phrase


def _unknown_words_message(words: list[str]) -> str:
    english = Bip39WordsListGetter().GetByLanguage(Bip39Languages.ENGLISH)
    unknown = []
    for position, word in enumerate(words, start=1):
        try:
            english.GetWordIdx(word)
        except ValueError:
            unknown.append(str(position))
    if not unknown:
        return "the mnemonic mixes words from different BIP39 wordlists"
    if len(unknown) == 1:
        return f"word {unknown[0]} is not in the BIP39 English wordlist"
    return f"words {', '.join(unknown)} are not in the BIP39 English wordlist"
