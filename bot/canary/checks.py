"""The canary's checks, pure: what one run saw → pass / fail / inconclusive per check, and what the runs
of a bake add up to under Argo Rollouts' AnalysisRun rules.

Which objects are "the wave's": its Bottlerocket nodes are, for now, the nodes whose
`status.nodeInfo.osImage` starts with "Bottlerocket" and whose creationTimestamp is after the wave
entered `executing` (the nodes Karpenter launched for it). Its workloads are the pods running (or
scheduled) on those nodes, and the pods of the same controllers that are still Pending. Timestamps are
compared on the cluster's clock where the cluster wrote them (events, pod ages): `now` is the caller's.

Each check is an Argo Rollouts metric: every run adds one measurement to it. Over one analysis (a
bake, or the bake after a resume) a check that failed more than `failure_limit` times fails the
analysis; one inconclusive more than `inconclusive_limit` times makes it inconclusive; otherwise it is
still running, and successful once the bake's time is over (docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.kube.timestamps import parse_time
from bot.plan.models import Canary, Check

JSON = dict[str, Any]

PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
# Warning events that mean a workload can't run on Bottlerocket: its read-only root and /usr, its
# different container runtime setup (the case study's immutable-filesystem incompatibilities).
EVENT_REASONS = frozenset(
    {"FailedMount", "FailedCreatePodSandBox", "FailedAttachVolume", "FailedCreatePodContainer", "Failed"}
)
EVENT_PHRASES = ("read-only file system",)
SHOWN = 10  # objects and event messages kept per check: enough to act on, small enough to post


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


_WORST = {Verdict.PASS: 0, Verdict.INCONCLUSIVE: 1, Verdict.FAIL: 2}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    return max(verdicts, key=_WORST.__getitem__, default=Verdict.PASS)


@dataclass(frozen=True)
class CheckResult:
    """One check in one run: the verdict, a sentence, and what it saw."""

    check: str
    verdict: Verdict
    summary: str
    objects: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self) -> JSON:
        return {
            "check": self.check,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "objects": list(self.objects),
            "events": list(self.events),
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(
            str(data["check"]),
            Verdict(data["verdict"]),
            str(data.get("summary", "")),
            tuple(data.get("objects") or ()),
            tuple(data.get("events") or ()),
            dict(data.get("counts") or {}),
        )


@dataclass(frozen=True)
class PromSample:
    """What Prometheus answered: the query's value and the firing alerts, or why it couldn't."""

    value: float | None = None
    alerts: tuple[str, ...] = ()  # "HighErrorRate{severity=critical}"
    error: str | None = None


@dataclass(frozen=True)
class Observation:
    """What one run read. `kube_error` says why the cluster couldn't be read (then nothing else is)."""

    now: dt.datetime
    since: dt.datetime  # when the wave entered `executing`: its Bottlerocket nodes are newer
    nodes: Sequence[JSON] = ()
    pods: Sequence[JSON] = ()
    events: Sequence[JSON] = ()
    baseline: Mapping[str, int] = field(default_factory=dict)  # pod uid → restarts when first seen
    seen_events: frozenset[str] = frozenset()  # event keys earlier runs already counted
    kube_error: str | None = None
    query: PromSample | None = None
    alerts: PromSample | None = None


@dataclass(frozen=True)
class RunOutcome:
    verdict: Verdict
    results: tuple[CheckResult, ...]
    restarts: Mapping[str, int]  # pod uid → restarts now, for the baseline
    event_keys: tuple[str, ...]

    def as_dict(self) -> JSON:
        return {
            "verdict": self.verdict.value,
            "checks": [r.as_dict() for r in self.results],
            "event_keys": list(self.event_keys),
        }

    def failing(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.verdict is not Verdict.PASS)


# ---- the wave's objects ---------------------------------------------------------------------------


def is_bottlerocket(node: Mapping[str, Any]) -> bool:
    image = str(((node.get("status") or {}).get("nodeInfo") or {}).get("osImage", ""))
    return image.startswith("Bottlerocket")


def wave_nodes(nodes: Iterable[JSON], since: dt.datetime) -> list[JSON]:
    """The wave's Bottlerocket nodes: Bottlerocket, created after the wave started executing."""
    chosen = []
    for node in nodes:
        created = parse_time((node.get("metadata") or {}).get("creationTimestamp"))
        if is_bottlerocket(node) and created is not None and created >= since:
            chosen.append(node)
    return sorted(chosen, key=_name)


def workload_of(pod: Mapping[str, Any]) -> str:
    """namespace/Kind/name of the pod's controller; a ReplicaSet stands for its Deployment."""
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace", "")
    for owner in meta.get("ownerReferences") or ():
        kind, name = str(owner.get("kind", "")), str(owner.get("name", ""))
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
            return f"{namespace}/Deployment/{name[: -len(template_hash) - 1]}"
        return f"{namespace}/{kind}/{name}"
    return f"{namespace}/Pod/{meta.get('name', '')}"


def wave_pods(pods: Iterable[JSON], node_names: set[str]) -> list[JSON]:
    """Pods on the wave's nodes, and Pending pods of the same controllers that have no node yet."""
    pods = list(pods)
    on_nodes = [p for p in pods if (p.get("spec") or {}).get("nodeName") in node_names]
    workloads = {workload_of(p) for p in on_nodes}
    waiting = [
        p
        for p in pods
        if not (p.get("spec") or {}).get("nodeName")
        and (p.get("status") or {}).get("phase") == "Pending"
        and workload_of(p) in workloads
    ]
    return sorted(on_nodes + waiting, key=_ref)


# ---- one run ----------------------------------------------------------------------------------------


def evaluate(canary: Canary, seen: Observation) -> RunOutcome:
    """Every check the plan lists, over one observation."""
    nodes = wave_nodes(seen.nodes, seen.since)
    names = {_name(n) for n in nodes}
    pods = [p for p in wave_pods(seen.pods, names) if _phase(p) not in ("Succeeded", "Failed")]
    restarts = {_uid(p): _restarts(p) for p in pods}
    results: list[CheckResult] = []
    event_keys: tuple[str, ...] = ()
    for check in canary.checks:
        if check in (Check.PROMETHEUS_QUERY, Check.PROMETHEUS_ALERTS):
            results.append(_prometheus(check, canary, seen))
            continue
        if seen.kube_error is not None:
            results.append(
                CheckResult(
                    check.value, Verdict.INCONCLUSIVE, f"the cluster couldn't be read: {seen.kube_error}"
                )
            )
            continue
        if check is Check.EVENTS:
            result, event_keys = _events(seen, names, pods)
            results.append(result)
        elif not nodes:
            results.append(
                CheckResult(
                    check.value,
                    Verdict.INCONCLUSIVE,
                    "no Bottlerocket node created since the wave started executing — nothing to check yet",
                )
            )
        elif check is Check.NODES_READY:
            results.append(_nodes_ready(nodes))
        elif check is Check.WORKLOADS_READY:
            results.append(_workloads_ready(pods))
        elif check is Check.RESTARTS:
            results.append(_restart_deltas(pods, seen.baseline, canary.restart_threshold))
        elif check is Check.CRASHLOOP:
            results.append(_crashloop(pods))
        elif check is Check.PENDING:
            results.append(_pending(pods, seen.now, canary.pending_timeout))
    return RunOutcome(worst(r.verdict for r in results), tuple(results), restarts, event_keys)


def _nodes_ready(nodes: Sequence[JSON]) -> CheckResult:
    bad: list[str] = []
    for node in nodes:
        conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or ()}
        ready = conditions.get("Ready") or {}
        if ready.get("status") != "True":
            reason = ready.get("reason") or ready.get("message") or "no Ready condition"
            bad.append(f"node {_name(node)}: not Ready ({reason})")
        bad.extend(
            f"node {_name(node)}: {kind}"
            for kind in PRESSURE
            if (conditions.get(kind) or {}).get("status") == "True"
        )
    if bad:
        return CheckResult(
            Check.NODES_READY.value, Verdict.FAIL,
            f"{len(bad)} problem(s) on {len(nodes)} Bottlerocket node(s)",
            tuple(bad[:SHOWN]), counts={"nodes": len(nodes), "problems": len(bad)},
        )  # fmt: skip
    return CheckResult(
        Check.NODES_READY.value, Verdict.PASS, f"{len(nodes)} Bottlerocket node(s) Ready, no pressure",
        counts={"nodes": len(nodes)},
    )  # fmt: skip


def _workloads_ready(pods: Sequence[JSON]) -> CheckResult:
    running = [p for p in pods if _phase(p) == "Running"]
    unready = [p for p in running if not _ready(p)]
    if unready:
        return CheckResult(
            Check.WORKLOADS_READY.value, Verdict.FAIL,
            f"{len(unready)} of {len(running)} running pod(s) on the wave's nodes are not Ready",
            tuple(f"pod {_ref(p)} ({workload_of(p)}): not Ready" for p in unready[:SHOWN]),
            counts={"running": len(running), "unready": len(unready)},
        )  # fmt: skip
    return CheckResult(
        Check.WORKLOADS_READY.value, Verdict.PASS, f"{len(running)} running pod(s) Ready",
        counts={"running": len(running)},
    )  # fmt: skip


def _restart_deltas(pods: Sequence[JSON], baseline: Mapping[str, int], threshold: int) -> CheckResult:
    deltas = {_ref(p): _restarts(p) - baseline.get(_uid(p), 0) for p in pods}
    over = sorted((ref, d) for ref, d in deltas.items() if d >= threshold)
    if over:
        return CheckResult(
            Check.RESTARTS.value, Verdict.FAIL,
            f"{len(over)} pod(s) restarted {threshold}+ times during the bake",
            tuple(f"pod {ref}: {d} restarts" for ref, d in over[:SHOWN]),
            counts={"pods": len(pods), "over_threshold": len(over)},
        )  # fmt: skip
    return CheckResult(
        Check.RESTARTS.value, Verdict.PASS, f"no pod restarted {threshold}+ times during the bake",
        counts={"pods": len(pods), "restarts": sum(max(0, d) for d in deltas.values())},
    )  # fmt: skip


def _crashloop(pods: Sequence[JSON]) -> CheckResult:
    looping = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                looping.append(f"pod {_ref(pod)} container {status.get('name')}: CrashLoopBackOff")
    if looping:
        return CheckResult(
            Check.CRASHLOOP.value, Verdict.FAIL, f"{len(looping)} container(s) in CrashLoopBackOff",
            tuple(looping[:SHOWN]), counts={"crashlooping": len(looping)},
        )  # fmt: skip
    return CheckResult(Check.CRASHLOOP.value, Verdict.PASS, "no container in CrashLoopBackOff")


def _pending(pods: Sequence[JSON], now: dt.datetime, timeout: dt.timedelta) -> CheckResult:
    stuck = []
    for pod in pods:
        created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
        if _phase(pod) == "Pending" and created is not None and now - created > timeout:
            stuck.append(f"pod {_ref(pod)}: Pending since {created:%H:%M:%S} UTC")
    if stuck:
        return CheckResult(
            Check.PENDING.value, Verdict.FAIL, f"{len(stuck)} pod(s) Pending longer than {timeout}",
            tuple(stuck[:SHOWN]), counts={"pending_too_long": len(stuck)},
        )  # fmt: skip
    return CheckResult(Check.PENDING.value, Verdict.PASS, f"no pod Pending longer than {timeout}")


def event_key(event: Mapping[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}#{event.get('count', 1)}"


def _events(
    seen: Observation, node_names: set[str], pods: Sequence[JSON]
) -> tuple[CheckResult, tuple[str, ...]]:
    """Warning events about the wave's nodes or its pods that mean Bottlerocket broke something, and
    that no earlier run counted (an event that repeats counts again: its count changes)."""
    pod_refs = {_ref(p) for p in pods}
    hits: list[tuple[str, str]] = []
    for event in seen.events:
        if event.get("type") != "Warning":
            continue
        reason, message = str(event.get("reason", "")), str(event.get("message", ""))
        if reason not in EVENT_REASONS and not any(p in message for p in EVENT_PHRASES):
            continue
        involved = event.get("involvedObject") or {}
        kind, name = involved.get("kind"), str(involved.get("name", ""))
        host = str((event.get("source") or {}).get("host", ""))
        ref = f"{involved.get('namespace', '')}/{name}"
        if (
            (kind == "Node" and name in node_names)
            or (kind == "Pod" and ref in pod_refs)
            or host in node_names
        ):
            key = event_key(event)
            if key not in seen.seen_events:
                hits.append((key, f"{kind} {ref.lstrip('/')}: {reason}: {message}"))
    keys = tuple(k for k, _ in hits)
    if hits:
        counted = Counter(text for _, text in hits)
        shown = tuple(f"{text} (×{n})" if n > 1 else text for text, n in counted.most_common(SHOWN))
        return (
            CheckResult(
                Check.EVENTS.value, Verdict.FAIL, f"{len(hits)} new warning event(s) on the wave's nodes",
                events=shown, counts={"events": len(hits)},
            ),
            keys,
        )  # fmt: skip
    return CheckResult(Check.EVENTS.value, Verdict.PASS, "no new warning events on the wave's nodes"), keys


_COMPARE = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _prometheus(check: Check, canary: Canary, seen: Observation) -> CheckResult:
    prom = canary.prometheus
    sample = seen.query if check is Check.PROMETHEUS_QUERY else seen.alerts
    if prom is None or sample is None:
        return CheckResult(check.value, Verdict.INCONCLUSIVE, "Prometheus was not asked")
    if sample.error is not None:
        return CheckResult(check.value, Verdict.INCONCLUSIVE, f"Prometheus couldn't answer: {sample.error}")
    if check is Check.PROMETHEUS_ALERTS:
        if sample.alerts:
            return CheckResult(
                check.value, Verdict.FAIL, f"{len(sample.alerts)} alert(s) firing",
                tuple(f"alert {a}" for a in sample.alerts[:SHOWN]), counts={"firing": len(sample.alerts)},
            )  # fmt: skip
        return CheckResult(check.value, Verdict.PASS, "no matching alert firing")
    if sample.value is None or prom.threshold is None:
        return CheckResult(check.value, Verdict.INCONCLUSIVE, f"the query {prom.query!r} returned no data")
    failing = _COMPARE[prom.comparison](sample.value, prom.threshold)
    sentence = f"{prom.query} = {sample.value:g} ({prom.comparison} {prom.threshold:g} fails)"
    return CheckResult(check.value, Verdict.FAIL if failing else Verdict.PASS, sentence)


# ---- the runs of one analysis (Argo Rollouts' AnalysisRun) ------------------------------------------


class Phase(enum.StrEnum):
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Assessment:
    phase: Phase
    reason: str
    failed: Mapping[str, int] = field(default_factory=dict)
    inconclusive: Mapping[str, int] = field(default_factory=dict)


def assess(
    runs: Sequence[Sequence[CheckResult]], *, failure_limit: int, inconclusive_limit: int, bake_over: bool
) -> Assessment:
    """Argo Rollouts' assessMetricStatus per check, then the worst over checks: a check fails when its
    failed measurements exceed failure_limit (counted over the whole analysis, not consecutively),
    is inconclusive when its inconclusive ones exceed inconclusive_limit; failed beats inconclusive;
    with neither, the analysis runs until the bake is over and then is successful."""
    failed: Counter[str] = Counter()
    inconclusive: Counter[str] = Counter()
    for results in runs:
        for r in results:
            if r.verdict is Verdict.FAIL:
                failed[r.check] += 1
            elif r.verdict is Verdict.INCONCLUSIVE:
                inconclusive[r.check] += 1
    over_failed = sorted(c for c, n in failed.items() if n > failure_limit)
    if over_failed:
        reason = ", ".join(f"{c} failed {failed[c]} times" for c in over_failed)
        return Assessment(Phase.FAILED, f"{reason} (failure limit {failure_limit})", failed, inconclusive)
    over_inconclusive = sorted(c for c, n in inconclusive.items() if n > inconclusive_limit)
    if over_inconclusive:
        reason = ", ".join(f"{c} inconclusive {inconclusive[c]} times" for c in over_inconclusive)
        return Assessment(
            Phase.INCONCLUSIVE, f"{reason} (inconclusive limit {inconclusive_limit})", failed, inconclusive
        )
    if bake_over:
        return Assessment(Phase.SUCCESSFUL, "the bake ended within the limits", failed, inconclusive)
    return Assessment(Phase.RUNNING, "within the limits so far", failed, inconclusive)


# ---- small readers ----------------------------------------------------------------------------------


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _uid(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def _ref(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase", ""))


def _ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _restarts(pod: Mapping[str, Any]) -> int:
    return sum(
        int(s.get("restartCount", 0)) for s in (pod.get("status") or {}).get("containerStatuses") or ()
    )
