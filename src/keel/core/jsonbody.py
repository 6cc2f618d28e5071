"""Request bodies' JSON read exactly: numbers keep the digits the client sent.

    router = APIRouter(route_class=ExactJSONRoute)  # bodies of its routes are read this way

A body model then takes an amount from ``JsonNumber.text`` (e.g. coinpay's payment bodies), so
``19.99`` is ``Decimal("19.99")``, never the float's binary value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class JsonNumber(float):
    """A JSON number with a fraction or exponent, as read from a request body: it behaves as
    the float it always was, and ``text`` keeps the digits as sent, so that money is read
    exactly from them (``19.99`` is ``Decimal("19.99")``, never the float's binary value)."""

    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number


_MAX_JSON_INT_DIGITS = 100  # int() of thousands of digits is slow, then refused


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_INT_DIGITS:
        raise json.JSONDecodeError("integer too long", text, 0)
    return int(text)


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def loads_request_json(body: bytes | str) -> Any:
    """A request body's JSON (RFC 8259 only: no NaN or Infinity, integers of at most 100
    digits), numbers with a fraction or exponent as :class:`JsonNumber`."""
    return json.loads(
        body, parse_float=JsonNumber, parse_int=_json_int, parse_constant=_no_constant
    )


class _ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_request_json(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose JSON body is read by :func:`loads_request_json` (``APIRouter(route_class=
    ExactJSONRoute)``), so a body model can take amounts from the digits the client sent."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(_ExactJSONRequest(request.scope, request.receive))

        return exact
