"""Roadmaps over HTTP: generate (from a goal, a syllabus URL or a PDF), watch the generation
(SSE, or polling), read, edit, delete, track progress, publish, rate, clone.

Every write needs a signed-in user and, being cookie-authenticated, the CSRF token
(``X-CSRF-Token``); a client that retries a generation after a 503 or a dropped connection
sends the same ``Idempotency-Key`` and gets the first answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from keel.core import html
from keel.core.errors import Unprocessable
from keel.roadmaps import community, generating, library, progress, syllabus
from keel.roadmaps.api.auth import CurrentUser, OptionalUser, mount_path
from keel.roadmaps.api.deps import Wired

router = APIRouter(tags=["roadmaps"])
RoadmapId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The roadmap's id")]
StepId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The step's id")]
Level = Literal["beginner", "intermediate", "advanced"]
SSE_RETRY_MS = 2000
SSE_RETRY_EMERGENCY_MS = 15000
POLL_S = 0.5


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Generate(_Body):
    goal: Annotated[str, Field(min_length=1, max_length=library.MAX_GOAL_CHARS)] | None = None
    url: AnyHttpUrl | None = None
    level: Level | None = None
    hours_per_week: Annotated[int, Field(ge=1, le=80)] | None = None


class ResourceIn(_Body):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    url: AnyHttpUrl
    kind: Annotated[str, Field(max_length=20)] = "link"


class StepIn(_Body):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=8000)] = ""
    hours: Annotated[Decimal, Field(gt=0, le=1000, max_digits=8, decimal_places=2)]
    resources: Annotated[list[ResourceIn], Field(max_length=20)] = []


class Edit(_Body):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=library.MAX_STEPS)]


class Mark(_Body):
    status: Literal["done", "learning", "skip"]
    minutes: Annotated[int, Field(ge=0, le=progress.MAX_MINUTES_PER_MARK)] = 0


class Rate(_Body):
    stars: Annotated[int, Field(ge=1, le=5)]


def roadmap_view(roadmap: library.Roadmap, base: str) -> dict[str, Any]:
    return {
        "id": roadmap.id,
        "title": roadmap.title,
        "goal": roadmap.goal,
        "source": {"kind": roadmap.source_kind, "ref": roadmap.source_ref},
        "status": roadmap.status,
        "progress": roadmap.progress,
        "stage": roadmap.stage,
        "error": roadmap.error,
        "provider": roadmap.provider,
        "model": roadmap.model,
        "visibility": roadmap.visibility,
        "published_at": roadmap.published_at.isoformat() if roadmap.published_at else None,
        "cloned_from": roadmap.cloned_from,
        "rating": str(roadmap.rating) if roadmap.rating is not None else None,
        "rating_count": roadmap.rating_count,
        "clone_count": roadmap.clone_count,
        "view_count": roadmap.view_count,
        "step_count": roadmap.step_count,
        "total_hours": str(roadmap.total_hours),
        "created_at": roadmap.created_at.isoformat(),
        "updated_at": roadmap.updated_at.isoformat(),
        "links": {
            "self": f"{base}/api/roadmaps/{roadmap.id}",
            "events": f"{base}/api/roadmaps/{roadmap.id}/events",
            "status": f"{base}/api/roadmaps/{roadmap.id}/status",
            "page": f"{base}/r/{roadmap.id}",
        },
        "steps": [
            {
                "id": step.id,
                "position": step.position,
                "title": step.title,
                "description": step.description,
                "hours": str(step.hours),
                "resources": [r.__dict__ for r in step.resources],
            }
            for step in roadmap.steps
        ],
    }


def status_view(roadmap: library.Roadmap) -> dict[str, Any]:
    return {
        "id": roadmap.id,
        "status": roadmap.status,
        "progress": roadmap.progress,
        "stage": roadmap.stage,
        "error": roadmap.error,
    }


async def _generate(
    request: Request, wired: Wired, user: CurrentUser, source: generating.Source
) -> dict[str, Any]:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise Unprocessable("Idempotency-Key must be 1 to 200 characters")
    started = await wired.generate(user.id, source, key)
    return roadmap_view(started.roadmap, mount_path(request))


@router.post("/roadmaps", status_code=202, summary="Generate a roadmap from a goal or a URL")
async def create(
    body: Generate, request: Request, wired: Wired, user: CurrentUser
) -> dict[str, Any]:
    if (body.goal is None) == (body.url is None):
        raise Unprocessable("send exactly one of goal and url")
    if body.goal is not None:
        goal = body.goal.strip()
        if not goal:
            raise Unprocessable("the goal is empty")
        source = generating.Source(
            goal=goal, kind="text", level=body.level, hours_per_week=body.hours_per_week
        )
    else:
        text = await syllabus.fetch_syllabus(str(body.url))
        source = generating.from_syllabus(
            text, level=body.level, hours_per_week=body.hours_per_week
        )
    return await _generate(request, wired, user, source)


@router.post(
    "/roadmaps/pdf", status_code=202, summary="Generate a roadmap from an uploaded PDF syllabus"
)
async def create_from_pdf(
    request: Request,
    wired: Wired,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="The syllabus, a PDF of at most 5 MB")],
    goal: Annotated[str, Form(max_length=library.MAX_GOAL_CHARS)] = "",
    level: Annotated[Level | None, Form()] = None,
) -> dict[str, Any]:
    data = await file.read(syllabus.PdfLimits().max_bytes + 1)
    text = await asyncio.to_thread(syllabus.check_pdf, data, file.filename or "syllabus.pdf")
    source = generating.from_syllabus(text, goal=goal, level=level)
    return await _generate(request, wired, user, source)


@router.get("/roadmaps", summary="My roadmaps")
async def mine(request: Request, wired: Wired, user: CurrentUser) -> dict[str, Any]:
    roadmaps = await library.owned_by(wired.database, user.id)
    done = await progress.done_counts(wired.database, user.id, [r.id for r in roadmaps])
    base = mount_path(request)
    return {
        "roadmaps": [{**roadmap_view(r, base), "steps_done": done.get(r.id, 0)} for r in roadmaps]
    }


@router.get("/roadmaps/{roadmap_id}", summary="A roadmap with its steps")
async def read(
    roadmap_id: RoadmapId, request: Request, wired: Wired, user: OptionalUser
) -> dict[str, Any]:
    roadmap = await library.get(wired.database, roadmap_id, user.id if user else None)
    view = roadmap_view(roadmap, mount_path(request))
    if user is not None:
        mine = await progress.of_roadmap(wired.database, user.id, roadmap)
        view["my_progress"] = {
            "done": mine.done,
            "learning": mine.learning,
            "skipped": mine.skipped,
            "minutes": mine.minutes,
            "percent": mine.percent,
            "steps": {k: {"status": v.status, "minutes": v.minutes} for k, v in mine.steps.items()},
        }
    return view


@router.get(
    "/roadmaps/{roadmap_id}/status",
    summary="Generation status (the polling fallback)",
    name="roadmaps-api-status",
)
async def read_status(
    roadmap_id: RoadmapId, response: Response, wired: Wired, user: OptionalUser
) -> dict[str, Any]:
    roadmap = await library.status(wired.database, roadmap_id, user.id if user else None)
    if roadmap.status == library.GENERATING:
        # How soon to poll again: wider while the server sheds load.
        response.headers["Retry-After"] = "15" if wired.shedder.emergency else "1"
    return status_view(roadmap)


@router.get(
    "/roadmaps/{roadmap_id}/events",
    summary="Generation progress as server-sent events",
    response_class=EventSourceResponse,
    name="roadmaps-api-events",
)
async def events(
    roadmap_id: RoadmapId, request: Request, wired: Wired, user: OptionalUser
) -> EventSourceResponse:
    viewer = user.id if user else None
    first = await library.status(wired.database, roadmap_id, viewer)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        last: dict[str, Any] | None = None
        roadmap = first
        sequence = 0
        while True:
            view = status_view(roadmap)
            if view != last:
                sequence += 1
                retry = SSE_RETRY_EMERGENCY_MS if wired.shedder.emergency else SSE_RETRY_MS
                kind = "progress" if roadmap.status == library.GENERATING else roadmap.status
                yield ServerSentEvent(
                    data=json.dumps(view), event=kind, id=str(sequence), retry=retry
                )
                last = view
            if roadmap.status != library.GENERATING or await request.is_disconnected():
                return
            await wired.bus.wait(roadmap_id, POLL_S)
            try:
                roadmap = await library.status(wired.database, roadmap_id, viewer)
            except library.RoadmapNotFound:
                yield ServerSentEvent(data=json.dumps({"id": roadmap_id}), event="deleted")
                return

    return EventSourceResponse(stream(), ping=15, send_timeout=10)


@router.put("/roadmaps/{roadmap_id}", summary="Replace a roadmap's title and steps")
async def edit(
    roadmap_id: RoadmapId, body: Edit, request: Request, wired: Wired, user: CurrentUser
) -> dict[str, Any]:
    steps = [
        library.StepInput(
            title=step.title.strip() or "Untitled step",
            description=html.rich_text(step.description),
            hours=step.hours,
            resources=tuple(library.Resource(r.title, str(r.url), r.kind) for r in step.resources),
        )
        for step in body.steps
    ]
    roadmap = await library.edit(
        wired.database,
        roadmap_id,
        user.id,
        title=body.title.strip() or "Untitled roadmap",
        steps=steps,
        now=wired.clock.now(),
    )
    await wired.invalidate_user(user.id)
    return roadmap_view(roadmap, mount_path(request))


@router.delete("/roadmaps/{roadmap_id}", status_code=204, summary="Delete a roadmap")
async def remove(roadmap_id: RoadmapId, wired: Wired, user: CurrentUser) -> Response:
    await library.remove(wired.database, roadmap_id, user.id)
    await wired.invalidate_user(user.id)
    return Response(status_code=204)


@router.put(
    "/roadmaps/{roadmap_id}/steps/{step_id}/progress", summary="Mark a step done/learning/skip"
)
async def mark(
    roadmap_id: RoadmapId, step_id: StepId, body: Mark, wired: Wired, user: CurrentUser
) -> dict[str, Any]:
    marked = await progress.mark(
        wired.database,
        user.id,
        roadmap_id,
        step_id,
        body.status,
        minutes=body.minutes,
        now=wired.clock.now(),
    )
    await wired.invalidate_user(user.id)
    return {"step_id": marked.step_id, "status": marked.status, "minutes": marked.minutes}


@router.post("/roadmaps/{roadmap_id}/publish", summary="Make a roadmap public")
async def publish(
    roadmap_id: RoadmapId, request: Request, wired: Wired, user: CurrentUser
) -> dict[str, Any]:
    return await _visibility(roadmap_id, request, wired, user, public=True)


@router.post("/roadmaps/{roadmap_id}/unpublish", summary="Make a roadmap private again")
async def unpublish(
    roadmap_id: RoadmapId, request: Request, wired: Wired, user: CurrentUser
) -> dict[str, Any]:
    return await _visibility(roadmap_id, request, wired, user, public=False)


async def _visibility(
    roadmap_id: str, request: Request, wired: Wired, user: CurrentUser, *, public: bool
) -> dict[str, Any]:
    async with wired.database.writing() as conn:
        await community.ensure_profile(conn, user.id, user.display_name)
    roadmap = await community.set_visibility(
        wired.database, roadmap_id, user.id, public=public, now=wired.clock.now()
    )
    await wired.published(user.id)
    return roadmap_view(roadmap, mount_path(request))


@router.post("/roadmaps/{roadmap_id}/rating", summary="Rate a public roadmap 1 to 5")
async def rate(
    roadmap_id: RoadmapId, body: Rate, request: Request, wired: Wired, user: CurrentUser
) -> dict[str, Any]:
    roadmap = await community.rate(
        wired.database, roadmap_id, user.id, body.stars, wired.clock.now()
    )
    return roadmap_view(roadmap, mount_path(request))


@router.post("/roadmaps/{roadmap_id}/clone", status_code=201, summary="Copy a roadmap")
async def clone(
    roadmap_id: RoadmapId, request: Request, wired: Wired, user: CurrentUser
) -> dict[str, Any]:
    roadmap = await community.clone(wired.database, roadmap_id, user.id, wired.clock.now())
    await wired.invalidate_user(user.id)
    return roadmap_view(roadmap, mount_path(request))


@router.get("/me/activity", summary="My heatmap and streaks")
async def my_activity(wired: Wired, user: CurrentUser) -> dict[str, Any]:
    seen = await progress.activity(wired.database, user.id, wired.clock.now().date())
    return {
        "current_streak": seen.current_streak,
        "longest_streak": seen.longest_streak,
        "total_minutes": seen.total_minutes,
        "total_steps_done": seen.total_steps_done,
        "days": [
            {"day": d.day.isoformat(), "steps_done": d.steps_done, "minutes": d.minutes}
            for d in seen.days
            if d.steps_done or d.minutes
        ],
    }


@router.get(
    "/discover",
    summary="Featured, trending, highest rated, top creators, recent",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def discover_page(wired: Wired) -> Response:
    page = await wired.discover.page()
    return Response(page.encoded, media_type="application/json")


@router.get("/profiles/{handle}", summary="A public profile and its public roadmaps")
async def profile(handle: str, request: Request, wired: Wired) -> dict[str, Any]:
    found = await community.profile(wired.database, handle)
    roadmaps = await community.public_roadmaps_of(wired.database, found.user_id)
    return {
        "handle": found.handle,
        "display_name": found.display_name,
        "bio": found.bio,
        "followers": found.followers,
        "following": found.following,
        "public_roadmaps": [roadmap_view(r, mount_path(request)) for r in roadmaps],
    }


@router.post("/profiles/{handle}/follow", summary="Follow a profile")
async def follow(handle: str, wired: Wired, user: CurrentUser) -> dict[str, Any]:
    return await _follow(handle, wired, user, on=True)


@router.delete("/profiles/{handle}/follow", summary="Stop following a profile")
async def unfollow(handle: str, wired: Wired, user: CurrentUser) -> dict[str, Any]:
    return await _follow(handle, wired, user, on=False)


async def _follow(handle: str, wired: Wired, user: CurrentUser, *, on: bool) -> dict[str, Any]:
    async with wired.database.writing() as conn:
        await community.ensure_profile(conn, user.id, user.display_name)
    target = await community.follow(wired.database, user.id, handle, now=wired.clock.now(), on=on)
    return {"handle": target.handle, "followers": target.followers, "following": on}
