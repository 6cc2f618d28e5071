"""PairUX viewer→injection latency on loopback: from the moment the viewer page hands a key
press to its ``control`` data channel to the moment the app on the host's X display receives it.

The whole product runs as in the end-to-end test (tests/pairux/e2e/scenario.py), in a network
namespace that has only loopback: Xvfb running the Tk input logger, ``keel serve``'s pairux, the
host agent (``keel.pairux.host.agent``: data channel → grants → arbiter → XTest) and headless
Chromium on the viewer page, granted control. The page sends ``--presses`` key presses (down and
up, ``--gap-ms`` apart) stamped with ``performance.timeOrigin + performance.now()``; the Tk app
stamps each KeyPress with ``time.time()`` (one machine, one wall clock). Target: p95 < 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright
from tests.pairux.conftest import serving, settings
from tests.pairux.control.conftest import HEIGHT, WIDTH, run_input_logger, run_xvfb
from tests.pairux.e2e.scenario import CHROMIUM, CHROMIUM_ARGS, FPS, poll
from tests.pairux.media import netns

from keel.pairux.host.agent import AgentOptions, HostAgent
from keel.pairux.host.control.arbitration import CaptureRect

_SEND = """async ([count, gap]) => {
  const c = window.pairux.capture;
  const m = {ctrl: false, alt: false, shift: false, meta: false, accel: false};
  const sent = [];
  for (let i = 0; i < count; i += 1) {
    sent.push(performance.timeOrigin + performance.now());
    c.emit({type: "keyboard", action: "down", key: "a", code: "KeyA", modifiers: m});
    c.emit({type: "keyboard", action: "up", key: "a", code: "KeyA", modifiers: m});
    await new Promise((r) => setTimeout(r, gap));
  }
  return sent;
}"""


async def measure(presses: int, gap_ms: int) -> dict[str, Any]:
    async def allow(_pid: str, _name: str) -> bool:
        return True

    with (
        run_xvfb() as display,
        run_input_logger(display) as log,
        tempfile.TemporaryDirectory(prefix="pairux-latency-") as scratch,
    ):
        async with serving(settings(turn_host=""), Path(scratch)) as server:
            agent = HostAgent(
                AgentOptions(server=server.base, name="Host", display=display, fps=FPS),
                decide=allow,
                rect=CaptureRect(0, 0, WIDTH, HEIGHT),
            )
            stop = asyncio.Event()
            runner = asyncio.create_task(agent.run(stop))
            await asyncio.wait_for(agent.ready.wait(), 20)
            code = agent.room["room"]["code"]
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = await browser.new_page(viewport={"width": 1000, "height": 700})
                await page.goto(f"{server.base}/pairux/?code={code}&name=Bench")
                await page.click("#join-button")
                await poll(page, "!document.getElementById('control').disabled", 30)
                await page.click("#control")
                granted = "document.getElementById('control').dataset.state === 'granted'"
                if not await poll(page, granted, 10):
                    raise RuntimeError("control was not granted")
                log.settle(0.3)
                log.seen.clear()
                await asyncio.sleep(1.0)  # let the stream settle (keyframes, ladder)
                sent: list[float] = await page.evaluate(_SEND, [presses, gap_ms])
                await asyncio.sleep(0.5)
                received = [e["wall"] * 1000 for e in log.settle(0.5) if e["ev"] == "key_down"]
                await browser.close()
            stop.set()
            await runner
    latencies = [r - s for s, r in zip(sent, received, strict=False)]
    latencies.sort()
    return {
        "presses": presses,
        "received": len(received),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "max_ms": round(latencies[-1], 2),
        "min_ms": round(latencies[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--gap-ms", type=int, default=25)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        if not netns.only_loopback():
            sys.exit("refusing to run: not in a loopback-only network namespace")
        print(json.dumps(asyncio.run(measure(args.presses, args.gap_ms))))
        return
    command = [sys.executable, __file__, "--inside", "--presses", str(args.presses)]
    command += ["--gap-ms", str(args.gap_ms)]
    started = time.monotonic()
    result = netns.run_isolated(command, timeout=300)
    print(f"viewer→injection, {args.presses} key presses {args.gap_ms} ms apart, loopback;")
    print(f"Python {platform.python_version()}, {platform.machine()}; {platform.node()}")
    print(
        f"received {result['received']}/{result['presses']}  p50 {result['p50_ms']} ms  "
        f"p95 {result['p95_ms']} ms  max {result['max_ms']} ms  min {result['min_ms']} ms  "
        f"(run {time.monotonic() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
