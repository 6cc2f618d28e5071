"""Emergency mode: past the hard limit new requests get 503 + Retry-After at once; the ones
already admitted finish; health probes are never shed; loop lag alone turns emergency on."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi import FastAPI

from keel.core.loadshed import Limits, LoadShedder, LoadShedMiddleware


def app_with(shedder: LoadShedder, gate: asyncio.Event) -> FastAPI:
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await gate.wait()
        return {"emergency": shedder.emergency}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(LoadShedMiddleware, shedder=shedder)
    return app


async def test_requests_past_the_hard_limit_are_shed_and_the_admitted_ones_finish() -> None:
    shedder = LoadShedder("test", Limits(soft_inflight=2, hard_inflight=3, retry_after_s=7))
    gate = asyncio.Event()
    transport = httpx.ASGITransport(app=app_with(shedder, gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admitted = [asyncio.create_task(client.get("/slow")) for _ in range(3)]
        for _ in range(1000):  # until all three are inside the handler
            if shedder.inflight == 3:
                break
            await asyncio.sleep(0.001)
        assert shedder.emergency
        refused = await client.get("/slow")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "7"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "overloaded"
        assert (await client.get("/healthz")).status_code == 200
        gate.set()
        answers = await asyncio.gather(*admitted)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert shedder.inflight == 0
        assert not shedder.emergency
        assert (await client.get("/slow")).status_code == 200


async def test_a_saturated_event_loop_turns_emergency_mode_on_and_one_blip_does_not() -> None:
    shedder = LoadShedder("lag", Limits(soft_lag_s=0.05, sample_s=0.02, lag_window_s=0.3))
    shedder.start()
    try:
        await asyncio.sleep(0.35)
        time.sleep(0.06)  # noqa: ASYNC251 - one slow callback
        await asyncio.sleep(0.05)
        assert not shedder.emergency
        for _ in range(6):  # handlers hogging the loop, one after another
            time.sleep(0.08)  # noqa: ASYNC251 - the point
            await asyncio.sleep(0)
        await asyncio.sleep(0.03)
        assert shedder.emergency
        await asyncio.sleep(0.5)
        assert not shedder.emergency
    finally:
        await shedder.stop()
