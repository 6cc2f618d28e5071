"""The host agent keeps its session when the signaling socket drops: a server restart closes
every socket (1012), and the agent comes back with the same token while media and control go
on; a room that ends ends the agent. (No viewer joins here: no WebRTC, nothing to gather.)"""

from __future__ import annotations

import asyncio
from typing import Any

from keel.pairux.host.agent import AgentOptions, HostAgent, policy
from keel.pairux.host.control.arbitration import CaptureRect
from keel.pairux.host.control.injector import RecordingInjector
from keel.pairux.host.media.capture import SyntheticSource
from tests.pairux.conftest import Server


async def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def agent_for(server: Server) -> HostAgent:
    return HostAgent(
        AgentOptions(server=server.base, name="Hana", fps=5),
        decide=policy("none"),
        source=SyntheticSource(320, 180),
        rect=CaptureRect(0, 0, 320, 180),
        injector=RecordingInjector(),
    )


async def test_the_agent_comes_back_after_the_server_closes_its_socket(
    sqlite_server: Server,
) -> None:
    agent = agent_for(sqlite_server)
    stop = asyncio.Event()
    runner = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.ready.wait(), 20)
        hub = sqlite_server.product.app.state.pairux.hub
        room = agent.room["room"]["id"]
        await wait_for(lambda: agent.me in hub.connected(room))
        ticks = agent.media.frames_idle  # no viewer: the pipeline ticks without encoding
        hub.close_all()  # what a restarting server does
        await wait_for(lambda: agent.me not in hub.connected(room))
        await wait_for(lambda: agent.me in hub.connected(room))  # the same participant, back
        assert not runner.done()
        await wait_for(lambda: agent.media.frames_idle > ticks + 2)  # media went on
        shown = await sqlite_server.http.get(
            f"/pairux/api/rooms/{room}",
            headers={"Authorization": f"Bearer {agent.room['token']}"},
        )
        assert shown.json()["room"]["hostId"] == agent.me  # still the host of its room
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)


async def test_the_agent_stops_when_its_room_ends(sqlite_server: Server) -> None:
    agent = agent_for(sqlite_server)
    runner = asyncio.create_task(agent.run(asyncio.Event()))
    await asyncio.wait_for(agent.ready.wait(), 20)
    room = agent.room
    reply = await sqlite_server.http.delete(
        f"/pairux/api/rooms/{room['room']['id']}",
        headers={"Authorization": f"Bearer {room['token']}"},
    )
    assert reply.status_code in (200, 204), reply.text
    await asyncio.wait_for(runner, 10)  # ended: no reconnecting to a room that is gone
