"""What really happened, for tests and other issues to check their figures against (issue 4, item 6).

Fed from store events (pods) and by the controllers (nodes, evictions); read with `snapshot()`, a
plain JSON-able dict. Times are emulated seconds since the epoch (the ScaledClock's).
"""

from __future__ import annotations

import threading
from typing import Any

from sandbox.controllers.common import condition_true, controller_ref
from sandbox.kube.disruption import pod_ready
from sandbox.kube.jsontypes import JSON
from sandbox.kube.selectors import label_selector_from_object, labels_match
from sandbox.kube.store import Event, Store


def _key(obj: JSON) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class GroundTruth:
    def __init__(self, store: Store, clock: Any) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self.nodes: dict[str, JSON] = {}
        self.pods: dict[str, JSON] = {}  # by uid
        self.evictions: list[JSON] = []
        self.violations: list[JSON] = []
        self._evicted_uids: dict[str, str] = {}  # uid -> by
        self._awaiting_replacement: dict[str, list[str]] = {}  # owner uid -> pod uids gone
        self._pdbs = store.registry.must_get("policy", "v1", "poddisruptionbudgets")
        self._pod_rt = store.registry.must_get("", "v1", "pods")

    # ---- nodes (the controllers report) ---------------------------------------------------------

    def node(self, name: str, **fields: object) -> None:
        with self._lock:
            record = self.nodes.setdefault(name, {"name": name})
            for k, v in fields.items():
                if k in ("launched", "registered", "ready", "deleted", "disrupted") and k in record:
                    continue  # first time wins
                record[k] = v

    # ---- evictions (Disruption.observers) -------------------------------------------------------

    def eviction(self, namespace: str, name: str, uid: str, code: int, by: str) -> None:
        now = self._clock()
        with self._lock:
            self.evictions.append(
                {"at": now, "namespace": namespace, "pod": name, "uid": uid, "code": code, "by": by}
            )
            if code == 201:
                self._evicted_uids[uid] = by
                record = self.pods.get(uid)
                if record is not None:
                    record.setdefault("evicted", {"at": now, "by": by})

    # ---- pods (store subscriber; runs under the store lock) -------------------------------------

    def on_pod(self, event: Event) -> None:
        pod = event.object
        meta = pod["metadata"]
        uid = meta["uid"]
        now = self._clock()
        lost_readiness = False
        with self._lock:
            record = self.pods.get(uid)
            if record is None:
                record = {"pod": _key(pod), "uid": uid, "created": now}
                self.pods[uid] = record
                ref = controller_ref(pod)
                if ref is not None:
                    waiting = self._awaiting_replacement.get(ref["uid"])
                    if waiting:
                        gone = self.pods.get(waiting.pop(0))
                        if gone is not None:
                            gone["replacement"] = _key(pod)
                            record["replaces"] = gone["pod"]
            node = pod.get("spec", {}).get("nodeName")
            if node and "scheduled" not in record:
                record["scheduled"] = now
                record["node"] = node
            ready = pod_ready(pod) and event.type != "DELETED"
            if ready and "ready" not in record:
                record["ready"] = now
            was_ready = event.old is not None and pod_ready(event.old)
            going = "deleting" in record or "deleted" in record
            if meta.get("deletionTimestamp") and "deleting" not in record:
                record["deleting"] = now
            if event.type == "DELETED":
                record["deleted"] = now
            if not going and ("deleting" in record or "deleted" in record):
                # Its controller replaces it as soon as it is terminating, as ReplicaSets do.
                ref = controller_ref(pod)
                if ref is not None:
                    self._awaiting_replacement.setdefault(ref["uid"], []).append(uid)
            if was_ready and not ready:
                # A voluntary disruption outside the eviction API (delete, node removal) is what a
                # PDB cannot guard; a crash is involuntary and not a violation.
                voluntary = bool(meta.get("deletionTimestamp")) or event.type == "DELETED"
                lost_readiness = voluntary and uid not in self._evicted_uids
        if lost_readiness:
            self._check_pdbs(pod, now)

    def _check_pdbs(self, pod: JSON, now: float) -> None:
        ns = pod["metadata"].get("namespace", "")
        pdbs, _, _ = self._store.list_objects(self._pdbs, ns)
        for pdb in pdbs:
            reqs = label_selector_from_object(pdb.get("spec", {}).get("selector"))
            if reqs is None or not labels_match(reqs, pod):
                continue
            desired = (pdb.get("status") or {}).get("desiredHealthy")
            if desired is None:
                continue
            pods, _, _ = self._store.list_objects(self._pod_rt, ns)
            pods = [p for p in pods if labels_match(reqs, p)]
            healthy = sum(1 for p in pods if pod_ready(p) and p["metadata"]["uid"] != pod["metadata"]["uid"])
            if healthy < desired:
                with self._lock:
                    self.violations.append(
                        {
                            "at": now,
                            "pdb": _key(pdb),
                            "pod": _key(pod),
                            "healthy": healthy,
                            "desiredHealthy": desired,
                            "cause": "pod deleted without a permitted eviction",
                        }
                    )

    def snapshot(self) -> JSON:
        with self._lock:
            pods: dict[str, JSON] = {}
            for record in self.pods.values():
                # A name reused (StatefulSet) keeps its latest incarnation under the name.
                pods[record["pod"]] = dict(record)
            return {
                "nodes": {k: dict(v) for k, v in self.nodes.items()},
                "pods": pods,
                "evictions": [dict(e) for e in self.evictions],
                "pdbViolations": [dict(v) for v in self.violations],
            }


def node_is_ready(node: JSON) -> bool:
    return condition_true(node, "Ready")
