"""`keel pairux host`'s options and the grant policies (the session itself runs end to end in
tests/pairux/e2e)."""

from __future__ import annotations

from typer.testing import CliRunner

from keel.cli import app
from keel.pairux.host import agent


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
