"""What the engine measures during a wave, as plain facts: when each node and each displaced pod
reached each milestone. The engine records them; the reports turn them into figures.

Every time is an aware UTC datetime read from the cluster's own timestamps (so it is in the
cluster's time, which the sandbox scales) or None when the milestone was not (yet) observed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeTiming:
    """One node's way up: the instance launched, the Node registered, the Node turned Ready."""

    name: str
    os_family: str  # "bottlerocket" | "al2" | …, from the node's osImage
    instance_type: str | None
    launched_at: dt.datetime | None
    registered_at: dt.datetime | None
    ready_at: dt.datetime | None

    @property
    def launch_to_ready(self) -> float | None:
        if self.launched_at is None or self.ready_at is None:
            return None
        return (self.ready_at - self.launched_at).total_seconds()


@dataclass(frozen=True)
class PodTiming:
    """One displaced pod: evicted from its AL2 node, its replacement scheduled, then Ready.

    `replacement` names the pod that took its place (a new pod for a Deployment, the same name for
    a StatefulSet); None while nothing has replaced it yet."""

    namespace: str
    name: str
    workload: str  # "Deployment/shop/cart", "StatefulSet/data/pg", …
    evicted_at: dt.datetime | None
    replacement: str | None
    scheduled_at: dt.datetime | None
    ready_at: dt.datetime | None
    node: str | None  # where the replacement runs

    @property
    def evicted_to_ready(self) -> float | None:
        if self.evicted_at is None or self.ready_at is None:
            return None
        return (self.ready_at - self.evicted_at).total_seconds()
