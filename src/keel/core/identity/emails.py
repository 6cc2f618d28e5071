"""Email addresses and display names as accounts keep them.

An email is normalised once, here (trimmed, NFKC, lower-cased), so ``Ana@Example.COM `` and
``ana@example.com`` are one account. Validation is a sane pattern, not RFC 5322: no DNS, no
quoted local parts, no comments; a real address that fails it is rarer than a typo it catches.
"""

from __future__ import annotations

import re
import unicodedata

from keel.core.identity.errors import InvalidDisplayName, InvalidEmail

MAX_EMAIL_CHARS = 254  # RFC 5321's path limit, less the angle brackets
MAX_LOCAL_CHARS = 64
MAX_DISPLAY_NAME_CHARS = 80

# Local part: printable, no spaces, no characters that need quoting. Domain: two or more
# dot-separated labels of letters (any script), digits and inner hyphens; the last one
# alphabetic (a TLD), so "ana@localhost" and "ana@10.0.0.1" are refused.
_LOCAL = r"[^\s@\"(),:;<>\[\]\\]+"
_LABEL = r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?"
_TLD = r"[^\W\d_]{2,63}"
_EMAIL = re.compile(rf"({_LOCAL})@((?:{_LABEL}\.)+{_TLD})")


def normalise_email(raw: str) -> str:
    """``raw`` trimmed, NFKC-normalised and lower-cased; InvalidEmail unless it then looks like
    an address (one ``@``, a dotted domain, no whitespace or control characters)."""
    # Lower-casing after NFKC (which may make capitals, "ℌ" -> "H"), NFKC again after it
    # (which may leave a decomposed form, "İ" -> "i̇"): one fixed point for every spelling.
    email = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).lower()).strip()
    if len(email) > MAX_EMAIL_CHARS or any(unicodedata.category(c)[0] == "C" for c in email):
        raise InvalidEmail()
    match = _EMAIL.fullmatch(email)
    if match is None or len(match.group(1)) > MAX_LOCAL_CHARS or ".." in email:
        raise InvalidEmail()
    if email.startswith(".") or ".@" in email:
        raise InvalidEmail()
    return email


def clean_display_name(raw: str) -> str:
    """``raw`` NFKC-normalised with runs of whitespace made one space; InvalidDisplayName when
    that is empty, longer than 80 characters or holds control or format characters."""
    name = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not name or len(name) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidDisplayName()
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise InvalidDisplayName()
    return name


def default_display_name(email: str) -> str:
    """A display name for someone who gave none: the local part of their (normalised) email."""
    return clean_display_name(email.partition("@")[0][:MAX_DISPLAY_NAME_CHARS])
