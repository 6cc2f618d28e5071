"""QR codes of payment URIs."""

from __future__ import annotations

import base64
import functools
import io

import segno


def png(data: str, *, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


# Rendering costs about 10 ms of CPU (segno tries all eight masks, then encodes a PNG), and
# clients poll a payment whose URI never changes: each URI is rendered once (about 1 KB each).
@functools.lru_cache(maxsize=2048)
def data_uri(data: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png(data, scale=4)).decode()
