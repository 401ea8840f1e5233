"""What the engine (and the canary) tell the world while they work: plain, immutable events on a bus.

Nothing here knows about Slack. The Slack notifier and the CLI's console subscribe to the same bus;
a subscriber that fails is logged and never stops the publisher (a failed Slack post must not stop a
drain). Events are delivered synchronously, in publish order, on the publisher's thread: a subscriber
that needs to do slow I/O hands the event to its own worker.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WaveRef:
    """Which wave an event is about."""

    cluster: str
    wave_id: int
    index: int  # 1-based, as people number waves
    name: str

    @property
    def label(self) -> str:
        return f"wave {self.index} ({self.name})"


@dataclass(frozen=True)
class WaveProgress:
    """Where a wave is now. Sent whenever a count changes; the latest one says it all."""

    wave: WaveRef
    phase: str  # "preparing" | "cordoning" | "draining" | "replacing" | "waiting for pods" | "retiring" | …
    nodes_total: int
    nodes_cordoned: int
    nodes_drained: int
    pods_total: int
    pods_evicted: int
    pods_ready: int
    new_nodes_ready: int
    al2_nodes_left: int
    held: tuple[str, ...] = ()  # "pod payments/fraud-scorer-0: karpenter.sh/do-not-disrupt", …
    # The wave's eviction outcomes in this engine so far (from 0 when the engine starts): 429s from
    # disruption budgets (each retried), pods the drain refuses to evict (no controller, DaemonSet
    # gone), evictions the API refused for good.
    evictions_retried: int = 0
    pods_refused: int = 0
    evictions_failed: int = 0
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class StepFailed:
    """A step failed; `will_retry` says whether the engine tries it again by itself."""

    wave: WaveRef
    step: str
    target: str
    error: str
    attempt: int
    will_retry: bool
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class WavePaused:
    wave: WaveRef
    reason: str  # "paused by U0SRE00001", "change window closed at 18:00 UTC", "alert HighErrorRate firing"
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class WaveFinished:
    """The engine is done with the wave's execution: `outcome` is the state it left it in
    (baking, failed, rolled_back, aborted)."""

    wave: WaveRef
    outcome: str
    summary: str
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class EngineAlert:
    """Something people must look at now: the engine cannot make progress by itself.

    kind: "drain_stuck" (a drain past its timeout), "node_not_ready" (a new node never became Ready),
    "step_failing" (a step failed repeatedly), "blocked" (a blocking alert or pod holds the wave),
    "no_identity" (the plan impersonates people and nobody on the wave is mapped: it won't run as the bot).
    The canary's alerting subscribes to these, pauses the migration and pages on-call."""

    wave: WaveRef
    kind: str
    summary: str
    objects: tuple[str, ...] = ()  # "node ip-10-0-1-5", "pod shop/cart-7f9", …
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


Event = WaveProgress | StepFailed | WavePaused | WaveFinished | EngineAlert
Subscriber = Callable[[Event], None]


class EventBus:
    """Publish/subscribe, in process. Thread-safe; subscribers are called in subscription order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, type(event).__name__)
