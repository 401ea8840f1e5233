"""Is a wave ready to go? A pure verdict over gathered facts: READY, READY WITH WARNINGS or BLOCKED,
every reason naming the object, what is wrong and the fix.

What it looks at: the wave's AL2 nodes and their pods by workload; stateless vs stateful (the case
study moved stateless first); PDB headroom now; pods no controller recreates; karpenter.sh/
do-not-disrupt; DaemonSets that must also run on Bottlerocket; the Bottlerocket NodePool's limits
against the wave's requests; the Bottlerocket compatibility scan of each workload
(compatibility.py); shell user data behind the wave's nodes; and eksup's upgrade-readiness checks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.quantities import byte_count, cpu_millis
from bot.engine.pods import NodeInfo, PodInfo
from bot.engine.selection import wave_nodes
from bot.plan.models import Strategy, Target, Wave
from bot.reports.compatibility import is_shell_user_data, scan
from bot.reports.facts import (
    AwsFacts,
    ClusterFacts,
    PodSpecFacts,
    WorkloadFacts,
    WorkloadKey,
    workload_key,
    workload_text,
)
from bot.reports.reasons import Reason, Severity, ordered

# Kinds whose replica count says how many pods should run; a DaemonSet's follows the nodes.
_REPLICATED = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})


class Verdict(StrEnum):
    READY = "READY"
    READY_WITH_WARNINGS = "READY WITH WARNINGS"
    BLOCKED = "BLOCKED"


def verdict_of(reasons: tuple[Reason, ...]) -> Verdict:
    if any(r.severity is Severity.BLOCKER for r in reasons):
        return Verdict.BLOCKED
    if any(r.severity is Severity.WARNING for r in reasons):
        return Verdict.READY_WITH_WARNINGS
    return Verdict.READY


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    owner: str  # "nodegroup ng-web", "karpenter general-al2", "self-managed"
    zone: str
    instance_type: str
    pods: int
    ready: bool


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    workload: str  # "Deployment shop/cart"
    pods: int  # on the wave's nodes
    replicas: int | None
    stateful: bool
    daemonset: bool
    pdbs: tuple[str, ...]
    disruptions_allowed: int | None  # the tightest of its PDBs now; None without a PDB
    do_not_disrupt: int
    compatible: bool  # no compatibility blocker


@dataclass(frozen=True, slots=True)
class Capacity:
    nodepool: str
    source: str  # "cluster" (the NodePool exists) or "plan" (it will be created from the plan)
    needed_cpu_millis: int
    needed_memory_bytes: int
    used_cpu_millis: int
    used_memory_bytes: int
    limit_cpu_millis: int | None
    limit_memory_bytes: int | None


@dataclass(frozen=True)
class Readiness:
    cluster: str
    wave_number: int
    wave_name: str
    selector: str
    strategy: str
    nodes: tuple[NodeRow, ...]
    workloads: tuple[WorkloadRow, ...]
    daemonsets: tuple[str, ...]
    capacity: Capacity
    reasons: tuple[Reason, ...]

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.reasons)

    @property
    def pod_count(self) -> int:
        return sum(n.pods for n in self.nodes)

    def count(self, severity: Severity) -> int:
        return sum(1 for r in self.reasons if r.severity is severity)


def _owner(node: NodeInfo) -> str:
    return f"{node.owner_kind.value} {node.owner_name}".strip()


def _sample(pods: list[PodInfo], limit: int = 3) -> str:
    names = [p.key for p in pods[:limit]]
    more = len(pods) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def readiness(
    wave: Wave,
    wave_number: int,
    target: Target,
    facts: ClusterFacts,
    aws: AwsFacts | None = None,
    *,
    cluster: str = "",
) -> Readiness:
    inv = facts.inventory
    nodes = wave_nodes(wave, inv.nodes.values(), inv.pods_by_node)
    reasons: list[Reason] = []
    wave_label = f"wave {wave_number} ({wave.name})"
    if not nodes:
        reasons.append(
            Reason(
                Severity.WARNING,
                "no-nodes",
                wave_label,
                f"its selector ({wave.selector.text()}) matches no AL2 node: there is nothing to move",
                "check the selector against `kubectl get nodes --show-labels`, or skip the wave",
            )
        )
    node_rows: list[NodeRow] = []
    by_workload: dict[WorkloadKey, list[PodInfo]] = defaultdict(list)
    for node in nodes:
        pods = [p for p in inv.pods_on(node.name) if not p.finished and not p.is_mirror]
        node_rows.append(
            NodeRow(node.name, _owner(node), node.zone, node.instance_type, len(pods), node.ready)
        )
        for pod in pods:
            by_workload[workload_key(pod)].append(pod)

    kept_pools = frozenset(
        {target.nodepool.name, *(wave.selector.nodepools if wave.strategy is Strategy.DRIFT else ())}
    )
    rows: list[WorkloadRow] = []
    daemonsets: list[str] = []
    pdb_pods: dict[str, list[PodInfo]] = defaultdict(list)
    needed_cpu = needed_memory = 0
    for key, pods in sorted(by_workload.items()):
        kind = key[0]
        text = workload_text(key)
        workload = facts.workloads.get(key)
        daemonset = kind == "DaemonSet"
        if daemonset:
            daemonsets.append(f"{key[1]}/{key[2]}")
        compat = (
            scan(workload, data_volume_gib=target.ec2nodeclass.data_volume_gib, nodepools_kept=kept_pools)
            if workload
            else []
        )
        reasons.extend(compat)
        pdbs = tuple(sorted({k for p in pods for k in p.pdbs}))
        allowed = min((inv.pdbs[k].disruptions_allowed for k in pdbs if k in inv.pdbs), default=None)
        held = [p for p in pods if p.do_not_disrupt]
        rows.append(
            WorkloadRow(
                workload=text,
                pods=len(pods),
                replicas=workload.replicas if workload else None,
                stateful=workload.stateful if workload else kind == "StatefulSet",
                daemonset=daemonset,
                pdbs=pdbs,
                disruptions_allowed=allowed,
                do_not_disrupt=len(held),
                compatible=not any(r.severity is Severity.BLOCKER for r in compat),
            )
        )
        if daemonset:
            reasons.extend(_daemonset_checks(text, workload, target))
            continue
        if workload is not None:
            needed_cpu += workload.spec.cpu_millis * len(pods)
            needed_memory += workload.spec.memory_bytes * len(pods)
        for pod in pods:
            for k in pod.pdbs:
                pdb_pods[k].append(pod)
            if len(pod.pdbs) > 1:
                reasons.append(
                    Reason(
                        Severity.BLOCKER,
                        "pdb-overlap",
                        f"Pod {pod.key}",
                        f"is covered by {len(pod.pdbs)} PodDisruptionBudgets ({', '.join(pod.pdbs)}); the "
                        "API "
                        "refuses to evict a pod under more than one",
                        "change the selectors so that exactly one PDB covers these pods",
                    )
                )
        for pod in held:
            reasons.append(
                Reason(
                    Severity.WARNING,
                    "do-not-disrupt",
                    f"Pod {pod.key}",
                    f"carries karpenter.sh/do-not-disrupt=true: the drain holds it, so node {pod.node_name} "
                    "stays cordoned but not empty",
                    "remove the annotation when the pod may move, or wait until it finishes",
                )
            )
        if kind == "Pod":
            for pod in pods:
                reasons.append(
                    Reason(
                        Severity.WARNING if wave.force_unreplicated else Severity.BLOCKER,
                        "unreplicated",
                        f"Pod {pod.key}",
                        "has no controller: evicting it deletes it for good"
                        + (" (the wave sets force_unreplicated: true)" if wave.force_unreplicated else ""),
                        "run it under a Deployment or Job, delete it when it is done, "
                        "or set force_unreplicated: true on the wave",
                    )
                )
        if workload is None:
            continue
        reasons.extend(_upgrade_checks(workload.kind, text, workload.replicas, pdbs, workload.spec))
        if workload.stateful:
            reasons.append(
                Reason(
                    Severity.INFO,
                    "stateful",
                    text,
                    f"is stateful ({len(pods)} pod(s) on this wave's nodes); the case study moved stateless "
                    "workloads first",
                    "move it in a later wave, after the stateless ones ran well on Bottlerocket",
                )
            )

    for pdb_key, pdb_members in sorted(pdb_pods.items()):
        pdb = inv.pdbs.get(pdb_key)
        if pdb is None:
            continue
        if pdb.disruptions_allowed <= 0:
            reasons.append(
                Reason(
                    Severity.BLOCKER,
                    "pdb-no-headroom",
                    f"PodDisruptionBudget {pdb_key}",
                    f"allows 0 disruptions now, so evicting its {len(pdb_members)} pod(s) on this wave's "
                    "nodes "
                    f"({_sample(pdb_members)}) would block",
                    "wait until its pods are all Ready, raise maxUnavailable (or lower minAvailable), "
                    "or scale the workload up before the wave",
                )
            )
        elif pdb.disruptions_allowed < len(pdb_members):
            reasons.append(
                Reason(
                    Severity.INFO,
                    "pdb-serial",
                    f"PodDisruptionBudget {pdb_key}",
                    f"allows {pdb.disruptions_allowed} disruption(s) at a time for {len(pdb_members)} "
                    "pod(s) on "
                    "this "
                    "wave's nodes: their evictions go one budget at a time",
                    "nothing to do; expect the drain to wait for replacements to turn Ready",
                )
            )

    reasons.extend(_user_data_checks(wave, target, facts, aws, nodes))
    capacity = _capacity(target, facts, needed_cpu, needed_memory)
    reasons.extend(_capacity_checks(capacity))
    return Readiness(
        cluster=cluster,
        wave_number=wave_number,
        wave_name=wave.name,
        selector=wave.selector.text(),
        strategy=wave.strategy.value,
        nodes=tuple(node_rows),
        workloads=tuple(rows),
        daemonsets=tuple(daemonsets),
        capacity=capacity,
        reasons=ordered(reasons),
    )


def _daemonset_checks(text: str, workload: WorkloadFacts | None, target: Target) -> list[Reason]:
    """A node agent the wave's nodes run must run on the Bottlerocket nodes too: it has to tolerate
    the Bottlerocket NodePool's taints."""
    if workload is None:
        return []
    missing = [
        f"{t.key}={t.value or ''}:{t.effect}"
        for t in target.nodepool.taints
        if not workload.spec.tolerates(t.key, t.value or "", t.effect)
    ]
    if not missing:
        return []
    return [
        Reason(
            Severity.WARNING,
            "daemonset-taints",
            text,
            f"runs on this wave's nodes but does not tolerate the Bottlerocket NodePool "
            f"{target.nodepool.name}'s taint(s) {', '.join(missing)}, so the new nodes would lack it",
            "add a toleration for those taints to its pod template",
        )
    ]


def _upgrade_checks(
    kind: str, text: str, replicas: int | None, pdbs: tuple[str, ...], spec: PodSpecFacts
) -> list[Reason]:
    """eksup's checks: single replica, no PDB, no readiness probe, no spread, no grace period."""
    out: list[Reason] = []
    if kind in _REPLICATED and replicas == 1:
        out.append(
            Reason(
                Severity.WARNING,
                "single-replica",
                text,
                "runs 1 replica: draining its node is an outage until the new pod is Ready",
                "scale it to 2 or more replicas (with a PDB) before the wave",
            )
        )
    if kind in _REPLICATED and (replicas or 0) > 1 and not pdbs:
        out.append(
            Reason(
                Severity.WARNING,
                "no-pdb",
                text,
                f"has {replicas} replicas and no PodDisruptionBudget: the drain may evict them all at once",
                "add a PodDisruptionBudget (e.g. maxUnavailable: 1)",
            )
        )
    if kind in _REPLICATED and spec.without_readiness_probe:
        out.append(
            Reason(
                Severity.WARNING,
                "no-readiness-probe",
                text,
                f"container(s) {', '.join(spec.without_readiness_probe)} have no readiness probe: a "
                "replacement "
                "counts as Ready before it serves, so PDBs protect nothing",
                "add a readinessProbe to each serving container",
            )
        )
    if kind in _REPLICATED and (replicas or 0) > 1 and not spec.spread:
        out.append(
            Reason(
                Severity.WARNING,
                "no-spread",
                text,
                "has no topologySpreadConstraints or pod anti-affinity: its replicas may share a node or "
                "zone",
                "add a topologySpreadConstraint on topology.kubernetes.io/zone (and kubernetes.io/hostname)",
            )
        )
    if spec.termination_grace_seconds == 0:
        out.append(
            Reason(
                Severity.WARNING,
                "no-grace-period",
                text,
                "sets terminationGracePeriodSeconds: 0: evicted pods are killed without a chance to finish "
                "requests",
                "give it a grace period long enough to drain connections (the default is 30 s)",
            )
        )
    return out


def _user_data_checks(
    wave: Wave, target: Target, facts: ClusterFacts, aws: AwsFacts | None, nodes: list[NodeInfo]
) -> list[Reason]:
    out: list[Reason] = []
    fix = (
        "port what it does to Bottlerocket settings (TOML) in the EC2NodeClass userData, "
        "e.g. [settings.kernel.sysctl] instead of a sysctl.d file"
    )
    groups = sorted({n.owner_name for n in nodes if n.owner_kind.value == "nodegroup"})
    for group in groups:
        if aws is None:
            continue
        text = aws.launch_template_user_data.get(group)
        if text is None:
            why = next((v for k, v in aws.unknown.items() if group in k), "not read")
            out.append(
                Reason(
                    Severity.INFO,
                    "user-data-unknown",
                    f"node group {group}",
                    f"its launch template's user data is unknown: {why}",
                    "grant ec2:DescribeLaunchTemplateVersions and eks:DescribeNodegroup to read it",
                )
            )
        elif is_shell_user_data(text):
            out.append(
                Reason(
                    Severity.WARNING,
                    "shell-user-data",
                    f"launch template of node group {group}",
                    "bootstraps with a shell script; Bottlerocket does not run shell user data, it takes "
                    "TOML settings",
                    fix,
                )
            )
    pools = sorted({n.owner_name for n in nodes if n.owner_kind.value == "karpenter"})
    for pool in pools:
        nodepool = facts.nodepools.get(pool)
        nodeclass = facts.nodeclasses.get(nodepool.nodeclass) if nodepool else None
        if nodeclass is not None and is_shell_user_data(nodeclass.user_data):
            out.append(
                Reason(
                    Severity.WARNING,
                    "shell-user-data",
                    f"EC2NodeClass {nodeclass.name}",
                    f"NodePool {pool}'s nodes bootstrap with a shell script; Bottlerocket takes TOML "
                    "settings",
                    fix,
                )
            )
    wanted = facts.nodeclasses.get(target.ec2nodeclass.name)
    if wanted is not None and is_shell_user_data(wanted.user_data):
        out.append(
            Reason(
                Severity.BLOCKER,
                "shell-user-data",
                f"EC2NodeClass {wanted.name}",
                "the Bottlerocket EC2NodeClass carries a shell script as userData; Bottlerocket would not "
                "boot "
                "with it as intended",
                "replace the userData with Bottlerocket TOML settings",
            )
        )
    return out


def _plan_limit(limits: Mapping[str, str], key: str) -> str | None:
    value = limits.get(key)
    return str(value) if value is not None else None


def _capacity(target: Target, facts: ClusterFacts, cpu: int, memory: int) -> Capacity:
    name = target.nodepool.name
    pool = facts.nodepools.get(name)
    if pool is not None:
        return Capacity(
            name,
            "cluster",
            cpu,
            memory,
            pool.used_cpu_millis,
            pool.used_memory_bytes,
            pool.limits_cpu_millis,
            pool.limits_memory_bytes,
        )
    limits = {str(k): str(v) for k, v in target.nodepool.limits.items()}
    cpu_limit = _plan_limit(limits, "cpu")
    memory_limit = _plan_limit(limits, "memory")
    return Capacity(
        name,
        "plan",
        cpu,
        memory,
        0,
        0,
        cpu_millis(cpu_limit) if cpu_limit else None,
        byte_count(memory_limit) if memory_limit else None,
    )


def _cores(millis: int) -> str:
    return f"{millis / 1000:g}"


def _gib(count: int) -> str:
    return f"{count / 2**30:.0f}Gi"


def _capacity_checks(c: Capacity) -> list[Reason]:
    out: list[Reason] = []
    for resource, needed, used, limit, shown in (
        ("cpu", c.needed_cpu_millis, c.used_cpu_millis, c.limit_cpu_millis, _cores),
        (
            "memory",
            c.needed_memory_bytes,
            c.used_memory_bytes,
            c.limit_memory_bytes,
            _gib,
        ),
    ):
        if limit is None or used + needed <= limit:
            continue
        out.append(
            Reason(
                Severity.BLOCKER,
                "capacity",
                f"NodePool {c.nodepool}",
                f"limits.{resource} is {shown(limit)} but the pool already uses {shown(used)} and this "
                "wave's "
                f"pods request {shown(needed)}: Karpenter would stop launching nodes and pods stay Pending",
                f"raise limits.{resource} to at least {shown(used + needed)}",
            )
        )
    return out
