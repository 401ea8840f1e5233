"""Reports for a wave: gather the facts once through the adapters, then the pure reports.

    readiness_report(plan, 1, kube, aws)   → bot.reports.readiness.Readiness
    security_report(plan, 1, kube, aws)    → bot.reports.security.SecurityReport
    wave_reports(plan, 1, kube, aws)       → both, from one gathering
    results_report(plan, 1, nodes, pods, al2_baseline=…) → bot.reports.results.Results
    results_chart(results)                 → PNG bytes

Waves are numbered from 1 in plan order within their cluster (as `register_plan` numbers them).

`ReportSource` is what the Slack side holds: the plan's clusters reached through their adapters
(KUBECONFIG's context per cluster, AWS through boto3's chain), opened once and kept. Its methods
block (the cluster, AWS, the database): callers on an event loop run them in a worker thread.
Every failure to read the cluster or AWS comes out as `ReportFailed` carrying the adapter's message.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.adapters.aws import AwsAdapter
from bot.adapters.errors import AdapterError
from bot.adapters.kube import KubeAdapter, parse_time
from bot.domain.errors import DomainError
from bot.domain.timings import NodeTiming, PodTiming
from bot.domain.waves import WaveState
from bot.engine.inventory import Inventory
from bot.engine.pods import NodeInfo, NodeOwnerKind, OsFamily, node_from_json
from bot.engine.selection import wave_nodes
from bot.plan.models import Cluster, Plan, Target, Wave
from bot.reports.facts import AwsFacts, ClusterFacts, gather_aws, gather_cluster
from bot.reports.readiness import Readiness, readiness
from bot.reports.results import Results, chart_png, results
from bot.reports.security import SecurityReport, bottlerocket_nodes, security
from bot.reports.snapshot import ReadinessSnapshot, snapshot
from storage.repositories import Repositories

_T = TypeVar("_T")
log = logging.getLogger(__name__)


class WaveStateView(Protocol):
    """What the source needs of a registered wave (storage's WaveView has it)."""

    @property
    def index(self) -> int: ...

    @property
    def state(self) -> WaveState: ...


class RegisteredWave(Protocol):
    """A wave as the database registered it: its cluster and its number there (storage's WaveView)."""

    @property
    def cluster(self) -> str: ...

    @property
    def index(self) -> int: ...


class UnknownWave(DomainError, LookupError):
    """A wave number (or cluster) the plan doesn't have."""


@dataclass(frozen=True)
class WaveRef:
    cluster: Cluster
    number: int
    wave: Wave


def resolve_wave(plan: Plan, number: int, cluster: str | None = None) -> WaveRef:
    """Wave `number` (from 1) of `cluster` (default: the plan's first cluster)."""
    if cluster is None:
        chosen = plan.clusters[0]
    else:
        try:
            chosen = plan.cluster(cluster)
        except LookupError as e:
            raise UnknownWave(str(e)) from e
    waves = plan.waves_for(chosen.name)
    if not 1 <= number <= len(waves):
        listed = ", ".join(f"{i} {w.name}" for i, w in enumerate(waves, start=1))
        raise UnknownWave(
            f"wave {number}: cluster {chosen.name} has {len(waves)} wave(s) in the plan ({listed}) — "
            f"use --wave 1 to {len(waves)}"
        )
    return WaveRef(chosen, number, waves[number - 1])


def open_adapters(cluster: Cluster, kubeconfig: str | None = None) -> tuple[KubeAdapter, AwsAdapter]:
    """The cluster's adapters: its context in KUBECONFIG (or `kubeconfig`), AWS in its region through
    boto3's own chain (AWS_ENDPOINT_URL points it at the sandbox)."""
    kube = KubeAdapter.from_kubeconfig(kubeconfig, cluster.kube_context)
    return kube, AwsAdapter(cluster.region)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class _AwsScope:
    instance_ids: tuple[str, ...]
    node_groups: tuple[str, ...]


def _aws_scope(ref: WaveRef, target: Target, inventory: Inventory, *, instances: bool) -> _AwsScope:
    nodes = wave_nodes(ref.wave, inventory.nodes.values(), inventory.pods_by_node)
    groups = tuple(sorted({n.owner_name for n in nodes if n.owner_kind is NodeOwnerKind.NODE_GROUP}))
    if not instances:
        return _AwsScope((), groups)
    replacing = bottlerocket_nodes(ref.wave, target, inventory)
    return _AwsScope(tuple(n.instance_id for n in [*nodes, *replacing]), groups)


def _gather(
    plan: Plan,
    ref: WaveRef,
    kube: KubeAdapter,
    aws: AwsAdapter | None,
    *,
    pods: bool,
    security: bool,
    facts: ClusterFacts | None,
) -> tuple[ClusterFacts, AwsFacts | None]:
    """The cluster's facts and the wave's AWS facts. The AWS reads start as soon as the nodes are
    listed and run while the pods are listed: they need only the wave's nodes (unless the wave
    selects by namespace, which takes the pods). The inventory then keeps only the wave's nodes'
    pods: the reports read no other (the facts serve this wave's reports only)."""

    def read_aws(scope: _AwsScope) -> AwsFacts | None:
        if aws is None:
            return None
        return gather_aws(
            aws,
            scope.instance_ids,
            cluster=ref.cluster.name,
            node_groups=scope.node_groups,
            findings=security,
            iam=security,
        )

    if facts is not None:
        return facts, read_aws(_aws_scope(ref, plan.target, facts.inventory, instances=security))
    early = not ref.wave.selector.namespaces
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-aws") as pool:
        started: list[Future[AwsFacts | None]] = []

        def on_nodes(nodes: list[NodeInfo]) -> None:
            if early and not started:
                inventory = Inventory.from_records(nodes, (), (), frozenset())
                started.append(
                    pool.submit(read_aws, _aws_scope(ref, plan.target, inventory, instances=security))
                )

        def wave_node_names(nodes: list[NodeInfo]) -> frozenset[str] | None:
            # The reports read pods only on the wave's nodes; a namespaces selector needs them all to
            # pick the nodes.
            return frozenset(n.name for n in wave_nodes(ref.wave, nodes)) if early else None

        gathered = gather_cluster(
            kube, now=_now(), pods=pods or not early, on_nodes=on_nodes, keep_pods=wave_node_names
        )
        if started:
            return gathered, started[0].result()
    return gathered, read_aws(_aws_scope(ref, plan.target, gathered.inventory, instances=security))


def readiness_report(
    plan: Plan,
    number: int,
    kube: KubeAdapter,
    aws: AwsAdapter | None,
    *,
    cluster: str | None = None,
    facts: ClusterFacts | None = None,
) -> Readiness:
    """Wave `number`'s readiness. `aws` None leaves the launch templates' user data unread (said so
    in the report). `facts` given: no cluster read."""
    ref = resolve_wave(plan, number, cluster)
    facts, aws_facts = _gather(plan, ref, kube, aws, pods=True, security=False, facts=facts)
    return readiness(ref.wave, number, plan.target, facts, aws_facts, cluster=ref.cluster.name)


def security_report(
    plan: Plan,
    number: int,
    kube: KubeAdapter,
    aws: AwsAdapter,
    *,
    cluster: str | None = None,
    facts: ClusterFacts | None = None,
) -> SecurityReport:
    """Wave `number`'s AL2 nodes against the Bottlerocket nodes that replace them (no pod list)."""
    ref = resolve_wave(plan, number, cluster)
    facts, aws_facts = _gather(plan, ref, kube, aws, pods=False, security=True, facts=facts)
    return security(ref.wave, number, plan.target, facts, aws_facts or AwsFacts(), cluster=ref.cluster.name)


def wave_reports(
    plan: Plan, number: int, kube: KubeAdapter, aws: AwsAdapter, *, cluster: str | None = None
) -> tuple[Readiness, SecurityReport]:
    """Both reports from one gathering: the cluster once, AWS once (overlapping the pod list)."""
    ref = resolve_wave(plan, number, cluster)
    facts, aws_facts = _gather(plan, ref, kube, aws, pods=True, security=True, facts=None)
    name = ref.cluster.name
    return (
        readiness(ref.wave, number, plan.target, facts, aws_facts, cluster=name),
        security(ref.wave, number, plan.target, facts, aws_facts or AwsFacts(), cluster=name),
    )


def results_report(
    plan: Plan,
    number: int,
    nodes: Sequence[NodeTiming],
    pods: Sequence[PodTiming],
    *,
    al2_baseline: Sequence[NodeTiming] = (),
    al2_pod_baseline: Sequence[PodTiming] = (),
    cluster: str | None = None,
) -> Results:
    """A finished wave's figures from the timings the engine recorded."""
    ref = resolve_wave(plan, number, cluster)
    return results(
        number, ref.wave.name, nodes, pods, al2_baseline=al2_baseline, al2_pod_baseline=al2_pod_baseline
    )


def results_chart(report: Results) -> bytes:
    """The results as a PNG, for the wave's Slack thread."""
    return chart_png(report)


# ---- for the Slack side ------------------------------------------------------------------------


class ReportFailed(DomainError):
    """The cluster or AWS could not be read for a report; the message says what and why."""


@dataclass(frozen=True)
class WaveReports:
    readiness: Readiness
    security: SecurityReport


# Waves the "next" wave skips: nothing is left to move in them.
_DONE = frozenset({WaveState.COMPLETED, WaveState.ROLLED_BACK, WaveState.ABORTED})

Opener = Callable[[Cluster], tuple[KubeAdapter, AwsAdapter]]


class ReportSource:
    """The reports of the plan's waves, read from each cluster (its `kube_context` in KUBECONFIG) and
    AWS (boto3's chain: AWS_ENDPOINT_URL, credentials, region from the plan).

    `plan` is called for the plan as it reads now; `waves(cluster)` lists the registered waves and
    their states (to pick the wave in flight when none is named); `timings(wave_id)` gives the
    node and pod timings the engine recorded for a wave. Adapters are opened on first use, one pair
    per cluster, and kept: a report costs the reads, never a new connection pool."""

    def __init__(
        self,
        plan: Callable[[], Plan],
        *,
        waves: Callable[[str], Sequence[WaveStateView]] | None = None,
        timings: Callable[[int], tuple[Sequence[NodeTiming], Sequence[PodTiming]]] | None = None,
        kubeconfig: str | None = None,
        opener: Opener | None = None,
    ) -> None:
        self._plan = plan
        self._waves = waves
        self._timings = timings
        self._open: Opener = opener or (lambda cluster: open_adapters(cluster, kubeconfig))
        self._lock = threading.Lock()
        self._adapters: dict[str, tuple[KubeAdapter, AwsAdapter]] = {}

    @classmethod
    def over(
        cls, plan: Callable[[], Plan], repositories: Repositories, *, kubeconfig: str | None = None
    ) -> ReportSource:
        """The source the bot serves: waves and timings from migratebot's database."""
        timings = repositories.timings
        return cls(
            plan,
            waves=repositories.migrations.waves,
            timings=lambda wave_id: (timings.nodes(wave_id), timings.pods(wave_id)),
            kubeconfig=kubeconfig,
        )

    def close(self) -> None:
        with self._lock:
            adapters, self._adapters = self._adapters, {}
        for kube, _ in adapters.values():
            kube.close()

    # ---- which wave ------------------------------------------------------------------------------

    def wave(self, cluster: str | None, wave: str | None) -> WaveRef:
        """The wave named by `wave` — its number from 1 or its name in the plan — or, with None, the
        wave in flight or next to request. UnknownWave says which waves there are."""
        plan = self._plan()
        ref = resolve_wave(plan, 1, cluster)  # the cluster exists (UnknownWave names the others)
        waves = plan.waves_for(ref.cluster.name)
        listed = ", ".join(f"{i} ({w.name})" for i, w in enumerate(waves, start=1))
        if wave is None:
            return resolve_wave(plan, self._current(ref.cluster.name, len(waves)), ref.cluster.name)
        if wave.isascii() and wave.isdigit():
            number = int(wave)
            if 1 <= number <= len(waves):
                return resolve_wave(plan, number, ref.cluster.name)
            raise UnknownWave(
                f"there is no wave {number} in cluster {ref.cluster.name}'s plan: it has {len(waves)} "
                f"wave(s), {listed} — ask for one of those by number or name"
            )
        for number, candidate in enumerate(waves, start=1):
            if candidate.name == wave:
                return resolve_wave(plan, number, ref.cluster.name)
        raise UnknownWave(
            f"there is no wave named {wave!r} in cluster {ref.cluster.name}'s plan: it has {listed} — "
            "ask for one of those by number or name"
        )

    def _current(self, cluster: str, count: int) -> int:
        if self._waves is None:
            return 1
        for wave in self._waves(cluster):
            if wave.state not in _DONE and 1 <= wave.index <= count:
                return wave.index
        return count

    # ---- the reports -------------------------------------------------------------------------------

    def reports(self, ref: WaveRef) -> WaveReports:
        """Readiness and security from one gathering."""
        kube, aws = self._adapters_of(ref.cluster)
        ready, secure = self._reading(
            ref, lambda: wave_reports(self._plan(), ref.number, kube, aws, cluster=ref.cluster.name)
        )
        return WaveReports(ready, secure)

    def readiness(self, ref: WaveRef) -> Readiness:
        kube, aws = self._adapters_of(ref.cluster)
        return self._reading(
            ref, lambda: readiness_report(self._plan(), ref.number, kube, aws, cluster=ref.cluster.name)
        )

    def snapshot(self, wave: RegisteredWave) -> ReadinessSnapshot:
        """A registered wave's readiness as it is now, as an approval is bound to it."""
        return snapshot(self.readiness(resolve_wave(self._plan(), wave.index, wave.cluster)))

    def security(self, ref: WaveRef) -> SecurityReport:
        kube, aws = self._adapters_of(ref.cluster)
        return self._reading(
            ref, lambda: security_report(self._plan(), ref.number, kube, aws, cluster=ref.cluster.name)
        )

    def results(self, ref: WaveRef, wave_id: int) -> Results:
        """A finished wave's results: the timings the engine recorded for it, beside the launch → Ready
        times of the AL2 nodes Karpenter launched that the cluster still runs (the AL2 baseline)."""
        nodes, pods = self._timings(wave_id) if self._timings is not None else ((), ())
        try:
            kube, _ = self._adapters_of(ref.cluster)
            baseline = self._reading(ref, lambda: al2_baseline(kube))
        except ReportFailed as error:
            # The wave's own figures stand without it; the comparison says the baseline is unknown.
            log.warning("no AL2 baseline for the results of %s: %s", ref.wave.name, error)
            baseline = []
        recorded_al2 = [n for n in nodes if n.os_family.lower() == "al2"]
        return results_report(
            self._plan(),
            ref.number,
            nodes,
            pods,
            al2_baseline=[*recorded_al2, *baseline],
            cluster=ref.cluster.name,
        )

    def _adapters_of(self, cluster: Cluster) -> tuple[KubeAdapter, AwsAdapter]:
        with self._lock:
            opened = self._adapters.get(cluster.name)
            if opened is None:
                try:
                    opened = self._open(cluster)
                except AdapterError as error:  # KubeConfigError names the file, context and fix
                    raise ReportFailed(f"cluster {cluster.name} can't be reached: {error}") from error
                self._adapters[cluster.name] = opened
            return opened

    def _reading(self, ref: WaveRef, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except AdapterError as error:
            raise ReportFailed(
                f"could not read cluster {ref.cluster.name} or its AWS account: {error}"
            ) from error


def al2_baseline(kube: KubeAdapter) -> list[NodeTiming]:
    """Launch → Ready of the AL2 nodes Karpenter launched (their NodeClaim's Launched condition, the
    Node's Ready transition): one list of nodes, one of NodeClaims."""
    launched: dict[str, dt.datetime] = {}
    for claim in kube.list_nodeclaims():
        node = (claim.get("status") or {}).get("nodeName")
        at = _condition_time(claim, "Launched") or parse_time(
            (claim.get("metadata") or {}).get("creationTimestamp")
        )
        if node and at is not None:
            launched[str(node)] = at
    out: list[NodeTiming] = []
    for obj in kube.list_nodes():
        info = node_from_json(obj)
        if info.os_family is not OsFamily.AL2 or info.owner_kind is not NodeOwnerKind.KARPENTER:
            continue
        out.append(
            NodeTiming(
                info.name,
                "al2",
                info.instance_type or None,
                launched.get(info.name),
                info.created,
                _condition_time(obj, "Ready"),
            )
        )
    return out


def _condition_time(obj: dict[str, object], kind: str) -> dt.datetime | None:
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for condition in conditions or ():
        if (
            isinstance(condition, dict)
            and condition.get("type") == kind
            and condition.get("status") == "True"
        ):
            return parse_time(condition.get("lastTransitionTime"))
    return None
