"""The viewer page (``/pairux/`` and ``/pairux/join``, where invite links land) and its static
modules. One page: it joins by code or by the invite in the URL fragment, answers the host's
offer, shows the picture and sends input on the ``control`` data channel while granted."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; media-src 'self' blob: mediastream:; "
    "manifest-src 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def _page() -> Response:
    return FileResponse(
        STATIC / "viewer.html",
        media_type="text/html",
        headers={
            "Content-Security-Policy": _CSP,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/")
async def viewer_page() -> Response:
    """Join a room by code and watch (and control, when the host allows)."""
    return _page()


@router.get("/join")
async def invite_page() -> Response:
    """Where invite links land; the invite itself is in the fragment, which no server sees."""
    return _page()


@router.get("/manifest.webmanifest")
async def manifest() -> Response:
    return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")


def install(app: FastAPI) -> None:
    """Add the page, the manifest and ``/static`` to the pairux app."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="pairux-static")
