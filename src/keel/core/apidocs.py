"""A product's API documentation pages, Swagger UI and ReDoc, served from its own app: no CDN,
so they work on a server without internet access.

FastAPI's own pages load their scripts and styles from a CDN and start Swagger UI with an
inline script. :func:`install` replaces them, at the same paths, with pages that load every
asset from ``<mount>/docs-assets/`` and start Swagger UI from a file, under a
Content-Security-Policy that allows scripts from this origin only:

    app = FastAPI(title=...)
    apidocs.install(app)  # /docs and /redoc as configured; /openapi.json untouched

The Swagger UI and ReDoc bundles come from the ``fastapi-offline`` distribution (pinned in
pyproject.toml), whose files are byte for byte those of the npm packages ``swagger-ui-dist``
and ``redoc`` (``tests/core/test_apidocs.py`` holds their versions and hashes). ReDoc's is
served with one URL taken out (:data:`REDOCLY_LOGO`). ADR 0015 says why.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.openapi.docs import swagger_ui_default_parameters
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.routing import Route

from keel.core.errors import NotFound

ASSETS_PATH: Final = "/docs-assets"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

_BUNDLES = resources.files("fastapi_offline") / "static"
_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"
# A fixed list, by name: no path from the URL reaches the disk.
SOURCES: Final[dict[str, tuple[Traversable, str]]] = {
    "swagger-ui-bundle.js": (_BUNDLES / "swagger-ui-bundle.js", _JS),
    "swagger-ui.css": (_BUNDLES / "swagger-ui.css", _CSS),
    "swagger-ui-init.js": (resources.files("keel.core") / "static" / "swagger-ui-init.js", _JS),
    "redoc.standalone.js": (_BUNDLES / "redoc.standalone.js", _JS),
}
# ReDoc's sidebar credit shows Redocly's logo from their CDN (no option turns it off): a
# request to a third party on every visit, which the CSP refuses with a console error. As an
# empty data: image it fails to decode instead, and ReDoc then leaves it out (its onError).
REDOCLY_LOGO: Final = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass(frozen=True, slots=True)
class Asset:
    """A file as served: its bytes, media type and entity tag."""

    body: bytes
    media_type: str
    etag: str


@functools.cache
def load(name: str) -> Asset:
    """The asset served as ``name`` (a key of :data:`SOURCES`), read on first use."""
    source, media_type = SOURCES[name]
    body = source.read_bytes()
    if name == "redoc.standalone.js":
        body = body.replace(REDOCLY_LOGO, b"data:,")
    return Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


# Scripts from this origin only. Styles may be inline: Swagger UI sets style attributes and
# ReDoc inserts <style> elements as it renders. ReDoc runs its search index in a worker it
# builds from a blob: URL, which only a script already allowed here can create.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def install(app: FastAPI) -> None:
    """Serve ``app``'s Swagger UI at ``app.docs_url`` and ReDoc at ``app.redoc_url`` (either
    may be None) in place of FastAPI's CDN pages, with their assets under ``/docs-assets/``.

    Swagger UI's OAuth2 redirect page is dropped: no product signs in with OAuth2, and that
    page is an inline script."""
    if app.openapi_url is None:
        return
    fastapi_pages = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    # FastAPI adds its pages as plain Routes when the app is built; a product's are APIRoutes.
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (type(route) is Route and route.path in fastapi_pages)
    ]
    app.swagger_ui_oauth2_redirect_url = None
    openapi_url = app.openapi_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        config = {
            **swagger_ui_default_parameters,
            **(app.swagger_ui_parameters or {}),
            "url": root + openapi_url,
            "validatorUrl": None,  # else it may ask validator.swagger.io about the document
        }
        title = f"{app.title} - Swagger UI"
        return _page(request, "swagger_ui.html", title, config=json.dumps(config))

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _page(request, "redoc.html", f"{app.title} - ReDoc", openapi_url=root + openapi_url)

    if app.docs_url is not None:
        app.add_route(app.docs_url, swagger_ui, include_in_schema=False)
    if app.redoc_url is not None:
        app.add_route(app.redoc_url, redoc, include_in_schema=False)
    if app.docs_url is not None or app.redoc_url is not None:
        app.add_route(f"{ASSETS_PATH}/{{name}}", asset, include_in_schema=False)


def _page(request: Request, name: str, title: str, **context: str) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    response = templates.TemplateResponse(
        request,
        name,
        {**context, "title": title, "assets": root + ASSETS_PATH},
        headers={"Content-Security-Policy": CSP},
    )
    assert isinstance(response, HTMLResponse)
    return response


async def asset(request: Request) -> Response:
    """One of :data:`SOURCES`. Browsers revalidate each time (``no-cache``), so a new version
    is seen at once; an unchanged file is a 304 by its ``ETag``."""
    name = request.path_params["name"]
    if name not in SOURCES:
        raise NotFound(f"no docs asset {name[:40]!r}")
    served = load(name)
    headers = {"ETag": served.etag, "Cache-Control": "no-cache"}
    if served.etag in _entity_tags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(served.body, media_type=served.media_type, headers=headers)


def _entity_tags(if_none_match: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
