"""The timing model's lower bound on a drain wave's makespan: no orchestrator can move the wave faster
in the emulated world, whatever it does. Pure: the model's constants and the wave as it was at start.

The sandbox's timing model is `sandbox.controllers.timing.Timing` (bot/domain/timings.py only holds
what the engine measured); its constants, in emulated seconds, are what the bound is made of:

- The earliest a displaced pod's replacement can be Ready, from the wave's start, is the best of
  where it may run: on new Bottlerocket capacity, Karpenter's batching window + NodeClaim → Node
  Ready (Bottlerocket) + the image pull on a fresh node + container start (`karpenter_batch +
  karpenter_node_ready(bottlerocket) + image_pull_bottlerocket + pod_start`); on a schedulable node
  outside the wave that already holds its image, `pod_start`; on one that does not, that node's
  image pull (`image_pull(os)`) + `pod_start`. Room on those nodes is assumed.
- PodDisruptionBudgets: a PDB allowing `a` disruptions with `k` of its pods on the wave's nodes needs
  `ceil(k / a)` rounds; a round ends when its replacements are Ready (only then does the budget allow
  the next eviction), and a later round's replacement is Ready no sooner than `pod_start` after its
  eviction (a Ready node with the image already pulled).
- A node counts as drained once its evicted pods are gone: `min(terminationGracePeriodSeconds,
  termination_grace_cap)` after the last eviction.
- `max_parallel_nodes`: the wave's nodes go at most that many at a time, each taking at least its
  pods' termination: `ceil(nodes / max_parallel) * grace`.

The bound is the largest of these chains. Ignored, each of which only makes the real makespan longer:
node capacity (every replacement is assumed to fit), Karpenter launching several batches, the
scheduler's and controllers' own passes, API latency, and the engine's steps before the first
eviction (NodePool, cordons).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class TimingModel(Protocol):
    karpenter_batch: float
    image_pull_bottlerocket: float
    pod_start: float
    termination_grace_cap: float

    def karpenter_node_ready(self, bottlerocket: bool) -> float: ...

    def image_pull(self, bottlerocket: bool) -> float: ...


def earliest_ready(timing: TimingModel, elsewhere: Elsewhere) -> float:
    """The soonest after the wave's start a replacement can be Ready (see the module's doc)."""
    launch = (
        timing.karpenter_batch
        + timing.karpenter_node_ready(True)
        + timing.image_pull_bottlerocket
        + timing.pod_start
    )
    if elsewhere is Elsewhere.CACHED:
        return min(launch, timing.pod_start)
    if elsewhere is Elsewhere.NOWHERE:
        return launch
    return min(launch, timing.image_pull(elsewhere is Elsewhere.BOTTLEROCKET) + timing.pod_start)


class Elsewhere(enum.StrEnum):
    """Where else than new Bottlerocket capacity a displaced pod's replacement could run, at best."""

    NOWHERE = "nowhere"  # no schedulable node outside the wave takes it
    CACHED = "cached"  # a node outside the wave takes it and already holds its image
    AL2 = "al2"  # an AL2 node outside the wave takes it, but must pull the image
    BOTTLEROCKET = "bottlerocket"  # a Bottlerocket node outside the wave, pulling the image


@dataclass(frozen=True)
class EvictedPod:
    """A pod the wave's drain evicts: which PDBs gate it and where else its replacement could run."""

    key: str
    pdbs: tuple[str, ...]
    elsewhere: Elsewhere
    grace_seconds: float  # terminationGracePeriodSeconds (30 when unset)


@dataclass(frozen=True)
class Chain:
    """One PDB's (or one unbudgeted pod's) way through the wave."""

    name: str
    pods: int
    allowed: int
    rounds: int
    first_round: float
    seconds: float


@dataclass(frozen=True)
class Bound:
    seconds: float
    first_round_new_capacity: float
    parallel_floor: float
    longest: Chain | None
    pods: int = 0
    chains: tuple[Chain, ...] = field(default=())

    def explain(self) -> str:
        if self.longest is None:
            return f"nothing to evict: {self.parallel_floor:.0f} s of terminations"
        c = self.longest
        return (
            f"{c.name}: {c.pods} pod(s) on the wave's nodes, {c.allowed} disruption(s) allowed at a time → "
            f"{c.rounds} round(s); first round ≥ {c.first_round:.0f} s, each later one ≥ pod start, "
            f"then the last evicted pod's termination: {c.seconds:.0f} s"
        )


def lower_bound(
    timing: TimingModel,
    pods: Sequence[EvictedPod],
    allowed: Mapping[str, int],
    nodes: int,
    max_parallel_nodes: int,
) -> Bound:
    """The makespan no drain of this wave can beat, in emulated seconds (see the module's doc)."""
    launch = earliest_ready(timing, Elsewhere.NOWHERE)
    start = timing.pod_start
    groups: dict[str, list[EvictedPod]] = {}
    for pod in pods:
        for pdb in pod.pdbs or (f"pod {pod.key} (no PDB)",):
            groups.setdefault(pdb, []).append(pod)
    chains = []
    for name, members in sorted(groups.items()):
        budget = allowed.get(name, len(members))
        if budget <= 0:
            raise ValueError(f"PDB {name} allows no disruption: the wave can't finish, there is no bound")
        rounds = math.ceil(len(members) / budget)
        soonest = [earliest_ready(timing, p.elsewhere) for p in members]
        # The first round ends no sooner than its fastest pod could be Ready; a later round's
        # replacement may find a Ready node that already pulled the image (pod start only).
        first = min(soonest)
        grace = min(min(p.grace_seconds, timing.termination_grace_cap) for p in members)
        if rounds == 1:
            seconds = max(first, grace)
        else:
            last_eviction = first + (rounds - 2) * start
            seconds = last_eviction + max(start, grace)
        seconds = max(seconds, max(soonest))  # and every pod's own replacement must be Ready
        chains.append(Chain(name, len(members), budget, rounds, first, seconds))
    cap = timing.termination_grace_cap
    floor_grace = min((min(p.grace_seconds, cap) for p in pods), default=cap)
    parallel_floor = math.ceil(nodes / max(1, max_parallel_nodes)) * floor_grace if pods else 0.0
    longest = max(chains, key=lambda c: c.seconds, default=None)
    seconds = max(parallel_floor, longest.seconds if longest else 0.0)
    return Bound(seconds, launch, parallel_floor, longest, len(pods), tuple(chains))
