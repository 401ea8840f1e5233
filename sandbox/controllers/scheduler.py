"""The default scheduler: binds Pending pods to Ready, schedulable nodes they tolerate and fit.

Filters: node Ready and not cordoned or deleting, taints (NoSchedule/NoExecute) tolerated,
nodeSelector, required node affinity (In/NotIn/Exists/DoesNotExist/Gt/Lt, matchFields), free cpu,
memory and pod slots. Score: spread a controller's pods over zones, then nodes, then least allocated.
A pod that fits nowhere gets PodScheduled=False/Unschedulable and a FailedScheduling event, as
Karpenter's provisioner expects.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sandbox.controllers.common import (
    controller_ref,
    node_ready,
    pod_fits_labels,
    pod_requests,
    quantity,
    set_condition,
    terminal,
    untolerated_taint,
)
from sandbox.controllers.kube import Kube
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import Event, ObjKey

ZONE = "topology.kubernetes.io/zone"


@dataclass
class _NodeInfo:
    node: JSON
    name: str
    labels: dict[str, str]
    zone: str
    not_ready: bool
    unschedulable: bool
    taints: list[JSON]
    cpu: float
    memory: float
    pods: float


class Scheduler:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._pending: set[ObjKey] = set()
        self._scan_all = True
        self._retry_all = False
        self._info_cache: tuple[list[JSON], list[_NodeInfo]] | None = None

    def observe(self, event: Event) -> None:
        if event.resource == "/pods":
            pod = event.object
            if event.type != "DELETED" and not pod.get("spec", {}).get("nodeName"):
                self._pending.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
            elif event.type == "DELETED" or (
                event.old is not None and not terminal(event.old) and terminal(pod)
            ):
                self._retry_all = True  # room freed
        elif event.resource == "/nodes":
            self._retry_all = True

    def has_pending(self) -> bool:
        return bool(self._pending)

    def reconcile(self, now: float) -> float | None:
        kube = self.kube
        with kube.lock:
            if self._scan_all:
                self._scan_all = False
                for pod in kube.store.iter_all(kube.pods):
                    if not pod.get("spec", {}).get("nodeName"):
                        self._pending.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
            if not self._pending:
                self._retry_all = False
                return None
            self._retry_all = False
            pods: list[JSON] = []
            for key in sorted(self._pending):
                found = kube.store.get(kube.pods, *key)
                if (
                    found is None
                    or found.get("spec", {}).get("nodeName")
                    or found["metadata"].get("deletionTimestamp")
                    or terminal(found)
                    or found.get("spec", {}).get("schedulerName", "default-scheduler") != "default-scheduler"
                ):
                    self._pending.discard(key)
                    continue
                pods.append(found)
            if not pods:
                return None
            nodes = [n for n in kube.store.iter_all(kube.nodes)]
            usage = self._usage(nodes)
            spread = self._spread(nodes)
            for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", "")):
                node, reason = self._pick(pod, nodes, usage, spread)
                key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
                if node is None:
                    self._mark_unschedulable(pod, reason, len(nodes), now)
                    continue
                self._bind(pod, node, now)
                self._pending.discard(key)
                name = node["metadata"]["name"]
                cpu, mem = pod_requests(pod)
                used = usage[name]
                usage[name] = (used[0] + cpu, used[1] + mem, used[2] + 1)
                ref = controller_ref(pod)
                if ref is not None:
                    zone = (node["metadata"].get("labels") or {}).get(ZONE, "")
                    counter = spread.setdefault(ref["uid"], Counter())
                    counter[("zone", zone)] += 1
                    counter[("node", name)] += 1
        return None

    def _usage(self, nodes: list[JSON]) -> dict[str, tuple[float, float, int]]:
        usage: dict[str, tuple[float, float, int]] = {}
        for node in nodes:
            name = node["metadata"]["name"]
            cpu = mem = 0.0
            count = 0
            for pod in self.kube.pods_on(name):
                if terminal(pod):
                    continue
                c, m = pod_requests(pod)
                cpu += c
                mem += m
                count += 1
            usage[name] = (cpu, mem, count)
        return usage

    def _spread(self, nodes: list[JSON]) -> dict[str, Counter[tuple[str, str]]]:
        zone_of = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ZONE, "") for n in nodes}
        spread: dict[str, Counter[tuple[str, str]]] = {}
        for name, zone in zone_of.items():
            for pod in self.kube.pods_on(name):
                ref = controller_ref(pod)
                if ref is None or terminal(pod) or pod["metadata"].get("deletionTimestamp"):
                    continue
                counter = spread.setdefault(ref["uid"], Counter())
                counter[("zone", zone)] += 1
                counter[("node", name)] += 1
        return spread

    def _pick(
        self,
        pod: JSON,
        nodes: list[JSON],
        usage: dict[str, tuple[float, float, int]],
        spread: dict[str, Counter[tuple[str, str]]],
    ) -> tuple[JSON | None, str]:
        cpu, mem = pod_requests(pod)
        reasons: Counter[str] = Counter()
        fits = []
        for info in self._infos(nodes):
            if info.not_ready:
                reasons["node(s) were not ready"] += 1
                continue
            if info.unschedulable:
                reasons["node(s) were unschedulable"] += 1
                continue
            taint = untolerated_taint(pod, info.taints) if info.taints else None
            if taint is not None:
                reasons[
                    f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
                ] += 1
                continue
            if not pod_fits_labels(pod, info.labels, info.name):
                reasons["node(s) didn't match Pod's node affinity/selector"] += 1
                continue
            used = usage.get(info.name, (0.0, 0.0, 0))
            if used[0] + cpu > info.cpu + 1e-9:
                reasons["Insufficient cpu"] += 1
                continue
            if used[1] + mem > info.memory:
                reasons["Insufficient memory"] += 1
                continue
            if used[2] + 1 > info.pods:
                reasons["Too many pods"] += 1
                continue
            fits.append(info)
        if not fits:
            detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
            return None, f"0/{len(nodes)} nodes are available: {detail}." if detail else "no nodes available"
        ref = controller_ref(pod)
        counter = spread.get(ref["uid"], Counter()) if ref is not None else Counter()

        def score(info: _NodeInfo) -> tuple[int, int, float, str]:
            return (
                counter[("zone", info.zone)],
                counter[("node", info.name)],
                usage[info.name][0] / (info.cpu or 1.0),
                info.name,
            )

        return min(fits, key=score).node, ""

    def _infos(self, nodes: list[JSON]) -> list[_NodeInfo]:
        """What the filters need from each node, computed once per pass rather than once per pod."""
        if self._info_cache is not None and self._info_cache[0] is nodes:
            return self._info_cache[1]
        infos = []
        for node in nodes:
            alloc = (node.get("status") or {}).get("allocatable") or {}
            labels = node["metadata"].get("labels") or {}
            infos.append(
                _NodeInfo(
                    node=node,
                    name=node["metadata"]["name"],
                    labels=labels,
                    zone=labels.get(ZONE, ""),
                    not_ready=bool(node["metadata"].get("deletionTimestamp")) or not node_ready(node),
                    unschedulable=bool(node.get("spec", {}).get("unschedulable")),
                    taints=list(node.get("spec", {}).get("taints") or []),
                    cpu=quantity(alloc.get("cpu", "0")),
                    memory=quantity(alloc.get("memory", "0")),
                    pods=quantity(alloc.get("pods", "110")),
                )
            )
        self._info_cache = (nodes, infos)
        return infos

    def _bind(self, pod: JSON, node: JSON, now: float) -> None:
        kube = self.kube
        name = node["metadata"]["name"]
        new = kube.copy(pod)
        new["spec"]["nodeName"] = name
        stored = kube.update("pods", new)
        if stored is None:
            return
        status = kube.copy(stored.get("status") or {})
        set_condition(status, "PodScheduled", "True", "", "", now)
        kube.update_status("pods", stored, status)
        kube.event(
            stored,
            "Scheduled",
            f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {name}",
            component="default-scheduler",
        )

    def _mark_unschedulable(self, pod: JSON, message: str, node_count: int, now: float) -> None:
        status = self.kube.copy(pod.get("status") or {})
        if set_condition(status, "PodScheduled", "False", "Unschedulable", message, now):
            self.kube.update_status("pods", pod, status)
            self.kube.event(pod, "FailedScheduling", message, component="default-scheduler", warning=True)
