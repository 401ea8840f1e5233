"""Work that runs after Slack has its acknowledgement: listeners ack at once, then spawn the rest.

Acks come first. Spawned work waits until no Slack request has been in flight for `quiet` seconds
(at most `max_delay`): on one event loop, fifty answers being rendered and sent would otherwise sit
in the loop's queue between the acks of a burst — measured with bench/slack_ack.py, the burst's p99
ack went from 1.1 s to a few hundred ms. An answer is late by the burst's length, which Slack's
response_url (valid 30 minutes) does not mind; an ack later than 3 s fails in front of the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

QUIET = 0.02  # seconds without a request in flight: the burst is over
MAX_DELAY = 1.0  # spawned work never waits longer than this for the acks to calm down


class Background:
    """Tasks on the server's event loop, kept referenced until done and awaited at shutdown.

    `pending` is safe to read from another thread: tests poll it (with a deadline) to know every
    answer has been sent before asserting that nothing more happens.
    """

    def __init__(self, *, quiet: float = QUIET, max_delay: float = MAX_DELAY) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._pending = 0
        self._quiet = quiet
        self._max_delay = max_delay
        self._in_flight = 0
        self._last_request = 0.0
        self._calm: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None

    @contextmanager
    def request(self) -> Iterator[None]:
        """Mark a Slack request in flight (the Bolt middleware wraps every request in this)."""
        self._in_flight += 1
        self._last_request = time.monotonic()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._last_request = time.monotonic()

    def _is_calm(self) -> bool:
        return self._in_flight == 0 and time.monotonic() - self._last_request >= self._quiet

    async def until_calm(self) -> None:
        """Return once no Slack request has been in flight for a moment (or after max_delay)."""
        await self._until_calm()

    async def _until_calm(self) -> None:
        if self._is_calm():
            return
        if self._calm is None or self._calm.is_set():
            self._calm = asyncio.Event()
            self._watcher = asyncio.create_task(self._watch(self._calm), name="acks calm down")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._calm.wait(), timeout=self._max_delay)

    async def _watch(self, calm: asyncio.Event) -> None:
        started = time.monotonic()
        while not self._is_calm() and time.monotonic() - started < self._max_delay:
            await asyncio.sleep(self._quiet / 2)
        calm.set()

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
            await self._until_calm()
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
