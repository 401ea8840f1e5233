"""Retries of temporary errors, decided once: exponential backoff with full jitter, the server's
Retry-After honoured, bounded in attempts and in elapsed time."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.adapters.errors import EvictionBlocked, TemporaryError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts the first try; `max_elapsed` bounds the time spent waiting and calling.

    The delay before attempt n+1 is a random value in [0, min(max_delay, base_delay·2ⁿ)] (full jitter,
    so many workers hit by the same 5xx do not come back in step), raised to the server's Retry-After
    when it sent one. A Retry-After that would cross `max_elapsed` ends the retries at once.
    """

    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_elapsed: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, error: TemporaryError) -> float:
        backoff = self.rng.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))
        if error.retry_after is not None:
            return max(error.retry_after, backoff)
        return backoff


NO_RETRY = RetryPolicy(max_attempts=1)


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """Run `call`, retrying TemporaryError per `policy`. EvictionBlocked is not retried here: a PDB's
    refusal is the drain's to wait out at its own pace (kubectl's 5 s), not a transport hiccup."""
    start = monotonic()
    attempt = 0
    while True:
        try:
            return call()
        except EvictionBlocked:
            raise
        except TemporaryError as error:
            attempt += 1
            if attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt - 1, error)
            if monotonic() - start + wait > policy.max_elapsed:
                raise
            sleep(wait)
