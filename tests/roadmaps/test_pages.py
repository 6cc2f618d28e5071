"""Every page renders for the people who can see it, under the nonce CSP, and sends everyone
else to sign in; the forms work without JavaScript."""

from __future__ import annotations

import re
from pathlib import Path

from tests.roadmaps.test_accounts import open_site
from tests.roadmaps.test_roadmaps_api import API, generate, sign_up


async def test_pages_render_and_forms_post_without_javascript(tmp_path: Path) -> None:
    async with open_site(tmp_path) as site:
        home = await site.http.get("/roadmaps/")
        assert home.status_code == 200
        assert "Turn a goal into a roadmap" in home.text
        for path in ("/roadmaps/dashboard", "/roadmaps/new", "/roadmaps/billing"):
            bounced = await site.http.get(path)
            assert bounced.status_code == 303
            assert bounced.headers["location"].startswith("/roadmaps/login?next=")

        ann = await sign_up(site, "ann@example.org", "Ann")
        roadmap = await generate(site, ann, "Learn Python")
        pages = {
            "/roadmaps/dashboard": "day streak",
            "/roadmaps/new": "What do you want to learn?",
            f"/roadmaps/r/{roadmap['id']}": roadmap["steps"][0]["title"],
            f"/roadmaps/r/{roadmap['id']}/edit": "Edit roadmap",
            "/roadmaps/discover": "Discover",
            "/roadmaps/billing": "Your plan: Free",
            "/roadmaps/u/ann": "Ann",
        }
        for path, text in pages.items():
            reply = await site.http.get(path)
            assert reply.status_code == 200, (path, reply.text[:500])
            assert text in reply.text, path
            csp = reply.headers["content-security-policy"]
            nonce = re.search(r"'nonce-([^']+)'", csp)
            assert nonce is not None
            for script in re.findall(r"<script(?![^>]*application/json)[^>]*>", reply.text):
                assert f'nonce="{nonce.group(1)}"' in script, (path, script)

        token = re.search(r'name="csrf_token" value="([^"]+)"', home.text) or re.search(
            r'name="csrf-token" content="([^"]+)"', (await site.http.get("/roadmaps/new")).text
        )
        assert token is not None
        csrf = token.group(1)
        made = await site.http.post(
            "/roadmaps/new", data={"csrf_token": csrf, "goal": "Kubernetes", "level": "beginner"}
        )
        assert made.status_code == 303
        assert made.headers["location"].startswith("/roadmaps/r/")
        refused = await site.http.post("/roadmaps/new", data={"csrf_token": csrf, "goal": "  "})
        assert refused.status_code == 422
        assert "Tell us what you want to learn." in refused.text
        published = await site.http.post(
            f"/roadmaps/r/{roadmap['id']}/publish", data={"csrf_token": csrf, "public": "yes"}
        )
        assert published.status_code == 303
        assert (await site.http.get(f"{API}/roadmaps/{roadmap['id']}")).json()["visibility"] == (
            "public"
        )
