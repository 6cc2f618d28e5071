"""roadmaps as a new user meets it, in headless Chromium against the real command: `keel
serve roadmaps` with its API process and a separate `keel roadmaps worker`, on a fresh data
directory. Sign up, generate a roadmap with the offline provider and watch the progress
stream move (the worker starts only once the page is listening), mark steps, see the heatmap,
publish, and find the roadmap on /discover."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.conftest import watch

if TYPE_CHECKING:
    from playwright.sync_api import Page

TIMEOUT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "keel", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def keel_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEEL_")},
        "HOME": str(home),
        "KEEL_DATA_DIR": str(tmp_path / "var"),
        "KEEL_ROADMAPS_RUN_WORKERS": "false",
        # The offline generator takes milliseconds; paced, its stages are visible to a stream
        # polling another process's progress every half second.
        "KEEL_ROADMAPS_GENERATION_PACE_MS": "700",
    }


@pytest.mark.e2e
def test_a_new_user_generates_tracks_publishes_and_discovers(
    page: Page, keel_env: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/roadmaps"
    serve = ["serve", "roadmaps", "--port", str(port)]
    with _process(serve, keel_env, tmp_path / "serve.log") as server:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "keel serve did not answer within 30 s"
            time.sleep(0.2)
        failures = watch(page, expected_404s=set())

        page.goto(f"{base}/")
        page.click("text=Sign up, it is free")
        page.fill("#email", "new.learner@example.org")
        page.fill("#display_name", "New Learner")
        page.fill("#password", "a long enough passphrase")
        page.click("button:has-text('Sign up')")
        page.wait_for_url(f"{base}/dashboard", timeout=TIMEOUT_MS)

        page.goto(f"{base}/new")
        page.fill("#goal", "SQL SELECT basics")
        page.select_option("#level", "beginner")
        with page.expect_response(lambda r: r.url.endswith("/events"), timeout=TIMEOUT_MS) as sse:
            page.click("#goal-form button[type=submit]")
        assert sse.value.headers["content-type"].startswith("text/event-stream")
        page.wait_for_selector("#generating", timeout=TIMEOUT_MS)
        roadmap_url = page.url
        # Nothing generates until a worker runs: the page waits, listening.
        assert (page.text_content("#gen-stage") or "").startswith("queued")

        # A second tab follows the same stream and keeps what it carried (the roadmap page
        # reloads itself once the roadmap is ready).
        tab = page.context.new_page()
        tab.goto(f"{base}/discover")
        events_url = page.get_attribute("#roadmap", "data-events")
        tab.evaluate(
            """url => { window.seen = []; const source = new EventSource(url);
            for (const kind of ["progress", "ready", "failed"]) {
              source.addEventListener(kind, e => window.seen.push([kind, JSON.parse(e.data)]));
            } }""",
            events_url,
        )
        tab.wait_for_function("() => window.seen.length >= 1", timeout=TIMEOUT_MS)

        with _process(["roadmaps", "worker"], keel_env, tmp_path / "worker.log"):
            page.wait_for_selector("ol.steps .step", timeout=TIMEOUT_MS)
            tab.wait_for_function(
                "() => window.seen.some(([kind]) => kind === 'ready')", timeout=TIMEOUT_MS
            )
        seen = tab.evaluate("window.seen")
        tab.close()
        percents = [view["progress"] for _kind, view in seen]
        assert percents[0] == 0
        assert any(0 < p < 100 for p in percents), seen
        assert percents == sorted(percents)
        assert seen[-1][0] == "ready"
        assert page.url == roadmap_url
        steps = page.locator("ol.steps .step")
        assert steps.count() >= 3
        assert "SQL" in (page.text_content("h1") or "")

        for index in (0, 1):
            steps.nth(index).locator("button[data-status=done]").click()
        page.wait_for_function(
            "() => document.querySelectorAll('.step.done').length === 2", timeout=TIMEOUT_MS
        )
        assert page.text_content("#done-count") == "2"

        page.goto(f"{base}/dashboard")
        today = datetime.now(UTC).date().isoformat()
        cell = page.locator(f".heatmap .cell[data-day='{today}']")
        assert "l0" not in (cell.get_attribute("class") or "")
        assert page.text_content("#streak") == "1"

        page.goto(roadmap_url)
        page.click("#publish")
        page.wait_for_selector("text=· public", timeout=TIMEOUT_MS)
        title = page.text_content("h1") or ""

        page.goto(f"{base}/discover")
        assert title in (page.text_content("#recently-added") or "")
        page.screenshot(path=str(tmp_path / "discover.png"), full_page=True)
        assert failures == [], failures
