"""coinpay's JSON on the wire: exact decimals as JSON numbers, big amounts as strings."""

from __future__ import annotations

from typing import Any

import simplejson


def dumps(value: Any) -> str:
    """JSON text with Decimal rendered as an exact number (never via float)."""
    return str(simplejson.dumps(value, use_decimal=True, separators=(",", ":"), default=str))
