"""Reports for a wave: gather the facts once through the adapters, then the pure reports.

    readiness_report(plan, 1, kube, aws)   → bot.reports.readiness.Readiness
    security_report(plan, 1, kube, aws)    → bot.reports.security.SecurityReport
    wave_reports(plan, 1, kube, aws)       → both, from one gathering
    results_report(plan, 1, nodes, pods, al2_baseline=…) → bot.reports.results.Results
    results_chart(results)                 → PNG bytes

Waves are numbered from 1 in plan order within their cluster (as `register_plan` numbers them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.domain.errors import DomainError
from bot.domain.timings import NodeTiming, PodTiming
from bot.engine.inventory import Inventory
from bot.engine.pods import NodeInfo, NodeOwnerKind
from bot.engine.selection import wave_nodes
from bot.plan.models import Cluster, Plan, Target, Wave
from bot.reports.facts import AwsFacts, ClusterFacts, gather_aws, gather_cluster
from bot.reports.readiness import Readiness, readiness
from bot.reports.results import Results, chart_png, results
from bot.reports.security import SecurityReport, bottlerocket_nodes, security


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
    selects by namespace, which takes the pods)."""

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

        gathered = gather_cluster(kube, now=_now(), pods=pods or not early, on_nodes=on_nodes)
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
