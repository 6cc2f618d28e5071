"""Magnet links (BEP 9): parse ``magnet:?xt=urn:btih:…`` into a ``Magnet`` and build one back.

The btih is 40 hex digits or 32 base32 characters, either case. ``xt`` may appear several
times (``xt``, ``xt.1``, …), e.g. a v2 ``urn:btmh:`` beside the btih: we take the btih, and
refuse a link whose btih values disagree or that has none (a v2-only link; the index keys by
the v1 hash). The first non-empty ``dn`` is the display name; ``tr`` may repeat. Trackers keep
their order, lose duplicates, and only http(s), udp and ws(s) ones are kept, since a tracker
URL is later shown as a link and handed to clients.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, quote

from keel.bittorrented.errors import MalformedMagnet
from keel.bittorrented.torrent.values import INFO_HASH_BYTES, Magnet

# Long tracker lists make real links a few KiB; beyond this it is not a link someone pasted.
MAX_MAGNET_CHARS = 16 * 1024
_MAX_FIELDS = 512
_SCHEME = "magnet:?"
_BTIH = "urn:btih:"
_HEX = re.compile(r"[0-9a-fA-F]{40}")
_BASE32 = re.compile(r"[A-Za-z2-7]{32}")
_TRACKER_SCHEMES = ("http://", "https://", "udp://", "ws://", "wss://")
_NUMBERED = re.compile(r"(xt|tr|dn)(\.[0-9]{1,3})?")


def parse_magnet(uri: str) -> Magnet:
    """Parse a magnet link; surrounding whitespace is ignored.

    Raises ``MalformedMagnet`` saying what is wrong for any other input, never another error.
    """
    if len(uri) > MAX_MAGNET_CHARS:
        raise MalformedMagnet(f"the link is {len(uri)} characters, over {MAX_MAGNET_CHARS}")
    uri = uri.strip()
    if uri[: len(_SCHEME)].lower() != _SCHEME:
        raise MalformedMagnet("the link does not start with 'magnet:?'")
    try:
        fields = parse_qsl(uri[len(_SCHEME) :], keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError as exc:  # parse_qsl's only failure: too many fields
        raise MalformedMagnet(f"the link has more than {_MAX_FIELDS} parameters") from exc

    hashes: list[bytes] = []
    names: list[str] = []
    trackers: list[str] = []
    for key, value in fields:
        kind = _NUMBERED.fullmatch(key.lower())
        if kind is None:
            continue
        if kind.group(1) == "xt":
            if value[: len(_BTIH)].lower() == _BTIH:
                hashes.append(_info_hash(value[len(_BTIH) :]))
        elif kind.group(1) == "dn":
            names.append(value)
        elif value.lower().startswith(_TRACKER_SCHEMES) and value not in trackers:
            trackers.append(value)

    if not hashes:
        raise MalformedMagnet("the link has no 'xt=urn:btih:' info hash")
    if any(other != hashes[0] for other in hashes[1:]):
        raise MalformedMagnet("the link names two different btih info hashes")
    display_name = next((name for name in names if name), None)
    return Magnet(info_hash=hashes[0], display_name=display_name, trackers=tuple(trackers))


def build_magnet(info_hash: bytes, name: str | None = None, trackers: Sequence[str] = ()) -> str:
    """A magnet link with a lower-case hex btih, the name as ``dn`` and each tracker as ``tr``.

    Raises ValueError when ``info_hash`` is not 20 bytes.
    """
    if len(info_hash) != INFO_HASH_BYTES:
        raise ValueError("info_hash must be 20 bytes")
    parts = [f"xt={_BTIH}{info_hash.hex()}"]
    if name:
        parts.append(f"dn={quote(name, safe='')}")
    parts += [f"tr={quote(tracker, safe='')}" for tracker in trackers]
    return _SCHEME + "&".join(parts)


def _info_hash(text: str) -> bytes:
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    if _BASE32.fullmatch(text):
        return base64.b32decode(text.upper())
    raise MalformedMagnet(
        f"the btih {text[:64]!r} is neither 40 hex digits nor 32 base32 characters"
    )
