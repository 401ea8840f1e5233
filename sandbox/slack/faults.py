"""Injected trouble: rate limits, server errors and latency, per Web API method, changed at runtime.

Real Slack answers a burst with HTTP 429 + Retry-After and sometimes fails with 5xx; the bot must
retry the first after the advertised delay (slack_sdk's RateLimitErrorRetryHandler) and survive the
second. A rule applies to the next N calls of a method, or to a fraction of them (seeded, so a
failing run can be replayed), or to every call until cleared.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    RATELIMITED = "ratelimited"
    SERVER_ERROR = "server_error"
    LATENCY = "latency"


@dataclass
class FaultRule:
    kind: FaultKind
    # A method name or a shell pattern ("chat.*", "*").
    method: str = "*"
    # None: every matching call until cleared; a number: only that many more calls.
    times: int | None = 1
    # Applies to this share of matching calls (1.0 = all of them).
    fraction: float = 1.0
    retry_after: int = 1
    status: int = 500
    seconds: float = 0.0
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fault:
    """What happens to one call: delay first, then maybe an error answer instead of the real one."""

    delay: float = 0.0
    status: int | None = None
    error: str = ""
    retry_after: int | None = None


class FaultPlan:
    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def decide(self, method: str) -> Fault:
        delay = 0.0
        with self._lock:
            for rule in list(self._rules):
                if not fnmatch.fnmatchcase(method, rule.method):
                    continue
                if rule.fraction < 1.0 and self._random.random() >= rule.fraction:
                    continue
                rule.hits += 1
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                if rule.kind is FaultKind.LATENCY:
                    delay += rule.seconds
                    continue
                if rule.kind is FaultKind.RATELIMITED:
                    return Fault(delay, 429, "ratelimited", rule.retry_after)
                return Fault(
                    delay, rule.status, "internal_error" if rule.status == 500 else "service_unavailable"
                )
        return Fault(delay)
