"""Work that runs after Slack has its acknowledgement: listeners ack at once, then spawn the rest."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """Tasks on the server's event loop, kept referenced until done and awaited at shutdown.

    `pending` is safe to read from another thread: tests poll it (with a deadline) to know every
    answer has been sent before asserting that nothing more happens.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        with self._lock:
            self._pending += 1
        task = asyncio.create_task(self._run(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except Exception:
            log.exception("background work %s failed", name)
        finally:
            with self._lock:
                self._pending -= 1

    async def drain(self, timeout: float = 10.0) -> None:
        """Let running work finish (shutdown): a wave request half-posted is worse than a slow exit."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
