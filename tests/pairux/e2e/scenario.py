"""The whole product on one machine: Xvfb running the Tk input logger, coturn, `keel serve`'s
pairux, the host agent sharing the display, and headless Chromium on the viewer page.

Run by ``test_viewer_end_to_end.py`` inside a loopback-only network namespace
(``tests.pairux.media.netns``); it refuses to run anywhere else. Prints one JSON line of facts
for the test to assert on (and the stage it reached, so a failure says where).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from keel.pairux.host.agent import AgentOptions, HostAgent
from keel.pairux.host.control.arbitration import CaptureRect
from tests.pairux.conftest import Server, serving, settings
from tests.pairux.control import input_logger
from tests.pairux.control.conftest import HEIGHT, WIDTH, InputLog, run_input_logger, run_xvfb
from tests.pairux.coturn import run_coturn
from tests.pairux.media import netns

CHROMIUM = os.environ.get("KEEL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    # Both are required on loopback (reference, "Loopback ICE, precisely").
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
PATCH_LEFT, PATCH_TOP, PATCH_WIDTH, PATCH_HEIGHT = input_logger.PATCH
PATCH_CENTRE = (PATCH_LEFT + PATCH_WIDTH // 2, PATCH_TOP + PATCH_HEIGHT // 2)
FPS = 15
VIEWERS = 10
WINDOW_S = 3.0

# Where a screen pixel is drawn on the page, and what colour the video shows there.
_CLIENT_POINT = """([sx, sy, sw, sh]) => {
  const v = document.getElementById("screen");
  const box = v.getBoundingClientRect();
  const s = Math.min(box.width / v.videoWidth, box.height / v.videoHeight);
  const w = v.videoWidth * s, h = v.videoHeight * s;
  const left = box.left + (box.width - w) / 2, top = box.top + (box.height - h) / 2;
  return [left + (sx / sw) * w, top + (sy / sh) * h];
}"""
_PIXEL = """([sx, sy, sw, sh]) => {
  const v = document.getElementById("screen");
  const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0);
  const x = Math.round((sx / sw) * c.width), y = Math.round((sy / sh) * c.height);
  const d = g.getImageData(x, y, 1, 1).data;
  return [d[0], d[1], d[2]];
}"""


async def poll(page: Page, check: str, within_s: float) -> Any:
    """Evaluate ``check`` (a JS expression, may be async) until truthy; its last value."""
    deadline = time.monotonic() + within_s
    value: Any = None
    while time.monotonic() < deadline:
        value = await page.evaluate(check)
        if value:
            return value
        await asyncio.sleep(0.1)
    return value


async def _join(
    browser: Browser, base: str, code: str, name: str, relay: bool, invite: str | None = None
) -> Page:
    """A page that joins by ``code``, or by ``invite`` (``/pairux/join#invite=…``) when given."""
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    query = f"name={name}" + ("&relay=1" if relay else "")
    if invite is not None:
        path, fragment = invite.split("#", 1)
        await page.goto(f"{base}{path}?{query}#{fragment}")
    else:
        await page.goto(f"{base}/pairux/?code={code}&{query}")
    await page.click("#join-button")
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def _decoding(page: Page, within_s: float) -> dict[str, Any]:
    stats: dict[str, Any] = await poll(
        page,
        "window.pairux.readStats().then(s => (s.framesDecoded > 0 && s.candidateType) ? s : null)",
        within_s,
    ) or await page.evaluate("window.pairux.readStats()")
    return stats


def _events(log: InputLog, since: float = 0.0) -> list[dict[str, Any]]:
    return [e for e in log.settle(0.3) if e["t"] >= since]


_STREAM = """() => { const c = window.pairux.capture;
  const m = {ctrl: false, alt: false, shift: false, meta: false, accel: false};
  window.stream = setInterval(() => {
    c.emit({type: "keyboard", action: "down", key: "z", code: "KeyZ", modifiers: m});
    c.emit({type: "keyboard", action: "up", key: "z", code: "KeyZ", modifiers: m});
  }, 10);
}"""


async def _stream_then(page: Page, log: InputLog, revoke: Callable[[], None]) -> dict[str, Any]:
    """Send "z" every 10 ms, ``revoke`` after 0.4 s, stop 0.6 s later: how many landed before,
    and how long after the revoke (ms) any still landed."""
    start = time.monotonic()
    await page.evaluate(_STREAM)
    await asyncio.sleep(0.4)
    t_revoke = time.monotonic()
    revoke()
    await asyncio.sleep(0.6)
    await page.evaluate("() => clearInterval(window.stream)")
    stream = [e for e in _events(log, start) if e.get("keysym") == "z"]
    return {
        "z_before_revoke": sum(1 for e in stream if e["t"] < t_revoke),
        "z_after_revoke_ms": [
            round((e["t"] - t_revoke) * 1000, 1) for e in stream if e["t"] >= t_revoke
        ],
    }


async def _reported_candidate(server: Server, room_id: str, participant_id: str) -> str | None:
    """The candidate type the viewer's ``stats`` reports told the server (within 5 s)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        live = server.product.app.state.pairux.hub.rooms.get(room_id)
        member = live.members.get(participant_id) if live is not None else None
        if member is not None and member.session is not None and member.session.candidate_type:
            return str(member.session.candidate_type)
        await asyncio.sleep(0.2)
    return None


def _role(server: Server, room_id: str, participant_id: str) -> str | None:
    """The participant's role as the server's hub records it."""
    live = server.product.app.state.pairux.hub.rooms.get(room_id)
    member = live.members.get(participant_id) if live is not None else None
    return member.participant.role.value if member is not None else None


async def _main_run(
    server: Server, browser: Browser, log: InputLog, agent: HostAgent
) -> dict[str, Any]:
    base, room_id = server.base, agent.room["room"]["id"]
    facts: dict[str, Any] = {}
    code = agent.room["room"]["code"]
    page = await _join(browser, base, code, "Vic", relay=False)
    t0 = time.monotonic()
    stats = await _decoding(page, 30)
    facts["connect_s"] = round(time.monotonic() - t0, 2)
    facts["stats"] = stats
    facts["patch_pixel"] = await page.evaluate(_PIXEL, [*PATCH_CENTRE, WIDTH, HEIGHT])
    facts["background_pixel"] = await page.evaluate(
        _PIXEL, [WIDTH - 100, HEIGHT - 100, WIDTH, HEIGHT]
    )
    facts["control_enabled"] = bool(
        await poll(page, "!document.getElementById('control').disabled", 10)
    )
    viewer_id = await page.evaluate("window.pairux.me")
    facts["viewer_is_peer"] = viewer_id in agent.peers

    # Before a grant: real clicks and typing, and input messages sent straight down the
    # channel, inject nothing.
    x, y = await page.evaluate(_CLIENT_POINT, [*PATCH_CENTRE, WIDTH, HEIGHT])
    before = time.monotonic()
    await page.mouse.click(x, y)
    await page.keyboard.type("nope")
    await page.evaluate(
        """() => { const c = window.pairux.capture;
          c.emit({type: "mouse", action: "down", button: "left", x: 0.25, y: 0.3});
          c.emit({type: "mouse", action: "up", button: "left", x: 0.25, y: 0.3});
          c.emit({type: "keyboard", action: "down", key: "q", code: "KeyQ",
                  modifiers: {ctrl: false, alt: false, shift: false, meta: false, accel: false}});
          c.emit({type: "keyboard", action: "up", key: "q", code: "KeyQ",
                  modifiers: {ctrl: false, alt: false, shift: false, meta: false, accel: false}});
        }"""
    )
    await asyncio.sleep(0.5)
    facts["events_before_grant"] = _events(log, before)
    facts["server_heard_candidate"] = await _reported_candidate(server, room_id, viewer_id)
    # Half the control channel's ping round trip: the page's input latency figure.
    await poll(page, "Number.isFinite(window.pairux.stats.inputLatencyMs)", 6)
    facts["input_latency_ms"] = await page.evaluate("window.pairux.stats.inputLatencyMs")

    # The viewer asks; the host's policy allows; the button says so.
    await page.click("#control")
    granted = await poll(page, "document.getElementById('control').dataset.state === 'granted'", 10)
    facts["granted"] = bool(granted)
    facts["host_sees_grant"] = agent.control is not None and agent.control.grants.is_granted(
        viewer_id
    )
    await asyncio.sleep(0.3)  # the server records the host's grant
    facts["server_role_after_grant"] = _role(server, room_id, viewer_id)

    after_grant = time.monotonic()
    x, y = await page.evaluate(_CLIENT_POINT, [*PATCH_CENTRE, WIDTH, HEIGHT])
    await page.mouse.click(x, y)
    await page.keyboard.type("hello")
    await asyncio.sleep(0.6)
    granted_events = _events(log, after_grant)
    facts["clicks"] = [
        (e["x"], e["y"], e["num"]) for e in granted_events if e["ev"] == "button_down"
    ]
    facts["typed"] = "".join(e["char"] for e in granted_events if e["ev"] == "key_down")
    await asyncio.sleep(0.5)  # the picture shows the app still there after the input
    facts["pixel_after_input"] = await page.evaluate(_PIXEL, [*PATCH_CENTRE, WIDTH, HEIGHT])

    # A stream of keys every 10 ms, then the host revokes: nothing lands 100 ms later.
    facts.update(await _stream_then(page, log, lambda: agent.revoke(viewer_id)))
    facts["server_role_after_revoke"] = _role(server, room_id, viewer_id)
    facts["button_after_revoke"] = await poll(
        page, "document.getElementById('control').dataset.state === 'view-only'", 3
    )
    facts["page_errors"] = page.errors  # type: ignore[attr-defined]
    facts["iceServers_offered"] = await page.evaluate(
        "window.pairux.iceServers.map(s => ({urls: s.urls, hasUser: !!s.username}))"
    )
    await page.context.close()
    for _ in range(50):  # the page left: its socket closed, the host drops the link (5 s)
        if viewer_id not in agent.peers:
            break
        await asyncio.sleep(0.1)
    facts["link_closed_after_leave"] = viewer_id not in agent.peers
    return facts


async def _relay_run(
    base: str, browser: Browser, log: InputLog, cli: HostCli, turn_port: int
) -> dict[str, Any]:
    """A relay-only viewer of ``keel pairux host`` (the CLI, ``--grant all``), then its
    emergency revoke (SIGUSR1) while the viewer types."""
    page = await _join(browser, base, cli.code, "Rel", relay=True, invite=cli.invite)
    stats = await _decoding(page, 30)
    servers = await page.evaluate("window.pairux.iceServers")
    turn = next((s for s in servers if s.get("username")), {})
    facts: dict[str, Any] = {
        "stats": stats,
        "joined_by_invite": cli.invite.startswith("/pairux/join#invite="),
        "url_after_join": page.url.removeprefix(base),
        "turn_username_shape": bool(turn) and turn["username"].split(":")[0].isdigit(),
        "turn_urls": turn.get("urls", []),
        "turn_port": turn_port,
    }
    await poll(page, "!document.getElementById('control').disabled", 10)
    await page.click("#control")
    facts["granted"] = bool(
        await poll(page, "document.getElementById('control').dataset.state === 'granted'", 10)
    )
    facts["emergency"] = await _stream_then(
        page, log, lambda: cli.process.send_signal(signal.SIGUSR1)
    )
    facts["button_after_emergency"] = bool(
        await poll(page, "document.getElementById('control').dataset.state === 'view-only'", 3)
    )
    facts["page_errors"] = page.errors  # type: ignore[attr-defined]
    await page.context.close()
    return facts


@dataclass
class HostCli:
    process: asyncio.subprocess.Process
    code: str
    invite: str
    printed: list[str]


async def _with_cli(base: str, display: str, work: Callable[[HostCli], Awaitable[Any]]) -> Any:
    """``keel pairux host`` in a process of its own (this checkout's code), until ``work`` ends;
    then Ctrl+C (SIGINT), as a person would stop it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from keel.cli import main; main()",
        *("pairux", "host", "--server", base, "--name", "Host", "--display", display),
        *("--fps", str(FPS), "--grant", "all", "--no-audit"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    printed: list[str] = []
    code = invite = ""
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            if not line:
                raise RuntimeError(f"keel pairux host exited: {printed}")
            printed.append(line.strip())
            if line.startswith("join code: "):
                code = line.removeprefix("join code: ").strip()
            if line.startswith("invite link: "):
                invite = line.removeprefix("invite link: ").strip()
            if line.startswith("emergency revoke: "):  # the last line it prints
                break
        return await work(HostCli(process, code, invite, printed))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _ten_viewers(base: str, browser: Browser, agent: HostAgent) -> dict[str, Any]:
    """Ten pages watch one host: every one decodes, and the host encodes each frame once."""
    code = agent.room["room"]["code"]
    pages = [await _join(browser, base, code, f"V{i}", relay=False) for i in range(VIEWERS)]
    first = [await _decoding(page, 30) for page in pages]
    await asyncio.sleep(1.0)
    before = [await page.evaluate("window.pairux.readStats()") for page in pages]
    captured, encoded = agent.media.frames_captured, agent.media.frames_encoded
    await asyncio.sleep(WINDOW_S)
    after = [await page.evaluate("window.pairux.readStats()") for page in pages]
    facts = {
        "all_started": all(s.get("framesDecoded", 0) > 0 for s in first),
        "peers": len(agent.peers),
        "captured": agent.media.frames_captured - captured,
        "encoded": agent.media.frames_encoded - encoded,
        "decoded": [
            a["framesDecoded"] - b["framesDecoded"] for a, b in zip(after, before, strict=True)
        ],
        "widths": sorted({a.get("width") for a in after}),
        "window_s": WINDOW_S,
        "fps": agent.media.rung.fps,
    }
    for page in pages:
        await page.context.close()
    return facts


_GRANTED = "document.getElementById('control').dataset.state === 'granted'"


def _host_presses(display: str, keysym: str) -> float:
    """The host's own hands: a key pressed through a second X client (not our injector, so
    not an echo). Returns when it was pressed (monotonic)."""
    from Xlib import XK, X
    from Xlib import display as xdisplay
    from Xlib.ext import xtest

    connection = xdisplay.Display(display)
    try:
        code = connection.keysym_to_keycode(XK.string_to_keysym(keysym))
        pressed = time.monotonic()
        xtest.fake_input(connection, X.KeyPress, code)
        xtest.fake_input(connection, X.KeyRelease, code)
        connection.sync()
        return pressed
    finally:
        connection.close()


async def _two_controllers(
    base: str, browser: Browser, log: InputLog, agent: HostAgent, display: str
) -> dict[str, Any]:
    """Two granted pages type a word each at once; then, while both stream keys, the host
    types: remote input pauses."""
    code = agent.room["room"]["code"]
    pages = [await _join(browser, base, code, name, relay=False) for name in ("Ann", "Bob")]
    for page in pages:
        await _decoding(page, 30)
        await poll(page, "!document.getElementById('control').disabled", 10)
        await page.click("#control")
    granted = [bool(await poll(page, _GRANTED, 10)) for page in pages]
    for page in pages:  # focus the picture, as a click on it would (no click: it would inject)
        await page.focus("#screen")
    await asyncio.sleep(1.2)  # past the typing lock of anything earlier
    start = time.monotonic()
    await asyncio.gather(
        pages[0].keyboard.type("alpha", delay=25), pages[1].keyboard.type("bravo", delay=25)
    )
    await asyncio.sleep(0.4)
    typed = "".join(e["char"] for e in _events(log, start) if e["ev"] == "key_down")

    await asyncio.sleep(1.2)
    start = time.monotonic()
    for page in pages:
        await page.evaluate(_STREAM)
    await asyncio.sleep(0.4)
    t_host = await asyncio.to_thread(_host_presses, display, "h")
    await asyncio.sleep(1.0)
    for page in pages:
        await page.evaluate("() => clearInterval(window.stream)")
    remote = [
        round((e["t"] - t_host) * 1000, 1)
        for e in _events(log, start)
        if e["ev"] == "key_down" and e.get("keysym") == "z"
    ]
    facts = {
        "granted": granted,
        "typed": typed,
        "remote_before_host": sum(1 for ms in remote if ms < 0),
        "remote_after_host_ms": [ms for ms in remote if ms >= 0],
    }
    for page in pages:
        await page.context.close()
    return facts


async def _wrong_secret_run(base: str, browser: Browser, agent: HostAgent) -> dict[str, Any]:
    page = await _join(browser, base, agent.room["room"]["code"], "Bad", relay=True)
    await asyncio.sleep(8)
    facts = {
        "stats": await page.evaluate("window.pairux.readStats()"),
        "state": await page.evaluate("window.pairux.pc && window.pairux.pc.connectionState"),
        "candidate_errors": await page.evaluate("window.pairux.candidateErrors"),
        "offered": await page.evaluate("!!window.pairux.pc"),
    }
    await page.context.close()
    return facts


async def _with_agent(
    base: str, display: str, facts: dict[str, Any], key: str, work: Any, **options: Any
) -> None:
    async def allow(_pid: str, _name: str) -> bool:
        return True

    agent = HostAgent(
        AgentOptions(server=base, name="Host", display=display, fps=FPS, **options),
        decide=allow,
        rect=CaptureRect(0, 0, WIDTH, HEIGHT),
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.ready.wait(), 20)
        facts[key] = await work(agent)
        facts[key]["frames_encoded"] = agent.media.frames_encoded
    finally:
        stop.set()
        await asyncio.wait_for(runner, 20)


async def scenario(workdir: Path, facts: dict[str, Any]) -> dict[str, Any]:
    facts["stage"] = "start"
    t_start = time.monotonic()
    with (
        run_xvfb() as display,
        run_input_logger(display, "--patch") as log,
        run_coturn(workdir / "coturn") as turn,
    ):
        common = {"turn_host": "127.0.0.1", "turn_port": turn.port, "turn_tls": False}
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                good = settings(**common, turn_secret=turn.secret)
                async with serving(good, workdir / "good") as server:
                    facts["stage"] = "main"
                    await _with_agent(
                        server.base,
                        display,
                        facts,
                        "main",
                        lambda agent: _main_run(server, browser, log, agent),
                    )
                    facts["stage"] = "relay"
                    facts["relay"] = await _with_cli(
                        server.base,
                        display,
                        lambda cli: _relay_run(server.base, browser, log, cli, turn.port),
                    )
                    facts["stage"] = "two-controllers"
                    await _with_agent(
                        server.base,
                        display,
                        facts,
                        "two",
                        lambda agent: _two_controllers(server.base, browser, log, agent, display),
                    )
                    facts["stage"] = "ten-viewers"
                    await _with_agent(
                        server.base,
                        display,
                        facts,
                        "ten",
                        lambda agent: _ten_viewers(server.base, browser, agent),
                        start_rung=0,
                        max_rung=0,  # 640x360 at 10 fps: ten decoders on two shared cores
                    )
                bad = settings(**common, turn_secret="not-" + turn.secret)
                async with serving(bad, workdir / "bad") as server:
                    facts["stage"] = "wrong-secret"
                    await _with_agent(
                        server.base,
                        display,
                        facts,
                        "wrong_secret",
                        lambda agent: _wrong_secret_run(server.base, browser, agent),
                    )
                facts["stage"] = "done"
            finally:
                await browser.close()
    facts["total_s"] = round(time.monotonic() - t_start, 1)
    return facts


def main() -> None:
    if not netns.only_loopback():
        sys.exit("refusing to run: not in a loopback-only network namespace")
    with tempfile.TemporaryDirectory(prefix="pairux-e2e-") as scratch:
        facts: dict[str, Any] = {}
        try:
            asyncio.run(scenario(Path(scratch), facts))
        except BaseException:
            facts["error"] = traceback.format_exc()[-3000:]
        print(json.dumps(facts))


if __name__ == "__main__":
    main()
