"""OpenAPI for problem+json errors: one shared ``Problem`` schema and the error responses a
route declares with it, so clients and fuzzers see the 4xx bodies ``keel.core.app`` sends.

    router = APIRouter()

    @router.get("/things/{id}", responses=problem_responses(400, 401, 404))
    async def get_thing(id: str) -> Response: ...

    document_problems(app)  # once per app (the document is built lazily)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final

from fastapi import FastAPI
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from keel.core.app import PROBLEM_JSON


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("Input should be a valid integer")  # pydantic's lax int takes true
    return value


NOT_A_BOOL: Final = BeforeValidator(_not_a_bool)
"""Makes an ``int`` one as JSON Schema's ``integer`` means it: ``3`` or ``3.0``, never ``true``
(pydantic's lax int takes it). Put it after the bounds, so the schema still shows them:
``Annotated[int, Field(ge=1, le=9), NOT_A_BOOL]``."""

SCHEMA_NAME: Final = "Problem"
_REF_PREFIX: Final = "#/components/schemas/"
# FastAPI documents a 422 HTTPValidationError on every route with parameters; ours render
# request validation as a 400 problem (keel.core.app), so that entry would be false.
_FASTAPI_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")

DESCRIPTIONS: Final = {
    400: "Malformed or invalid input (code names the rule; `errors` lists each field)",
    401: "Missing, malformed or unknown credentials",
    403: "The credentials do not allow this action",
    404: "No such resource for this caller",
    405: "The path does not take this method; `Allow` lists those it takes",
    409: "The request conflicts with the resource's current state",
    413: "The request body is larger than the server accepts",
    422: "Well-formed, but not possible for this resource",
    429: "Rate limit exceeded; retry after `retry_after` seconds",
    431: "Too many request headers, or too long",
    500: "Unexpected failure; quote `request_id`",
    503: "A dependency is unavailable; retry later",
    504: "An upstream (e.g. the peer network) did not answer in time",
}


class FieldError(BaseModel):
    """One field that failed request validation."""

    loc: list[str] = Field(description="Where: e.g. ['body', 'amount']")
    msg: str
    type: str


def _absent_not_null(schema: dict[str, Any], _model: type[BaseModel]) -> None:
    # An optional member is left out of the body, never sent as null: say so in the schema.
    for member in schema.get("properties", {}).values():
        if "default" in member and member["default"] is None:
            del member["default"]


class Problem(BaseModel):
    """An error reply (RFC 9457, ``application/problem+json``). Products add fields by
    subclassing; unknown members may appear and should be ignored."""

    model_config = ConfigDict(title=SCHEMA_NAME, extra="allow", json_schema_extra=_absent_not_null)

    type: str = Field(description="`about:blank#<code>`")
    title: str = Field(description="Short summary of the status")
    status: int = Field(ge=400, le=599, description="The HTTP status, repeated")
    detail: str = Field(description="What went wrong, for a human")
    code: str = Field(description="Stable machine-readable error code")
    instance: str = Field(description="The request path")
    request_id: str = Field(description="Also sent as X-Request-ID; quote it to support")
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None, description="Only with code invalid_request"
    )
    retry_after: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None, description="Only on 429: seconds until the limit resets"
    )


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status as ``application/problem+json``, described
    by ``descriptions`` where given, else by :data:`DESCRIPTIONS`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": (descriptions or {}).get(status) or DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": _REF_PREFIX + SCHEMA_NAME}}},
        }
        if status == 429:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds until the limit resets",
                    "schema": {"type": "integer"},
                }
            }
        responses[status] = response
    return responses


def document_problems(app: FastAPI, model: type[Problem] = Problem) -> None:
    """Publish ``model`` as ``#/components/schemas/Problem`` in ``app``'s OpenAPI document and
    drop FastAPI's own 422 validation entries, which our handlers never send."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI; the edits below are idempotent
        _publish(schema, model)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def _publish(schema: dict[str, Any], model: type[Problem]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = model.model_json_schema(ref_template=_REF_PREFIX + "{model}")
    components.update(body.pop("$defs", {}))
    components[SCHEMA_NAME] = body
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            content = responses.get("422", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            if ref == _REF_PREFIX + "HTTPValidationError":
                del responses["422"]
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
