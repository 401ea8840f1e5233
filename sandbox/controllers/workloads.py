"""Workload controllers: Deployment → ReplicaSet → Pods, StatefulSet (ordered), DaemonSet.

Pods carry ownerReferences with controller=true so `kubectl drain` recognises their owners, and the
labels the real controllers add (pod-template-hash, controller-revision-hash,
statefulset.kubernetes.io/pod-name). Level-triggered: each pass compares every controller with its
pods and fixes the difference.
"""

from __future__ import annotations

from sandbox.controllers.common import (
    node_ready,
    owner_ref,
    pod_fits_labels,
    template_hash,
    terminal,
    untolerated_taint,
)
from sandbox.controllers.kube import Kube
from sandbox.kube.disruption import pod_ready
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import Event

# The tolerations the DaemonSet controller adds to its pods (pkg/controller/daemon/util).
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
_WATCHED = {"/pods", "/nodes", "apps/deployments", "apps/replicasets", "apps/statefulsets", "apps/daemonsets"}


class Workloads:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._dirty = True

    def observe(self, event: Event) -> None:
        if event.resource in _WATCHED:
            # Only pod transitions a controller counts: readiness, termination.
            if (
                event.resource == "/pods"
                and event.type == "MODIFIED"
                and event.old is not None
                and (
                    pod_ready(event.old) == pod_ready(event.object)
                    and bool(event.old["metadata"].get("deletionTimestamp"))
                    == bool(event.object["metadata"].get("deletionTimestamp"))
                    and terminal(event.old) == terminal(event.object)
                )
            ):
                return
            self._dirty = True

    def reconcile(self, now: float) -> float | None:
        if not self._dirty:
            return None
        self._dirty = False
        kube = self.kube
        with kube.lock:
            for d in kube.objects("deployments"):
                self._deployment(d)
            for rs in kube.objects("replicasets"):
                self._replicaset(rs)
            for sts in kube.objects("statefulsets"):
                self._statefulset(sts)
            nodes = kube.objects("nodes")
            for ds in kube.objects("daemonsets"):
                self._daemonset(ds, nodes)
        return None

    # ---- helpers ------------------------------------------------------------------------------------

    def _owned_pods(self, owner: JSON) -> list[JSON]:
        uid = owner["metadata"]["uid"]
        return [
            p
            for p in self.kube.store.dependents(uid)
            if p.get("kind") == "Pod"
            and any(
                r.get("uid") == uid and r.get("controller")
                for r in p["metadata"].get("ownerReferences") or ()
            )
        ]

    def _new_pod(self, owner: JSON, template: JSON, name: str | None, extra_labels: dict[str, str]) -> JSON:
        tmeta = template.get("metadata") or {}
        meta: JSON = {
            "namespace": owner["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}, **extra_labels),
            "ownerReferences": [owner_ref(owner)],
        }
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        if name is None:
            meta["generateName"] = f"{owner['metadata']['name']}-"
        else:
            meta["name"] = name
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": self.kube.copy(template.get("spec") or {}),
        }

    @staticmethod
    def _active(pods: list[JSON]) -> list[JSON]:
        return [p for p in pods if not p["metadata"].get("deletionTimestamp") and not terminal(p)]

    # ---- Deployment ---------------------------------------------------------------------------------

    def _deployment(self, d: JSON) -> None:
        kube = self.kube
        spec = d.get("spec") or {}
        template = spec.get("template") or {}
        replicas = int(spec.get("replicas", 1))
        h = template_hash(template)
        owned = [rs for rs in kube.store.dependents(d["metadata"]["uid"]) if rs.get("kind") == "ReplicaSet"]
        current = next(
            (rs for rs in owned if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == h), None
        )
        if current is None:
            labels = dict((template.get("metadata") or {}).get("labels") or {}, **{"pod-template-hash": h})
            tmpl = kube.copy(template)
            tmpl.setdefault("metadata", {})["labels"] = labels
            selector = kube.copy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = h
            current = kube.create(
                "replicasets",
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{d['metadata']['name']}-{h}",
                        "namespace": d["metadata"]["namespace"],
                        "labels": labels,
                        "annotations": {"deployment.kubernetes.io/revision": str(len(owned) + 1)},
                        "ownerReferences": [owner_ref(d)],
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": tmpl},
                },
            )
            if current is None:
                return
        elif int((current.get("spec") or {}).get("replicas", 0)) != replicas:
            new = kube.copy(current)
            new["spec"]["replicas"] = replicas
            current = kube.update("replicasets", new) or current
        for rs in owned:
            if (
                rs["metadata"]["uid"] != current["metadata"]["uid"]
                and int(rs["spec"].get("replicas", 0)) != 0
            ):
                new = kube.copy(rs)
                new["spec"]["replicas"] = 0
                kube.update("replicasets", new)
        pods = [p for rs in owned for p in self._active(self._owned_pods(rs))]
        ready = sum(1 for p in pods if pod_ready(p))
        updated = len(self._active(self._owned_pods(current)))
        status: JSON = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, replicas - ready),
        }
        if ready == 0:
            status.pop("readyReplicas")
            status.pop("availableReplicas")
        if status["unavailableReplicas"] == 0:
            status.pop("unavailableReplicas")
        status["conditions"] = [
            {
                "type": "Available",
                "status": "True" if ready >= replicas else "False",
                "reason": "MinimumReplicasAvailable" if ready >= replicas else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if ready >= replicas
                else "Deployment does not have minimum availability.",
            }
        ]
        old = (d.get("status") or {}).get("conditions") or []
        if old and old[0].get("status") == status["conditions"][0]["status"]:
            status["conditions"] = old
        else:
            status["conditions"][0]["lastTransitionTime"] = status["conditions"][0]["lastUpdateTime"] = (
                _now_rfc(kube)
            )
        kube.update_status("deployments", d, status)

    # ---- ReplicaSet ---------------------------------------------------------------------------------

    def _replicaset(self, rs: JSON) -> None:
        kube = self.kube
        spec = rs.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        pods = self._active(self._owned_pods(rs))
        if len(pods) < replicas:
            for _ in range(replicas - len(pods)):
                kube.create("pods", self._new_pod(rs, spec.get("template") or {}, None, {}))
        elif len(pods) > replicas:
            # Like the controller: unscheduled, then not ready, then the newest go first.
            victims = sorted(
                pods,
                key=lambda p: (
                    bool(p.get("spec", {}).get("nodeName")),
                    pod_ready(p),
                    _neg_ts(p["metadata"].get("creationTimestamp", "")),
                ),
            )[: len(pods) - replicas]
            for p in victims:
                kube.delete("pods", p)
        pods = self._active(self._owned_pods(rs))
        ready = sum(1 for p in pods if pod_ready(p))
        status: JSON = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        kube.update_status("replicasets", rs, status)

    # ---- StatefulSet --------------------------------------------------------------------------------

    def _statefulset(self, sts: JSON) -> None:
        kube = self.kube
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        name = sts["metadata"]["name"]
        ns = sts["metadata"]["namespace"]
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        parallel = spec.get("podManagementPolicy") == "Parallel"
        for i in range(replicas):
            pod_name = f"{name}-{i}"
            existing = kube.store.get(kube.pods, ns, pod_name)
            if existing is not None:
                if not parallel and not pod_ready(existing):
                    break  # OrderedReady: the next ordinal waits for this one
                continue
            pod = self._new_pod(
                sts,
                spec.get("template") or {},
                pod_name,
                {
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(i),
                    "controller-revision-hash": revision,
                },
            )
            pod["spec"]["hostname"] = pod_name
            if spec.get("serviceName"):
                pod["spec"]["subdomain"] = spec["serviceName"]
            kube.create("pods", pod)
            if not parallel:
                break
        for p in self._active(self._owned_pods(sts)):
            suffix = p["metadata"]["name"].rsplit("-", 1)[-1]
            if suffix.isdigit() and int(suffix) >= replicas:
                kube.delete("pods", p)
        pods = self._active(self._owned_pods(sts))
        ready = sum(1 for p in pods if pod_ready(p))
        status: JSON = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": len(pods),
            "updatedReplicas": len(pods),
            "currentRevision": revision,
            "updateRevision": revision,
        }
        kube.update_status("statefulsets", sts, status)

    # ---- DaemonSet ----------------------------------------------------------------------------------

    def _daemonset(self, ds: JSON, nodes: list[JSON]) -> None:
        kube = self.kube
        spec = ds.get("spec") or {}
        template = kube.copy(spec.get("template") or {})
        tspec = template.setdefault("spec", {})
        tolerations = list(tspec.get("tolerations") or [])
        for t in DAEMON_TOLERATIONS:
            if t not in tolerations:
                tolerations.append(t)
        tspec["tolerations"] = tolerations
        probe: JSON = {"metadata": {}, "spec": tspec}
        revision = template_hash(spec.get("template") or {})
        by_node: dict[str, list[JSON]] = {}
        for p in self._active(self._owned_pods(ds)):
            by_node.setdefault(p.get("spec", {}).get("nodeName") or "", []).append(p)
        desired = 0
        ready_count = 0
        scheduled = 0
        for node in nodes:
            name = node["metadata"]["name"]
            labels = node["metadata"].get("labels") or {}
            eligible = (
                not node["metadata"].get("deletionTimestamp")
                and pod_fits_labels(probe, labels, name)
                and untolerated_taint(probe, node.get("spec", {}).get("taints") or []) is None
            )
            if not eligible:
                continue
            desired += 1
            existing = by_node.pop(name, [])
            if existing:
                scheduled += 1
                ready_count += sum(1 for p in existing[:1] if pod_ready(p))
                continue
            pod = self._new_pod(
                ds, template, None, {"controller-revision-hash": revision, "pod-template-generation": "1"}
            )
            pod["spec"]["nodeName"] = name
            pod["spec"]["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [name]}]}
                        ]
                    }
                }
            }
            if node_ready(node) or True:
                kube.create("pods", pod)
        for stray in by_node.values():
            for p in stray:
                kube.delete("pods", p)
        status: JSON = {
            "observedGeneration": ds["metadata"].get("generation", 1),
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": scheduled,
            "updatedNumberScheduled": scheduled,
            "numberReady": ready_count,
            "numberAvailable": ready_count,
            "numberMisscheduled": 0,
        }
        if desired - ready_count:
            status["numberUnavailable"] = desired - ready_count
        kube.update_status("daemonsets", ds, status)


def _neg_ts(ts: str) -> str:
    # Sort newest first with an ascending sort on RFC 3339 strings.
    return "".join(chr(0x10FFFF - ord(c)) for c in ts)


def _now_rfc(kube: Kube) -> str:
    from sandbox.kube.store import rfc3339

    return rfc3339(kube.now())
