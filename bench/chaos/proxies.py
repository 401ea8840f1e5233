"""Two small proxies the chaos scenarios put between the bot and what it talks to.

`TcpProxy` relays bytes between the bot and PostgreSQL and can drop every open connection at once
(`cut()`): what a failover, a restarted PgBouncer or a flaky network does to a connection pool. New
connections are accepted again at once, so the bot must notice the dead ones and reconnect.

`RoundRobinProxy` is the load balancer in front of several `migratebot serve` replicas: Slack has
one Request URL, the proxy hands each request to the next replica, and skips a replica that refuses
the connection (a dead one) as a load balancer's health check would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.serving import ThreadedUvicorn


class TcpProxy:
    """127.0.0.1:<ephemeral> → `upstream`, on its own event loop thread."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.port = 0
        self.cuts = 0
        self.dropped = 0  # connections dropped by cuts, over the run
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> asyncio.base_events.Server:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer.transport, up_writer.transport}
        self._transports |= pair
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._transports -= pair
            for transport in pair:
                transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def cut(self) -> int:
        """Drop every open connection (a TCP reset both ways); returns how many client connections."""

        async def drop() -> int:
            transports = list(self._transports)
            for transport in transports:
                transport.abort()
            return len(transports) // 2

        count = asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)
        self.cuts += 1
        self.dropped += count
        return count

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for transport in list(self._transports):
                transport.abort()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class RoundRobinProxy:
    """One Slack Request URL in front of several replicas' /slack/events."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends  # base URLs, e.g. http://127.0.0.1:41234
        self.forwarded: dict[str, int] = {b: 0 for b in backends}
        self._next = 0
        self._lock = threading.Lock()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST"])])
        self._server = ThreadedUvicorn(app, sock, name="round-robin")

    def _order(self) -> list[str]:
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.backends)
        return self.backends[start:] + self.backends[:start]

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        for backend in self._order():
            try:
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
                    session.request(request.method, backend + path, data=body, headers=headers) as answer,
                ):
                    content = await answer.read()
                    self.forwarded[backend] += 1
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
                    return Response(content, status_code=answer.status, headers=kept)
            except aiohttp.ClientConnectionError:
                continue  # a dead replica: the next one
        return Response(b"no replica answered", status_code=502)

    def start(self) -> RoundRobinProxy:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> RoundRobinProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def free_port() -> int:
    """A port nothing listens on now (the bot binds it itself, again after every restart)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
