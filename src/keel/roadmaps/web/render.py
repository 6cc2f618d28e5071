"""One way to render a roadmaps page: the template, the signed-in user, the CSP nonce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def page(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """``template`` rendered with ``context`` plus ``user`` (``request.state.user``, or None),
    ``csp_nonce`` (for inline ``<script>``/``<style>``) and ``csrf_token``."""
    state = request.state
    return templates.TemplateResponse(
        request,
        template,
        {
            "user": getattr(state, "user", None),
            "csp_nonce": getattr(state, "csp_nonce", ""),
            "csrf_token": getattr(state, "csrf_token", ""),
            **context,
        },
        status_code=status_code,
    )
