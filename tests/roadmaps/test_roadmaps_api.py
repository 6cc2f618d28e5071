"""Roadmaps over HTTP, mounted as ``keel serve`` mounts them: generate from a goal and follow
the stream to ready, track progress, publish, rate, clone, follow, discover; and bad input
answered with problems."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from tests.roadmaps.pdfs import launch_action, open_action, text_pdf
from tests.roadmaps.test_accounts import PASSWORD, Site, form_token, open_site, problem

API = "/roadmaps/api"


async def sign_up(site: Site, email: str, name: str) -> dict[str, str]:
    """Signs ``site.http`` in as a new user; returns the headers its writes need. Once a
    page was visited the client holds a pre-session cookie, so it sends that form's token."""
    page = await site.http.get("/roadmaps/signup")
    reply = await site.http.post(
        f"{API}/accounts/signup",
        json={"email": email, "password": PASSWORD, "display_name": name},
        headers={"X-CSRF-Token": form_token(page)},
    )
    assert reply.status_code == 201, reply.text
    return {"X-CSRF-Token": reply.json()["csrf_token"]}


def events(stream: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in stream.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            found.append((fields.get("event", "message"), json.loads(fields["data"])))
    return found


async def generate(site: Site, headers: dict[str, str], goal: str) -> dict[str, Any]:
    reply = await site.http.post(f"{API}/roadmaps", json={"goal": goal}, headers=headers)
    assert reply.status_code == 202, reply.text
    created: dict[str, Any] = reply.json()
    assert created["status"] == "generating"
    stream = await site.http.get(created["links"]["events"].removeprefix("http://testserver"))
    assert stream.headers["content-type"].startswith("text/event-stream")
    seen = events(stream.text)
    assert seen[-1][0] == "ready", seen
    # 2 s, or 15 s while the (loaded) test machine counts as overloaded.
    assert re.search(r"retry: (2000|15000)\r?\n", stream.text)
    ready = await site.http.get(f"{API}/roadmaps/{created['id']}")
    body: dict[str, Any] = ready.json()
    return body


async def test_generate_follow_track_publish_discover(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        ann = await sign_up(site, "ann@example.org", "Ann")
        roadmap = await generate(site, ann, "SQL SELECT basics")
        assert roadmap["status"] == "ready"
        assert roadmap["provider"] == "offline"
        assert roadmap["step_count"] == len(roadmap["steps"]) >= 3
        assert "<script" not in json.dumps(roadmap)
        first = roadmap["steps"][0]["id"]
        marked = await site.http.put(
            f"{API}/roadmaps/{roadmap['id']}/steps/{first}/progress",
            json={"status": "done", "minutes": 25},
            headers=ann,
        )
        assert marked.status_code == 200, marked.text
        mine = (await site.http.get(f"{API}/roadmaps/{roadmap['id']}")).json()["my_progress"]
        assert mine["done"] == 1
        activity = (await site.http.get(f"{API}/me/activity")).json()
        assert activity["current_streak"] == 1
        assert activity["days"][-1]["minutes"] == 25

        published = await site.http.post(f"{API}/roadmaps/{roadmap['id']}/publish", headers=ann)
        assert published.json()["visibility"] == "public"
        await site.http.post(f"{API}/accounts/logout", headers=ann)

        bob = await sign_up(site, "bob@example.org", "Bob")
        rated = await site.http.post(
            f"{API}/roadmaps/{roadmap['id']}/rating", json={"stars": 4}, headers=bob
        )
        assert rated.json()["rating"] == "4.0"
        copy = await site.http.post(f"{API}/roadmaps/{roadmap['id']}/clone", headers=bob)
        assert copy.status_code == 201
        assert copy.json()["visibility"] == "private"
        followed = await site.http.post(f"{API}/profiles/ann/follow", headers=bob)
        assert followed.json()["followers"] == 1

        discover = (await site.http.get(f"{API}/discover")).json()
        assert [c["id"] for c in discover["recently_added"]] == [roadmap["id"]]
        assert discover["top_creators"][0]["handle"] == "ann"
        page = await site.http.get("/roadmaps/discover")
        assert page.status_code == 200
        assert roadmap["title"] in page.text


async def test_bad_input_is_a_problem_and_changes_nothing(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        problem(await site.http.post(f"{API}/roadmaps", json={"goal": "SQL"}), 401)
        ann = await sign_up(site, "ann@example.org", "Ann")
        problem(await site.http.post(f"{API}/roadmaps", json={"goal": "SQL basics"}), 403)
        for body in (
            {},
            {"goal": "SQL basics", "url": "https://example.org/s"},
            {"goal": "   "},
            {"goal": "x" * 5000},
            {"goal": "SQL", "level": "expert"},
            {"goal": "SQL", "hours_per_week": 0},
            {"goal": "SQL", "extra": 1},
            {"url": "javascript:alert(1)"},
            {"goal": 42},
        ):
            reply = await site.http.post(f"{API}/roadmaps", json=body, headers=ann)
            assert reply.status_code in (400, 422), (body, reply.text)
            assert reply.headers["content-type"] == "application/problem+json"
        refused = await site.http.post(
            f"{API}/roadmaps", json={"url": "http://127.0.0.1:1/syllabus"}, headers=ann
        )
        problem(refused, 422)
        not_json = await site.http.post(
            f"{API}/roadmaps",
            content=b"{not json",
            headers={**ann, "Content-Type": "application/json"},
        )
        assert not_json.status_code in (400, 422)
        assert (await site.http.get(f"{API}/roadmaps")).json()["roadmaps"] == []

        problem(await site.http.get(f"{API}/roadmaps/not-an-id"), 400)
        problem(await site.http.get(f"{API}/roadmaps/{'0' * 32}"), 404, "roadmap_not_found")
        roadmap = await generate(site, ann, "Learn Rust")
        step = roadmap["steps"][0]["id"]
        url = f"{API}/roadmaps/{roadmap['id']}/steps/{step}/progress"
        problem(await site.http.put(url, json={"status": "finished"}, headers=ann), 400)
        problem(await site.http.put(url, json={"status": "done", "minutes": -1}, headers=ann), 400)
        other = f"{API}/roadmaps/{roadmap['id']}/steps/{'0' * 32}/progress"
        problem(await site.http.put(other, json={"status": "done"}, headers=ann), 422)
        problem(
            await site.http.post(
                f"{API}/roadmaps/{roadmap['id']}/rating", json={"stars": 6}, headers=ann
            ),
            400,
        )
        await site.http.post(f"{API}/roadmaps/{roadmap['id']}/publish", headers=ann)
        problem(
            await site.http.post(
                f"{API}/roadmaps/{roadmap['id']}/rating", json={"stars": 5}, headers=ann
            ),
            409,
            "cannot_rate_own",
        )
        edit = await site.http.put(
            f"{API}/roadmaps/{roadmap['id']}",
            json={"title": "Rust", "steps": [{"title": "Only", "hours": "1e9"}]},
            headers=ann,
        )
        problem(edit, 400)
        assert (await site.http.get(f"{API}/roadmaps/{roadmap['id']}")).json()["title"] != "Rust"


async def test_pdf_syllabi_are_checked_by_their_bytes(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        ann = await sign_up(site, "ann@example.org", "Ann")
        bad = await site.http.post(
            f"{API}/roadmaps/pdf",
            files={
                "file": (
                    "s.pdf",
                    text_pdf("x", tweak=open_action(launch_action("calc.exe"))),
                    "application/pdf",
                )
            },
            headers=ann,
        )
        problem(bad, 422)
        good = await site.http.post(
            f"{API}/roadmaps/pdf",
            files={
                "file": (
                    "course.pdf",
                    text_pdf("Databases 101", "Relational model", "SQL queries", "Indexes"),
                    "application/octet-stream",
                )
            },
            headers=ann,
        )
        assert good.status_code == 202, good.text
        assert good.json()["source"] == {"kind": "pdf", "ref": "course.pdf"}


async def test_the_status_endpoint_is_the_polling_fallback(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        ann = await sign_up(site, "ann@example.org", "Ann")
        roadmap = await generate(site, ann, "Docker")
        status = await site.http.get(f"{API}/roadmaps/{roadmap['id']}/status")
        assert status.json() == {
            "id": roadmap["id"],
            "status": "ready",
            "progress": 100,
            "stage": "ready",
            "error": None,
        }
        await site.http.post(f"{API}/accounts/logout", headers=ann)
        problem(await site.http.get(f"{API}/roadmaps/{roadmap['id']}/status"), 404)


async def test_a_retried_generation_with_its_idempotency_key_creates_one_roadmap(
    tmp_path: Path,
) -> None:
    async with open_site(tmp_path) as site:
        ann = await sign_up(site, "ann@example.org", "Ann")
        keyed = {**ann, "Idempotency-Key": "client-retry-1"}
        first = await site.http.post(f"{API}/roadmaps", json={"goal": "Go"}, headers=keyed)
        again = await site.http.post(f"{API}/roadmaps", json={"goal": "Go"}, headers=keyed)
        assert first.status_code == again.status_code == 202
        assert first.json()["id"] == again.json()["id"]
        assert len((await site.http.get(f"{API}/roadmaps")).json()["roadmaps"]) == 1
        billing = await site.http.get("/roadmaps/billing")
        assert "<td>generate</td><td>1</td><td>3</td>" in billing.text.replace("\n", "")
        problem(
            await site.http.post(
                f"{API}/roadmaps", json={"goal": "Go"}, headers={**ann, "Idempotency-Key": ""}
            ),
            422,
        )


async def test_a_referral_code_at_sign_up_is_rewarded_at_the_first_roadmap(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        ann = await sign_up(site, "ann@example.org", "Ann")
        dashboard = await site.http.get("/roadmaps/dashboard")
        code = re.search(r'id="referral-code">([A-Z0-9]+)<', dashboard.text)
        assert code is not None
        await site.http.post(f"{API}/accounts/logout", headers=ann)

        page = await site.http.get("/roadmaps/signup")
        unknown = await site.http.post(
            f"{API}/accounts/signup",
            json={"email": "bob@example.org", "password": PASSWORD, "referral_code": "NOPE2345"},
            headers={"X-CSRF-Token": form_token(page)},
        )
        problem(unknown, 422)
        referred = await site.http.post(
            f"{API}/accounts/signup",
            json={
                "email": "bob@example.org",
                "password": PASSWORD,
                "referral_code": code.group(1).lower(),
            },
            headers={"X-CSRF-Token": form_token(page)},
        )
        assert referred.status_code == 201, referred.text
        bob = {"X-CSRF-Token": referred.json()["csrf_token"]}
        await generate(site, bob, "Statistics")
        # The reward follows readiness within a moment (the stream may poll the row first).
        for _ in range(50):
            billing = await site.http.get("/roadmaps/billing")
            if "Your plan: Pro" in billing.text:
                break
            await asyncio.sleep(0.05)
        assert "Your plan: Pro" in billing.text  # the referral trial
        assert "3 trial days" in billing.text


async def test_the_api_is_rate_limited_per_user(tmp_path: Path) -> None:
    async with open_site(tmp_path, rate_limit_api=5) as site:
        await sign_up(site, "ann@example.org", "Ann")
        answers = [(await site.http.get(f"{API}/roadmaps")).status_code for _ in range(7)]
        assert answers == [200] * 5 + [429] * 2
        refused = await site.http.get(f"{API}/roadmaps")
        problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
