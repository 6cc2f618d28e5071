"""roadmaps' pages: home, dashboard, new roadmap, roadmap view and editor, discover, profiles.

Forms post here and are answered with a redirect (303) so a reload never re-posts; the steps'
progress buttons and the editor use the JSON API from small scripts. A page that needs a
signed-in user sends anyone else to the sign-in page and back.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keel.core.errors import KeelError
from keel.roadmaps import community, generating, library, progress, referrals, syllabus, usage
from keel.roadmaps.api.auth import OptionalUser, mount_path
from keel.roadmaps.api.deps import Wired
from keel.roadmaps.bootstrap import Roadmaps
from keel.roadmaps.web.render import page

router = APIRouter(include_in_schema=False)


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = request.url_for("roadmaps-login")
    return RedirectResponse(f"{login.path}?next={quote(target)}", status_code=303)


@router.get("/", name="roadmaps-home", response_class=HTMLResponse)
async def home(request: Request, wired: Wired, user: OptionalUser) -> Response:
    if user is not None:
        return RedirectResponse(request.url_for("roadmaps-dashboard").path, status_code=303)
    return page(request, "pages/home.html", page=await wired.discover.page())


@router.get("/dashboard", name="roadmaps-dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, wired: Wired, user: OptionalUser) -> Response:
    if user is None:
        return _to_login(request)
    view = await wired.dashboard(user.id)
    return page(request, "pages/dashboard.html", **view)


@router.get("/new", name="roadmaps-new", response_class=HTMLResponse)
async def new(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return _to_login(request)
    return page(request, "pages/new.html")


@router.post("/new", response_class=HTMLResponse)
async def create(
    request: Request,
    wired: Wired,
    user: OptionalUser,
    goal: Annotated[str, Form(max_length=library.MAX_GOAL_CHARS)] = "",
    url: Annotated[str, Form(max_length=2048)] = "",
    level: Annotated[str, Form(max_length=20)] = "",
    hours_per_week: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    if user is None:
        return _to_login(request)
    try:
        hours = int(hours_per_week) if hours_per_week.strip() else None
        if hours is not None and not 1 <= hours <= 80:
            raise ValueError
    except ValueError:
        return page(
            request,
            "pages/new.html",
            status_code=422,
            goal=goal,
            error="Hours per week must be a whole number from 1 to 80.",
        )
    chosen_level = level if level in ("beginner", "intermediate", "advanced") else None
    try:
        if url.strip():
            text = await syllabus.fetch_syllabus(url.strip())
            source = generating.from_syllabus(text, level=chosen_level, hours_per_week=hours)
        else:
            if not goal.strip():
                raise library.InvalidStep("Tell us what you want to learn.")
            source = generating.Source(
                goal=goal.strip(), kind="text", level=chosen_level, hours_per_week=hours
            )
        roadmap = await _start(wired, user.id, source)
    except KeelError as exc:
        return page(request, "pages/new.html", status_code=exc.status, goal=goal, error=exc.detail)
    return RedirectResponse(
        request.url_for("roadmaps-view", roadmap_id=roadmap.id).path, status_code=303
    )


@router.post("/new/pdf", name="roadmaps-new-pdf", response_class=HTMLResponse)
async def create_from_pdf(
    request: Request,
    wired: Wired,
    user: OptionalUser,
    file: Annotated[UploadFile, File()],
) -> Response:
    if user is None:
        return _to_login(request)
    try:
        data = await file.read(syllabus.PdfLimits().max_bytes + 1)
        text = await asyncio.to_thread(syllabus.check_pdf, data, file.filename or "syllabus.pdf")
        source = generating.from_syllabus(text)
        roadmap = await _start(wired, user.id, source)
    except KeelError as exc:
        return page(request, "pages/new.html", status_code=exc.status, error=exc.detail)
    return RedirectResponse(
        request.url_for("roadmaps-view", roadmap_id=roadmap.id).path, status_code=303
    )


async def _start(wired: Roadmaps, user_id: str, source: generating.Source) -> library.Roadmap:
    return (await wired.generate(user_id, source)).roadmap


@router.get("/r/{roadmap_id}", name="roadmaps-view", response_class=HTMLResponse)
async def view(request: Request, roadmap_id: str, wired: Wired, user: OptionalUser) -> Response:
    viewer = user.id if user else None
    roadmap = await library.get(wired.database, roadmap_id, viewer)
    mine = viewer == roadmap.owner_id
    if roadmap.public and not mine:
        await wired.count_view(roadmap.id)
    owner = await wired.owner(roadmap.owner_id)
    return page(
        request,
        "pages/roadmap.html",
        roadmap=roadmap,
        owner=owner,
        mine=mine,
        root=mount_path(request),
        mine_progress=(
            await progress.of_roadmap(wired.database, viewer, roadmap) if viewer else None
        ),
        my_rating=(
            await community.my_rating(wired.database, roadmap.id, viewer) if viewer else None
        ),
    )


@router.get("/r/{roadmap_id}/edit", name="roadmaps-edit", response_class=HTMLResponse)
async def edit(request: Request, roadmap_id: str, wired: Wired, user: OptionalUser) -> Response:
    if user is None:
        return _to_login(request)
    roadmap = await library.get(wired.database, roadmap_id, user.id)
    if roadmap.owner_id != user.id:
        raise library.NotYourRoadmap("only the owner may edit this roadmap")
    steps = [
        {
            "title": s.title,
            "description": s.description,
            "hours": str(s.hours),
            "resources": [r.__dict__ for r in s.resources],
        }
        for s in roadmap.steps
    ]
    return page(
        request, "pages/edit.html", roadmap=roadmap, steps_json=steps, root=mount_path(request)
    )


@router.post("/r/{roadmap_id}/publish", name="roadmaps-publish")
async def publish(
    request: Request,
    roadmap_id: str,
    wired: Wired,
    user: OptionalUser,
    public: Annotated[str, Form(max_length=3)] = "yes",
) -> Response:
    if user is None:
        return _to_login(request)
    async with wired.database.writing() as conn:
        await community.ensure_profile(conn, user.id, user.display_name)
    await community.set_visibility(
        wired.database, roadmap_id, user.id, public=public == "yes", now=wired.clock.now()
    )
    await wired.published(user.id)
    return RedirectResponse(
        request.url_for("roadmaps-view", roadmap_id=roadmap_id).path, status_code=303
    )


@router.post("/r/{roadmap_id}/clone", name="roadmaps-clone")
async def clone(request: Request, roadmap_id: str, wired: Wired, user: OptionalUser) -> Response:
    if user is None:
        return _to_login(request)
    copy = await community.clone(wired.database, roadmap_id, user.id, wired.clock.now())
    await wired.invalidate_user(user.id)
    return RedirectResponse(
        request.url_for("roadmaps-view", roadmap_id=copy.id).path, status_code=303
    )


@router.post("/r/{roadmap_id}/rate", name="roadmaps-rate")
async def rate(
    request: Request,
    roadmap_id: str,
    wired: Wired,
    user: OptionalUser,
    stars: Annotated[int, Form(ge=1, le=5)],
) -> Response:
    if user is None:
        return _to_login(request)
    await community.rate(wired.database, roadmap_id, user.id, stars, wired.clock.now())
    return RedirectResponse(
        request.url_for("roadmaps-view", roadmap_id=roadmap_id).path, status_code=303
    )


@router.get("/discover", name="roadmaps-discover", response_class=HTMLResponse)
async def discover(request: Request, wired: Wired) -> Response:
    return page(request, "pages/discover.html", page=await wired.discover.page())


@router.get("/u/{handle}", name="roadmaps-profile", response_class=HTMLResponse)
async def profile(request: Request, handle: str, wired: Wired, user: OptionalUser) -> Response:
    found = await community.profile(wired.database, handle)
    return page(
        request,
        "pages/profile.html",
        profile=found,
        roadmaps=await community.public_roadmaps_of(wired.database, found.user_id),
        following=(
            await community.is_following(wired.database, user.id, found.user_id) if user else False
        ),
    )


@router.post("/u/{handle}/follow", name="roadmaps-follow")
async def follow(
    request: Request,
    handle: str,
    wired: Wired,
    user: OptionalUser,
    follow: Annotated[str, Form(max_length=3)] = "yes",
) -> Response:
    if user is None:
        return _to_login(request)
    async with wired.database.writing() as conn:
        await community.ensure_profile(conn, user.id, user.display_name)
    await community.follow(
        wired.database, user.id, handle, now=wired.clock.now(), on=follow == "yes"
    )
    return RedirectResponse(
        request.url_for("roadmaps-profile", handle=handle).path, status_code=303
    )


@router.get("/billing", name="roadmaps-billing", response_class=HTMLResponse)
async def billing(request: Request, wired: Wired, user: OptionalUser) -> Response:
    if user is None:
        return _to_login(request)
    held = await wired.plan_of(user.id)
    now = wired.clock.now()
    checkout = wired.settings.lemonsqueezy_checkout_url
    return page(
        request,
        "pages/billing.html",
        held=held,
        uses=await usage.today(
            wired.database, wired.plans, user_id=user.id, plan=held.plan, now=now
        ),
        code=await wired.referral_code(user.id),
        rewards=await referrals.rewards_of(wired.database, user_id=user.id),
        # LemonSqueezy hands custom checkout data back in every webhook's meta.custom_data.
        checkout_url=(
            f"{checkout}{'&' if '?' in checkout else '?'}"
            f"{urlencode({'checkout[custom][user_id]': user.id})}"
            if checkout
            else ""
        ),
    )
