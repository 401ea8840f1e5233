"""What a finished wave achieved: node readiness on Bottlerocket vs the AL2 baseline, how long each
displaced pod took to be Ready again, what is still pending — beside the case study's figures.

Pure over the timings the engine records (bot/domain/timings.py); `chart_png` draws the figures with
matplotlib's headless Agg backend for the wave's Slack thread.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.domain.timings import NodeTiming, PodTiming

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# The AWS/Snowflake case study's measured gains.
CASE_NODE_READY_FASTER_S = 5.0
CASE_IMAGE_CACHE_SAVED_S = 36.0
CASE_UNSCHEDULABLE_SOONER_S = 40.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


@dataclass(frozen=True, slots=True)
class Spread:
    count: int
    p50: float | None
    p90: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(len(values), percentile(values, 0.5), percentile(values, 0.9))

    def text(self) -> str:
        if self.count == 0 or self.p50 is None or self.p90 is None:
            return "no samples"
        return f"p50 {self.p50:.1f} s, p90 {self.p90:.1f} s (n={self.count})"


@dataclass(frozen=True, slots=True)
class Comparison:
    measure: str
    observed: float | None  # seconds gained (positive: Bottlerocket better)
    case_study: float
    detail: str  # how it was measured, or why it could not be

    def text(self) -> str:
        seen = "unknown" if self.observed is None else f"{self.observed:+.1f} s"
        return f"{self.measure}: {seen} (case study ~{self.case_study:.0f} s) — {self.detail}"


@dataclass(frozen=True)
class Results:
    wave_number: int
    wave_name: str
    bottlerocket_ready: Spread  # new Bottlerocket nodes, launch → Ready
    al2_ready: Spread  # the AL2 baseline, launch → Ready
    reschedule: Spread  # displaced pods, evicted → Ready
    waited_for_node: Spread  # of those, the pods that had to wait for a new node
    nodes_pending: tuple[str, ...]  # launched, not Ready yet
    pods_pending: tuple[str, ...]  # evicted, not Ready again yet
    comparisons: tuple[Comparison, ...]


def _ready_times(nodes: Sequence[NodeTiming]) -> list[float]:
    return [t for n in nodes if (t := n.launch_to_ready) is not None]


def results(
    wave_number: int,
    wave_name: str,
    nodes: Sequence[NodeTiming],
    pods: Sequence[PodTiming],
    *,
    al2_baseline: Sequence[NodeTiming] = (),
    al2_pod_baseline: Sequence[PodTiming] = (),
    new_node_wait: float = 10.0,
) -> Results:
    """`nodes`: the wave's new nodes (those whose os_family is not "bottlerocket" are ignored);
    `al2_baseline`: AL2 node launches to compare with; `al2_pod_baseline`: pods rescheduled onto AL2
    nodes, for the image-cache comparison. A pod "waited for a node" when its replacement was
    scheduled more than `new_node_wait` seconds after the eviction (it was unschedulable until a new
    node came up)."""
    bottlerocket = [n for n in nodes if n.os_family.lower() == "bottlerocket"]
    al2 = [n for n in al2_baseline if n.os_family.lower() == "al2"]
    br_spread = Spread.of(_ready_times(bottlerocket))
    al2_spread = Spread.of(_ready_times(al2))
    reschedule = [t for p in pods if (t := p.evicted_to_ready) is not None]
    waited = [
        t
        for p in pods
        if (t := p.evicted_to_ready) is not None
        and p.evicted_at is not None
        and p.scheduled_at is not None
        and (p.scheduled_at - p.evicted_at).total_seconds() > new_node_wait
    ]
    al2_waited = [
        t
        for p in al2_pod_baseline
        if (t := p.evicted_to_ready) is not None
        and p.evicted_at is not None
        and p.scheduled_at is not None
        and (p.scheduled_at - p.evicted_at).total_seconds() > new_node_wait
    ]
    al2_resched = Spread.of([t for p in al2_pod_baseline if (t := p.evicted_to_ready) is not None])
    resched = Spread.of(reschedule)
    waited_spread = Spread.of(waited)
    comparisons = (
        _gain(
            "Node readiness (launch → Ready, p50)",
            al2_spread,
            br_spread,
            CASE_NODE_READY_FASTER_S,
            "AL2 baseline p50 minus Bottlerocket p50",
            "no AL2 node launch recorded as a baseline"
            if al2_spread.count == 0
            else "no Bottlerocket node is Ready yet",
        ),
        _gain(
            "Pod reschedule (evicted → Ready, p50)",
            al2_resched,
            resched,
            CASE_IMAGE_CACHE_SAVED_S,
            "AL2 pod baseline p50 minus Bottlerocket p50; the case study credits image caching",
            "no AL2 pod reschedule recorded as a baseline"
            if al2_resched.count == 0
            else "no displaced pod is Ready yet",
        ),
        _gain(
            "Unschedulable pods (waited for a new node, p50)",
            Spread.of(al2_waited),
            waited_spread,
            CASE_UNSCHEDULABLE_SOONER_S,
            "AL2 baseline p50 minus Bottlerocket p50 for pods that waited for a node",
            "no AL2 baseline of pods that waited for a node"
            if not al2_waited
            else "no pod of this wave waited for a new node",
        ),
    )
    return Results(
        wave_number=wave_number,
        wave_name=wave_name,
        bottlerocket_ready=br_spread,
        al2_ready=al2_spread,
        reschedule=resched,
        waited_for_node=waited_spread,
        nodes_pending=tuple(sorted(n.name for n in bottlerocket if n.ready_at is None)),
        pods_pending=tuple(sorted(f"{p.namespace}/{p.name}" for p in pods if p.ready_at is None)),
        comparisons=comparisons,
    )


def _gain(measure: str, before: Spread, after: Spread, case: float, how: str, missing: str) -> Comparison:
    if before.p50 is None or after.p50 is None:
        return Comparison(measure, None, case, f"unknown: {missing}")
    return Comparison(measure, before.p50 - after.p50, case, how)


def chart_png(r: Results) -> bytes:
    """A PNG: p50/p90 of node readiness (AL2 vs Bottlerocket) and pod reschedule, in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    left, right = figure.subplots(1, 2)
    groups = [("AL2 node", r.al2_ready), ("Bottlerocket node", r.bottlerocket_ready)]
    _bars(left, groups, "Node launch → Ready (s)")
    _bars(right, [("pod evicted → Ready", r.reschedule), ("waited for node", r.waited_for_node)], "Pods (s)")
    figure.suptitle(f"Wave {r.wave_number} ({r.wave_name}): results")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bars(axes: Axes, groups: list[tuple[str, Spread]], title: str) -> None:
    width = 0.38
    for index, (_, spread) in enumerate(groups):
        p50 = spread.p50 or 0.0
        p90 = spread.p90 or 0.0
        axes.bar(index - width / 2, p50, width, color="#4c72b0", label="p50" if index == 0 else None)
        axes.bar(index + width / 2, p90, width, color="#dd8452", label="p90" if index == 0 else None)
        if spread.count == 0:
            axes.text(index, 0.5, "no data", ha="center")
    axes.set_xticks(range(len(groups)), [f"{g[0]}\n(n={g[1].count})" for g in groups])
    axes.set_title(title)
    axes.legend()
