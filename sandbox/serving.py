"""One way to run a sandbox ASGI app: uvicorn on an already-bound socket, in a daemon thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


class ThreadedUvicorn:
    """Serve `app` on `sock` in a thread; `start()` returns once uvicorn accepts connections.

    The socket is bound by the caller first, so the port (ephemeral in tests) is known before the
    server starts and nothing races for it.
    """

    def __init__(self, app: Any, sock: socket.socket, *, name: str, **config: Any) -> None:
        config.setdefault("log_level", "warning")
        config.setdefault("access_log", False)
        config.setdefault("lifespan", "off")
        # Open keep-alive or watch connections must not hold a test's teardown for long.
        config.setdefault("timeout_graceful_shutdown", 1)
        self._sock = sock
        self._name = name
        self.server = uvicorn.Server(uvicorn.Config(app, **config))
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> None:
        server, sock = self.server, self._sock
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name=self._name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=0.5)
            if self._thread.is_alive():
                # Idle keep-alive connections (TLS ones wait for a close_notify that a pooled client
                # never sends) would hold shutdown: stop waiting for them; the loop closes them.
                self.server.force_exit = True
                self._thread.join(timeout=timeout)
        self._thread = None


@contextlib.contextmanager
def serve_on_loopback(app: Any, *, name: str) -> Iterator[str]:
    """`app` served on 127.0.0.1 at an ephemeral port for the `with` block; yields its base URL (the
    local stand-ins for Prometheus and the like that tests point the bot at)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = ThreadedUvicorn(app, sock, name=name)
    server.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.stop()
