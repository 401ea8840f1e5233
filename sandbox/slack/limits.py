"""Slack's published per-method rate limits, enforced when a test asks for them.

Off by default: most tests want every call answered. On, a burst the real Slack would refuse gets
HTTP 429 + Retry-After here too, so the bot's retry and queueing are exercised by its own traffic
rather than by injected faults. Tiers from the Web API rate-limit docs ("Tier 2: 20+ per minute",
…); chat.postMessage is "special": about one message per second per channel, short bursts allowed.
Slack's exact burst allowance is unpublished — the buckets below allow one minute's worth at once
(one second's worth ×5 for chat.postMessage), which is a deliberate approximation.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}

METHOD_TIERS = {
    "auth.test": 4,
    "chat.update": 3,
    "chat.delete": 3,
    "chat.postEphemeral": 4,
    "chat.getPermalink": 4,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.info": 3,
    "conversations.members": 4,
    "users.info": 4,
    "users.list": 2,
    "usergroups.users.list": 2,
    "usergroups.list": 2,
    "reactions.add": 3,
    "views.publish": 4,
    "views.open": 4,
    "views.update": 4,
    "views.push": 4,
    "conversations.join": 3,
    "conversations.open": 3,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "files.info": 4,
}
POST_MESSAGE_PER_SECOND = 1.0
POST_MESSAGE_BURST = 5.0


@dataclass
class _Bucket:
    capacity: float
    per_second: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float | None:
        """None when a token was available; else the seconds until one will be."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.per_second


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = False
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, method: str, channel: str | None) -> int | None:
        """Retry-After seconds when this call is over the method's limit, else None."""
        if not self.enabled:
            return None
        if method == "chat.postMessage":
            key, capacity, rate = (method, channel or ""), POST_MESSAGE_BURST, POST_MESSAGE_PER_SECOND
        elif method in METHOD_TIERS:
            per_minute = TIER_PER_MINUTE[METHOD_TIERS[method]]
            key, capacity, rate = (method, ""), float(per_minute), per_minute / 60.0
        else:
            return None
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(capacity, rate, capacity, now))
            wait = bucket.take(now)
        return None if wait is None else max(1, math.ceil(wait))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
