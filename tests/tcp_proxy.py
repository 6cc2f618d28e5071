"""A TCP proxy on loopback for failure tests: it forwards to a local server and can add
latency, hold every byte (a paused peer) or cut every connection (a partition).

    proxy = TcpProxy(target_port)
    port = await proxy.start()
    proxy.latency_seconds = 0.2   # each chunk towards the server waits this long first
    proxy.pause(); proxy.resume() # hold data without closing anything, then let it go
    proxy.cut(); proxy.restore()  # close every connection and refuse new ones, then accept
    await proxy.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib

LOOPBACK = "127.0.0.1"


class TcpProxy:
    def __init__(self, target_port: int, *, target_host: str = LOOPBACK) -> None:
        if target_host not in (LOOPBACK, "localhost", "::1"):
            raise ValueError("tests send traffic to loopback only")
        self.target = (target_host, target_port)
        self.latency_seconds = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted so far, cut ones included

    async def start(self) -> int:
        """Listen on a free loopback port and return it."""
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        return int(self._server.sockets[0].getsockname()[1])

    def pause(self) -> None:
        """Hold bytes in both directions; connections stay open (like SIGSTOP)."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        """Close every open connection and every new one at once (a partition)."""
        self._cut = True
        for writer in list(self._writers):
            writer.transport.abort()

    def restore(self) -> None:
        self._cut = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        tasks = {
            asyncio.create_task(self._pipe(reader, up_writer, delayed=True)),
            asyncio.create_task(self._pipe(up_reader, writer, delayed=False)),
        }
        self._tasks |= tasks
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks -= tasks
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                if delayed and self.latency_seconds > 0:
                    await asyncio.sleep(self.latency_seconds)
                await self._flowing.wait()
                if self._cut:
                    return
                writer.write(chunk)
                await writer.drain()

    async def aclose(self) -> None:
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
