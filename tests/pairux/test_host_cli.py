"""`keel pairux host`'s options and the grant policies (the session itself runs end to end in
tests/pairux/e2e)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from keel.cli import app
from keel.core.clock import FrozenClock
from keel.pairux.host import agent
from keel.pairux.host.control.arbitration import CaptureRect
from keel.pairux.host.control.injector import RecordingInjector
from keel.pairux.host.media.capture import SyntheticSource


def test_bad_options_are_refused_before_anything_starts() -> None:
    runner = CliRunner()
    for args, says in (
        (["--grant", "maybe"], "--grant is ask, all or none"),
        (["--max-quality", "ultra"], "--max-quality is one of low, poor, good, high"),
        (["--codec", "av1"], "--codec is vp8 or h264"),
    ):
        result = runner.invoke(app, ["pairux", "host", *args])
        assert result.exit_code != 0, args
        assert says in result.output, result.output


async def test_the_all_and_none_policies_answer_without_asking() -> None:
    assert await agent.policy("all")("p", "Ann") is True
    assert await agent.policy("none")("p", "Ann") is False


async def test_a_timed_grant_is_extended_only_when_the_host_says_so_again(
    tmp_path: Path,
) -> None:
    """--grant-minutes: the grant lapses unless the host, asked a minute before, keeps it."""
    clock = FrozenClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    answers = [True, True, False]  # allow; keep at the first re-confirmation; not the second

    async def decide(_pid: str, _name: str) -> bool:
        return answers.pop(0)

    host = agent.HostAgent(
        agent.AgentOptions(server="http://127.0.0.1:9", name="Hana", grant_minutes=10),
        decide=decide,
        source=SyntheticSource(320, 180),
        rect=CaptureRect(0, 0, 320, 180),
        injector=RecordingInjector(),
        clock=clock,
    )
    host._start_control({"room": {"id": "r1"}})
    grants = host.control.grants  # type: ignore[union-attr]

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    grants.join("vic", "Vic")  # what the viewer's control channel opening does
    grants.request("vic")
    await settle()
    assert grants.is_granted("vic")
    clock.advance(timedelta(minutes=9, seconds=1))  # inside the re-confirmation lead
    grants.tick()
    await settle()
    clock.advance(timedelta(minutes=5))  # past the first 10 minutes: extended, still held
    grants.tick()
    assert grants.is_granted("vic")
    clock.advance(timedelta(minutes=4, seconds=30))  # near the extended end: asked again
    grants.tick()
    await settle()
    clock.advance(timedelta(minutes=1))
    grants.tick()
    assert not grants.is_granted("vic")  # the host said no: it lapsed
    assert answers == []
    host.control.close()  # type: ignore[union-attr]
