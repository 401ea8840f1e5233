"""The sandbox's scaled clock: emulated seconds run `time_scale` times faster than real ones.

Every timestamp the sandbox writes (creationTimestamp, conditions, ground truth) comes from `now()`,
so latencies measured from the API come out in realistic emulated seconds while a demo wave takes
real seconds. Controllers wait with `sleep()`/`call_later()` in emulated seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class ScaledClock:
    def __init__(self, time_scale: float = 1.0, *, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self._real_origin = time.monotonic()
        self._emulated_origin = time.time() if start is None else start

    def now(self) -> float:
        """Emulated seconds since the epoch."""
        return self._emulated_origin + (time.monotonic() - self._real_origin) * self.time_scale

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def real_seconds(self, emulated_seconds: float) -> float:
        return max(0.0, emulated_seconds / self.time_scale)

    def sleep(self, emulated_seconds: float) -> None:
        time.sleep(self.real_seconds(emulated_seconds))

    def call_later(self, emulated_seconds: float, action: Callable[[], None]) -> threading.Timer:
        """Run `action` on a daemon timer thread after `emulated_seconds`; cancel() the returned timer."""
        timer = threading.Timer(self.real_seconds(emulated_seconds), action)
        timer.daemon = True
        timer.start()
        return timer

    def __call__(self) -> float:
        # A ScaledClock is also the `clock: Callable[[], float]` that SandboxServer and KubeApi take.
        return self.now()
