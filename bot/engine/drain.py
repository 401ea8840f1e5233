"""Drain with `kubectl drain --ignore-daemonsets --delete-emptydir-data` semantics, concurrent across
a wave's nodes.

Planning is pure (`plan_node_drain`): the same filters as kubectl's drain helper
(k8s.io/kubectl/pkg/drain/filters.go), in its order, first refusal wins:

1. DaemonSet-managed pods are skipped ("ignoring DaemonSet-managed Pods") unless finished; a pod whose
   DaemonSet no longer exists is refused unless force.
2. Mirror (static) pods are skipped silently.
3. emptyDir is no obstacle (delete-emptydir-data): the pod is evicted, its data lost.
4. Pods without a controller are refused unless force — kubectl's sentence.

Then migratebot's own rule: a pod annotated karpenter.sh/do-not-disrupt: "true" is held — reported,
not evicted, and its node is not finished. Pods to evict are ordered as Karpenter does: everything
else before system-cluster-critical / system-node-critical pods.

Like kubectl, a node with any refused pod evicts nothing (it is cordoned, then reported refused).

Execution (`drain_nodes`): eviction through policy/v1; a PDB's 429 retried every `retry_interval`
(kubectl: 5 s) until the pod's timeout; a pod counts as gone at 404 or when its UID changed; up to
`max_parallel_nodes` nodes at once; never more evictions in flight per PDB than its
disruptionsAllowed (at least one, which probes); `should_stop` (pause) stops new evictions while
those in flight finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from bot.adapters.errors import AdapterError, EvictionBlocked, NotFound
from bot.adapters.kube import KubeAdapter
from bot.engine.inventory import Inventory
from bot.engine.pods import NodeInfo, PodInfo

# kubectl's messages (k8s.io/kubectl/pkg/drain/filters.go), so people recognise them.
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
MIRROR_SKIP = "mirror (static) pod: the kubelet owns it"
DO_NOT_DISRUPT_HOLD = (
    'annotated karpenter.sh/do-not-disrupt: "true": held, not evicted — remove the annotation '
    "or move the workload to let the node finish"
)


class Reason(StrEnum):
    DAEMONSET = "daemonset"
    MIRROR = "mirror"
    NO_CONTROLLER = "no-controller"
    DAEMONSET_MISSING = "daemonset-missing"
    DO_NOT_DISRUPT = "do-not-disrupt"


@dataclass(frozen=True)
class Decision:
    pod: PodInfo
    reason: Reason
    message: str


@dataclass(frozen=True)
class DrainPlan:
    node: str
    evict: tuple[PodInfo, ...]  # in eviction order: non-critical first
    skip: tuple[Decision, ...]
    refuse: tuple[Decision, ...]
    hold: tuple[Decision, ...]
    warnings: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return bool(self.refuse)

    def describe(self) -> str:
        return (
            f"node {self.node}: evict {len(self.evict)}, skip {len(self.skip)}, "
            f"refuse {len(self.refuse)}, hold {len(self.hold)}"
        )


def plan_node_drain(
    node: NodeInfo | str,
    pods: Iterable[PodInfo],
    force: bool = False,
    *,
    daemonsets: Collection[tuple[str, str]] | None = None,
) -> DrainPlan:
    """What draining `node` would do to `pods`, without touching anything.

    `daemonsets` (namespace, name) are the DaemonSets that exist; None assumes every referenced one
    does (kubectl GETs each; the inventory lists them once).
    """
    node_name = node if isinstance(node, str) else node.name
    evict: list[PodInfo] = []
    skip: list[Decision] = []
    refuse: list[Decision] = []
    hold: list[Decision] = []
    warnings: list[str] = []
    for pod in sorted(pods, key=lambda p: (p.namespace, p.name)):
        if pod.is_daemonset and not pod.finished:
            if daemonsets is not None and (pod.namespace, pod.controller_name) not in daemonsets:
                message = f'daemonsets.apps "{pod.controller_name}" not found'
                if not force:
                    refuse.append(Decision(pod, Reason.DAEMONSET_MISSING, message))
                    continue
                warnings.append(f"{message}: {pod.key}")
            else:
                skip.append(Decision(pod, Reason.DAEMONSET, DAEMONSET_WARNING))
                continue
        if pod.is_mirror:
            skip.append(Decision(pod, Reason.MIRROR, MIRROR_SKIP))
            continue
        if pod.has_local_storage and not pod.finished:
            warnings.append(f"{LOCAL_STORAGE_WARNING}: {pod.key}")
        if not pod.controller_kind and not pod.finished:
            if not force:
                refuse.append(Decision(pod, Reason.NO_CONTROLLER, UNMANAGED_FATAL))
                continue
            warnings.append(f"{UNMANAGED_WARNING}: {pod.key}")
        if pod.do_not_disrupt and not pod.finished:
            hold.append(Decision(pod, Reason.DO_NOT_DISRUPT, f"pod {pod.key} is {DO_NOT_DISRUPT_HOLD}"))
            continue
        evict.append(pod)
    # Karpenter's order: non-critical pods first, system-*-critical last (stable within each group).
    evict.sort(key=lambda p: p.critical)
    return DrainPlan(node_name, tuple(evict), tuple(skip), tuple(refuse), tuple(hold), tuple(warnings))


def plan_drain(inventory: Inventory, nodes: Iterable[str], force: bool = False) -> list[DrainPlan]:
    """Plans for several nodes of one inventory (what `preview` shows); unknown nodes raise KeyError."""
    return [
        plan_node_drain(inventory.nodes[n], inventory.pods_on(n), force, daemonsets=inventory.daemonsets)
        for n in nodes
    ]


# ---- execution ----------------------------------------------------------------------------------


class EventKind(StrEnum):
    NODE_STARTED = "node-started"
    NODE_CORDONED = "node-cordoned"
    NODE_REFUSED = "node-refused"
    POD_HELD = "pod-held"
    POD_EVICTED = "pod-evicted"  # the eviction was accepted
    EVICTION_BLOCKED = "eviction-blocked"  # a PDB said 429; retrying
    POD_GONE = "pod-gone"
    POD_FAILED = "pod-failed"
    POD_TIMED_OUT = "pod-timed-out"
    NODE_FINISHED = "node-finished"


@dataclass(frozen=True)
class DrainEvent:
    kind: EventKind
    node: str
    pod: str = ""
    message: str = ""


DrainEvents = Callable[[DrainEvent], None]


def ignore_events(event: DrainEvent) -> None:
    return None


class PodOutcome(StrEnum):
    GONE = "gone"
    TIMED_OUT = "timed-out"
    FAILED = "failed"
    NOT_STARTED = "not-started"  # stopped (paused) before its eviction was sent


class NodeOutcome(StrEnum):
    DRAINED = "drained"
    HELD = "held"  # everything evictable is gone; do-not-disrupt pods remain
    REFUSED = "refused"
    INCOMPLETE = "incomplete"  # some pod timed out, failed or was not started


@dataclass(frozen=True)
class PodResult:
    pod: PodInfo
    outcome: PodOutcome
    message: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class NodeResult:
    plan: DrainPlan
    outcome: NodeOutcome
    pods: tuple[PodResult, ...]
    message: str = ""

    @property
    def node(self) -> str:
        return self.plan.node

    def pods_with(self, outcome: PodOutcome) -> list[PodInfo]:
        return [r.pod for r in self.pods if r.outcome == outcome]


@dataclass(frozen=True)
class DrainSettings:
    max_parallel_nodes: int = 1
    max_parallel_evictions: int = 16  # per node
    retry_interval: float = 5.0  # after a PDB's 429, as kubectl
    poll_interval: float = 1.0  # while waiting for an evicted pod to be gone
    pod_timeout: float = 300.0
    wave_timeout: float = 3600.0
    grace_period: int | None = None
    cordon: bool = True


@dataclass
class _BudgetGates:
    """Per-PDB semaphores: in-flight evictions (including a blocked one waiting out its 429) per PDB
    never exceed max(1, disruptionsAllowed)."""

    allowances: Mapping[str, int]
    _gates: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def gate(self, key: str) -> threading.BoundedSemaphore:
        with self._lock:
            if key not in self._gates:
                self._gates[key] = threading.BoundedSemaphore(max(1, self.allowances.get(key, 1)))
            return self._gates[key]


class Drainer:
    """Runs drain plans against one cluster. `should_stop` is polled before every new eviction."""

    def __init__(
        self,
        kube: KubeAdapter,
        settings: DrainSettings | None = None,
        *,
        events: DrainEvents = ignore_events,
        budgets: Mapping[str, int] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.kube = kube
        self.settings = settings or DrainSettings()
        self.events = events
        self._gates = _BudgetGates(budgets or {})
        self.should_stop = should_stop
        self._monotonic = time.monotonic  # the Event and semaphore waits below run on this clock
        self._wake = threading.Event()

    def _sleep(self, seconds: float) -> None:
        # Event.wait may wake a hair early: sleep until the monotonic clock has really moved on.
        until = self._monotonic() + max(0.0, seconds)
        while (left := until - self._monotonic()) > 0:
            self._wake.wait(left)

    def drain(self, plans: Sequence[DrainPlan]) -> list[NodeResult]:
        """Drain every planned node, `max_parallel_nodes` at a time; results in the plans' order."""
        s = self.settings
        wave_deadline = self._monotonic() + s.wave_timeout
        with ThreadPoolExecutor(
            max_workers=max(1, s.max_parallel_nodes), thread_name_prefix="drain"
        ) as nodes:
            futures = [nodes.submit(self._drain_node, plan, wave_deadline) for plan in plans]
            return [f.result() for f in futures]

    def _drain_node(self, plan: DrainPlan, wave_deadline: float) -> NodeResult:
        emit = self.events
        emit(DrainEvent(EventKind.NODE_STARTED, plan.node, message=plan.describe()))
        if self.settings.cordon:
            try:
                self.kube.cordon(plan.node)
                emit(DrainEvent(EventKind.NODE_CORDONED, plan.node))
            except AdapterError as e:
                return NodeResult(plan, NodeOutcome.INCOMPLETE, (), f"cordon failed: {e}")
        if plan.refused:
            listed = ", ".join(d.pod.key for d in plan.refuse)
            message = "; ".join(sorted({d.message for d in plan.refuse})) + f": {listed}"
            emit(DrainEvent(EventKind.NODE_REFUSED, plan.node, message=message))
            return NodeResult(plan, NodeOutcome.REFUSED, (), message)
        for held in plan.hold:
            emit(DrainEvent(EventKind.POD_HELD, plan.node, held.pod.key, held.message))
        # Each node has its own eviction workers (kubectl evicts a node's pods concurrently too): a pod
        # waiting for its PDB's turn occupies a worker of its own node only, never another node's.
        workers = max(1, min(self.settings.max_parallel_evictions, len(plan.evict)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evict") as pool:
            results = self._evict_in_order(plan, pool, wave_deadline)
        if any(r.outcome != PodOutcome.GONE for r in results):
            outcome = NodeOutcome.INCOMPLETE
        elif plan.hold:
            outcome = NodeOutcome.HELD
        else:
            outcome = NodeOutcome.DRAINED
        emit(DrainEvent(EventKind.NODE_FINISHED, plan.node, message=outcome.value))
        return NodeResult(plan, outcome, tuple(results))

    def _evict_in_order(
        self, plan: DrainPlan, pool: ThreadPoolExecutor, wave_deadline: float
    ) -> list[PodResult]:
        ordinary = [p for p in plan.evict if not p.critical]
        critical = [p for p in plan.evict if p.critical]
        results = [
            f.result() for f in [pool.submit(self._evict_pod, plan.node, p, wave_deadline) for p in ordinary]
        ]
        if any(r.outcome != PodOutcome.GONE for r in results):
            # Critical pods (DNS, CNI helpers) keep serving until every other pod has left.
            return results + [
                PodResult(p, PodOutcome.NOT_STARTED, "earlier pods did not leave") for p in critical
            ]
        return results + [
            f.result() for f in [pool.submit(self._evict_pod, plan.node, p, wave_deadline) for p in critical]
        ]

    def _evict_pod(self, node: str, pod: PodInfo, wave_deadline: float) -> PodResult:
        s = self.settings
        deadline = min(self._monotonic() + s.pod_timeout, wave_deadline)
        if self.should_stop():
            return PodResult(pod, PodOutcome.NOT_STARTED, "stopped before eviction")
        if self._monotonic() >= deadline:
            return self._timed_out(node, pod, "the wave's time ran out before its eviction", 0)
        gates = [self._gates.gate(k) for k in sorted(pod.pdbs)]
        acquired: list[threading.BoundedSemaphore] = []
        attempts = 0
        try:
            for gate in gates:
                if not gate.acquire(timeout=max(0.0, deadline - self._monotonic())):
                    return self._timed_out(node, pod, "waiting for its disruption budget's turn", attempts)
                acquired.append(gate)
            while True:
                attempts += 1
                try:
                    self.kube.evict(pod.namespace, pod.name, grace_period=s.grace_period)
                except NotFound:
                    break  # already gone
                except EvictionBlocked as e:
                    self.events(DrainEvent(EventKind.EVICTION_BLOCKED, node, pod.key, str(e)))
                    # As kubectl: retry until the deadline, then report (never before it).
                    now = self._monotonic()
                    if now >= deadline:
                        return self._timed_out(node, pod, f"still blocked: {e}", attempts)
                    self._sleep(min(s.retry_interval, deadline - now))
                    continue
                except AdapterError as e:
                    self.events(DrainEvent(EventKind.POD_FAILED, node, pod.key, str(e)))
                    return PodResult(pod, PodOutcome.FAILED, str(e), attempts)
                self.events(DrainEvent(EventKind.POD_EVICTED, node, pod.key))
                break
        finally:
            for gate in acquired:
                gate.release()
        return self._wait_gone(node, pod, deadline, attempts)

    def _wait_gone(self, node: str, pod: PodInfo, deadline: float, attempts: int) -> PodResult:
        while True:
            error = ""
            try:
                current = self.kube.get_pod(pod.namespace, pod.name)
            except NotFound:
                break
            except AdapterError as e:
                error = str(e)
            else:
                if str((current.get("metadata") or {}).get("uid", "")) != pod.uid:
                    break  # a new pod of the same name (a StatefulSet's) is not ours
            now = self._monotonic()
            if now >= deadline:
                return self._timed_out(node, pod, error or "evicted but still terminating", attempts)
            self._sleep(min(self.settings.poll_interval, deadline - now))
        self.events(DrainEvent(EventKind.POD_GONE, node, pod.key))
        return PodResult(pod, PodOutcome.GONE, "", attempts)

    def _timed_out(self, node: str, pod: PodInfo, why: str, attempts: int) -> PodResult:
        message = f"pod {pod.key} did not leave node {node} in time: {why}"
        self.events(DrainEvent(EventKind.POD_TIMED_OUT, node, pod.key, message))
        return PodResult(pod, PodOutcome.TIMED_OUT, message, attempts)


def drain_nodes(
    kube: KubeAdapter,
    plans: Sequence[DrainPlan],
    settings: DrainSettings | None = None,
    *,
    events: DrainEvents = ignore_events,
    budgets: Mapping[str, int] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[NodeResult]:
    return Drainer(kube, settings, events=events, budgets=budgets, should_stop=should_stop).drain(plans)
