"""The wired product, as a route dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from keel.roadmaps.bootstrap import Roadmaps


def wired(request: Request) -> Roadmaps:
    roadmaps: Roadmaps = request.app.state.roadmaps
    return roadmaps


Wired = Annotated[Roadmaps, Depends(wired)]
