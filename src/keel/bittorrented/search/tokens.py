"""Names into search tokens: ASCII-folded, lower-cased, split on every non-alphanumeric character.

We tokenise in Python, not in the database, so SQLite FTS5, PostgreSQL and the brute-force test
reference all see the very same tokens. PostgreSQL's own parser would keep ``Movie.Name.2024``
as one ``host`` token, which is exactly how release names are written.
"""

from __future__ import annotations

import re

from anyascii import anyascii

_SPLIT = re.compile(r"[^a-z0-9]+")
# PostgreSQL keeps at most 255 positions per lexeme and 2047 bytes per lexeme; capping here
# keeps every engine and the reference on the same tokens.
MAX_TOKEN_CHARS = 200
MAX_TOKENS = 255


def fold(text: str) -> str:
    """ASCII-fold and lower-case: ``Amélie`` -> ``amelie``, ``Ærø`` -> ``aero``."""
    return anyascii(text).lower()


def tokenize(text: str) -> list[str]:
    """The name's tokens in order (duplicates kept, since phrases need positions)."""
    tokens = [t[:MAX_TOKEN_CHARS] for t in _SPLIT.split(fold(text)) if t]
    return tokens[:MAX_TOKENS]
