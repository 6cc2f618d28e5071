"""QR codes of payment URIs."""

from __future__ import annotations

import base64
import io

import segno


def png(data: str, *, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def data_uri(data: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png(data, scale=4)).decode()
