"""The viewer's input capture and cursor layer in headless Chromium: what a controller's clicks,
wheel and keys over a letterboxed video become on the ``control`` channel
(pairux/web/static/input.js), and where other participants' cursors are drawn (cursors.js).

The page shows a 1280x720 picture in an 800x600 element (``object-fit: contain``): 75 px bars
above and below. Real input events (Playwright's mouse and keyboard, dispatched by Chromium)
land on it; ``window.sent`` collects what the module would send.
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import keel.pairux
from keel.pairux.host.control.messages import Rejected, parse_from_viewer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

STATIC = Path(keel.pairux.__file__).parent / "web" / "static"
PAGE = """<!doctype html>
<html><body style="margin:0">
<video id="v" autoplay muted playsinline
       style="position:absolute;left:0;top:0;width:800px;height:600px;object-fit:contain;background:#000">
</video>
<button id="elsewhere" style="position:absolute;left:0;top:620px">elsewhere</button>
<script type="module">
  import { InputCapture } from "./input.js";
  import { CursorLayer } from "./cursors.js";
  const canvas = document.createElement("canvas");
  canvas.width = 1280; canvas.height = 720;
  const g = canvas.getContext("2d");
  setInterval(() => { g.fillStyle = "#3a6"; g.fillRect(0, 0, 1280, 720); }, 50);
  const video = document.getElementById("v");
  video.srcObject = canvas.captureStream(20);
  window.sent = [];
  const capture = new InputCapture(video, (m) => window.sent.push(m));
  capture.enable();
  window.capture = capture;
  window.cursors = new CursorLayer(video, { self: "me" });
</script>
</body></html>
"""
TOP_BAR = 75  # (600 - 800 * 720 / 1280) / 2


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "site"
    root.mkdir()
    for module in ("input.js", "cursors.js"):
        shutil.copy(STATIC / module, root / module)
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def viewer(browser: Browser, site: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 820, "height": 700})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(site)
    page.wait_for_function("document.getElementById('v').videoWidth === 1280")
    try:
        yield page
    finally:
        context.close()
    assert errors == []


def sent(page: Page) -> list[dict[str, Any]]:
    """What the page sent since the last call; each one must be a message the host's parser
    takes (the viewer and the host agree on the wire format, checked on real output)."""
    messages: list[dict[str, Any]] = page.evaluate("window.sent.splice(0)")
    for message in messages:
        parsed = parse_from_viewer(json.dumps(message))
        assert not isinstance(parsed, Rejected), (message, parsed)
    return messages


def test_a_click_is_placed_on_the_picture_not_the_element(viewer: Page) -> None:
    viewer.mouse.click(400, TOP_BAR + 225)  # the picture's centre
    viewer.mouse.click(200, TOP_BAR + 450 - 1)  # a quarter across, at the bottom edge
    events = [m["event"] for m in sent(viewer) if m["event"]["action"] in ("down", "up")]
    assert [(e["action"], e["button"]) for e in events] == [("down", "left"), ("up", "left")] * 2
    assert events[0]["x"] == pytest.approx(0.5, abs=0.002)
    assert events[0]["y"] == pytest.approx(0.5, abs=0.003)
    assert events[2]["x"] == pytest.approx(0.25, abs=0.002)
    assert events[2]["y"] == pytest.approx(1.0, abs=0.003)


def test_a_click_on_the_black_bars_is_no_click(viewer: Page) -> None:
    viewer.mouse.click(400, 30)
    viewer.mouse.click(400, 600 - 30)
    assert [m for m in sent(viewer) if m["event"]["action"] != "move"] == []


def test_keys_carry_code_key_and_the_platforms_accel(viewer: Page) -> None:
    viewer.mouse.click(400, 300)  # focus the picture
    sent(viewer)
    viewer.keyboard.press("a")
    viewer.keyboard.press("Control+c")
    keys = [m["event"] for m in sent(viewer)]
    assert [(k["action"], k["code"], k["key"]) for k in keys] == [
        ("down", "KeyA", "a"),
        ("up", "KeyA", "a"),
        ("down", "ControlLeft", "Control"),
        ("down", "KeyC", "c"),
        ("up", "KeyC", "c"),
        ("up", "ControlLeft", "Control"),
    ]
    assert keys[0]["modifiers"] == {
        "ctrl": False,
        "alt": False,
        "shift": False,
        "meta": False,
        "accel": False,
    }
    assert keys[3]["modifiers"]["ctrl"] is True
    assert keys[3]["modifiers"]["accel"] is True  # Linux viewer: Ctrl is the shortcut key


def test_the_viewers_own_shortcuts_stay_local(viewer: Page) -> None:
    viewer.mouse.click(400, 300)
    sent(viewer)
    viewer.keyboard.press("F11")
    viewer.keyboard.press("Alt+Tab")
    codes = [m["event"]["code"] for m in sent(viewer)]
    assert "F11" not in codes
    assert "Tab" not in codes


def test_what_is_held_is_released_when_the_viewer_looks_away(viewer: Page) -> None:
    viewer.mouse.move(400, 300)
    viewer.mouse.down()
    viewer.keyboard.down("Shift")
    viewer.keyboard.down("KeyX")
    sent(viewer)
    viewer.evaluate("window.capture.releaseAll()")  # what blur and visibilitychange call
    released = [m["event"] for m in sent(viewer)]
    assert {(e["type"], e["action"], e.get("code") or e.get("button")) for e in released} == {
        ("keyboard", "up", "ShiftLeft"),
        ("keyboard", "up", "KeyX"),
        ("mouse", "up", "left"),
    }
    viewer.keyboard.up("KeyX")  # already released: nothing more is sent
    viewer.keyboard.up("Shift")
    viewer.mouse.up()
    assert sent(viewer) == []


def test_focus_moving_away_releases_held_keys(viewer: Page) -> None:
    viewer.mouse.click(400, 300)
    viewer.keyboard.down("KeyQ")
    sent(viewer)
    viewer.click("#elsewhere")
    released = [m["event"] for m in sent(viewer) if m["event"]["type"] == "keyboard"]
    assert [(e["action"], e["code"]) for e in released] == [("up", "KeyQ")]


def test_the_wheel_keeps_its_delta_mode_and_sequences_only_grow(viewer: Page) -> None:
    viewer.mouse.move(400, 300)
    viewer.mouse.wheel(0, 120)
    viewer.mouse.click(100, 200)
    messages = sent(viewer)
    scrolls = [m["event"] for m in messages if m["event"]["action"] == "scroll"]
    assert scrolls
    assert scrolls[0]["deltaY"] == 120
    assert scrolls[0]["deltaMode"] == 0
    sequences = [m["sequence"] for m in messages]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)


def test_other_participants_cursors_are_drawn_on_the_picture_with_their_names(
    viewer: Page,
) -> None:
    viewer.evaluate(
        """window.cursors.update([
            {id: "me", name: "Me", x: 0.1, y: 0.1},
            {id: "ann", name: "Ann <b>", x: 0.5, y: 0.5},
            {id: "bob", name: "Bob", x: 0, y: 1},
            {id: "eve", name: "Eve", x: 1.5, y: 0.5},
            {id: "hid", name: "Hidden", x: 0.2, y: 0.2, visible: false},
        ])"""
    )
    marks = viewer.eval_on_selector_all(
        ".pairux-cursor",
        """els => els.map(e => ({id: e.dataset.participant,
            name: e.querySelector('.name').textContent,
            box: e.getBoundingClientRect().toJSON(),
            colour: e.querySelector('path').getAttribute('fill')}))""",
    )
    by_id = {m["id"]: m for m in marks}
    assert set(by_id) == {"ann", "bob"}  # not ourselves, not off the picture, not hidden
    assert by_id["ann"]["name"] == "Ann <b>"  # shown as text
    assert (by_id["ann"]["box"]["x"], by_id["ann"]["box"]["y"]) == (400, TOP_BAR + 225)
    assert (by_id["bob"]["box"]["x"], by_id["bob"]["box"]["y"]) == (0, TOP_BAR + 450)
    viewer.evaluate("window.cursors.update([{id: 'bob', name: 'Bob', x: 0.5, y: 0}])")
    left = viewer.eval_on_selector_all(
        ".pairux-cursor",
        "els => els.map(e => [e.dataset.participant, e.getBoundingClientRect().x])",
    )
    assert left == [["bob", 400]]  # Ann left the list: her cursor is gone


def test_a_participants_colour_is_the_same_on_every_screen(viewer: Page) -> None:
    colours = viewer.evaluate(
        """async () => {
            const { colourFor } = await import("./cursors.js");
            return ["ann", "bob", "ann", "x".repeat(64)].map(colourFor);
        }"""
    )
    assert colours[0] == colours[2]
    assert all(c.startswith("#") and len(c) == 7 for c in colours)
