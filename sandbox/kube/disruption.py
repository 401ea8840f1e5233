"""PodDisruptionBudget status and the eviction decision.

Emulates pkg/controller/disruption (status) and registry/core/pod/storage/eviction.go (the decision).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON
from sandbox.kube.resources import Registry, ResourceType
from sandbox.kube.selectors import label_selector_from_object, labels_match
from sandbox.kube.store import Event, Store, Watcher, rfc3339

# The apiserver's PDB refusal is NewTooManyRequests(…, 0) (registry/core/pod/storage/eviction.go): no
# Retry-After header. With one, client-go would silently retry each eviction 10 times (100 s) and
# kubectl drain's --timeout would no longer be what bounds a blocked drain; drain retries every 5 s.
EVICTION_RETRY_AFTER = 0


def pod_ready(pod: JSON) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _scaled(value: int | str, total: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    pct = int(str(value).rstrip("%"))
    raw = pct * total / 100
    return math.ceil(raw) if round_up else math.floor(raw)


class Disruption:
    """Computes PDB status from the pods its selector matches (Ready pods count as healthy)."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.pods: ResourceType = registry.must_get("", "v1", "pods")
        self.pdbs: ResourceType = registry.must_get("policy", "v1", "poddisruptionbudgets")
        self.registry = registry
        self._dirty: set[str] = set()
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._watchers: list[Watcher] = []
        # Called with (namespace, pod name, pod uid, HTTP code, who) after every eviction attempt:
        # the ground truth records them (201 evicted, 429 refused by a budget).
        self.observers: list[Callable[[str, str, str, int, str], None]] = []

    # ---- status ---------------------------------------------------------------------------------

    def matching_pods(self, pdb: JSON) -> list[JSON]:
        reqs = label_selector_from_object(pdb.get("spec", {}).get("selector"))
        if reqs is None:
            return []
        ns = pdb["metadata"]["namespace"]
        items, _, _ = self.store.list_objects(self.pods, ns, predicate=lambda p: labels_match(reqs, p))
        return items

    def _expected_from_controllers(self, pods: list[JSON]) -> int:
        """Sum of the owning controllers' replicas (the disruption controller's getExpectedScale)."""
        total = 0
        seen: set[str] = set()
        for pod in pods:
            ref = next((r for r in pod["metadata"].get("ownerReferences") or () if r.get("controller")), None)
            if ref is None:
                total += 1
                continue
            if ref["uid"] in seen:
                continue
            seen.add(ref["uid"])
            owner = self.store.by_uid(ref["uid"])
            if owner is not None and isinstance(owner.get("spec", {}).get("replicas"), int):
                total += owner["spec"]["replicas"]
            else:
                total += sum(
                    1
                    for p in pods
                    if any(r.get("uid") == ref["uid"] for r in p["metadata"].get("ownerReferences") or ())
                )
        return total

    def compute_status(self, pdb: JSON) -> JSON:
        spec = pdb.get("spec") or {}
        pods = [
            p
            for p in self.matching_pods(pdb)
            if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        ]
        disrupted = dict((pdb.get("status") or {}).get("disruptedPods") or {})
        live = {p["metadata"]["name"] for p in pods}
        disrupted = {k: v for k, v in disrupted.items() if k in live}
        healthy = sum(1 for p in pods if pod_ready(p) and p["metadata"]["name"] not in disrupted)
        if "maxUnavailable" in spec:
            expected = self._expected_from_controllers(pods)
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, round_up=True))
        elif isinstance(spec.get("minAvailable"), str):
            expected = self._expected_from_controllers(pods)
            desired = _scaled(spec["minAvailable"], expected, round_up=True)
        else:
            expected = len(pods)
            desired = int(spec.get("minAvailable", 1))
        allowed = max(0, healthy - desired)
        old_conditions = (pdb.get("status") or {}).get("conditions") or []
        old = next((c for c in old_conditions if c.get("type") == "DisruptionAllowed"), None)
        cond_status = "True" if allowed > 0 else "False"
        reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
        if old is not None and old.get("status") == cond_status:
            condition = old
        else:
            condition = {
                "type": "DisruptionAllowed",
                "status": cond_status,
                "reason": reason,
                "message": "",
                "observedGeneration": pdb["metadata"].get("generation", 1),
                "lastTransitionTime": rfc3339(self.store.clock()),
            }
        status: JSON = {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
            "conditions": [condition],
        }
        if disrupted:
            status["disruptedPods"] = disrupted
        return status

    def refresh(self, pdb: JSON) -> JSON:
        with self.store.lock:
            status = self.compute_status(pdb)
            if status == pdb.get("status"):
                return pdb
            return self.store.update(self.pdbs, dict(pdb, status=status), subresource="status", force=True)

    def refresh_namespace(self, namespace: str) -> None:
        with self.store.lock:
            pdbs, _, _ = self.store.list_objects(self.pdbs, namespace)
            for pdb in pdbs:
                self.refresh(pdb)

    # ---- eviction -------------------------------------------------------------------------------

    def evict(self, namespace: str, name: str, grace_period: int | None, *, by: str = "") -> None:
        """Decide and carry out a policy/v1 Eviction; raises ApiError(429) when a PDB forbids it."""
        with self.store.lock:
            uid = (self.store.get(self.pods, namespace, name) or {}).get("metadata", {}).get("uid", "")
            try:
                self._evict(namespace, name, grace_period)
            except errors.ApiError as e:
                for observe in self.observers:
                    observe(namespace, name, uid, e.code, by)
                raise
            for observe in self.observers:
                observe(namespace, name, uid, 201, by)

    def _evict(self, namespace: str, name: str, grace_period: int | None) -> None:
        with self.store.lock:
            pod = self.store.must_get(self.pods, namespace, name)
            phase = (pod.get("status") or {}).get("phase")
            # Pods already terminating, finished or never started can go without consulting a PDB.
            if not (pod["metadata"].get("deletionTimestamp") or phase in ("Succeeded", "Failed", "Pending")):
                pdbs, _, _ = self.store.list_objects(self.pdbs, namespace)
                matching = []
                for pdb in pdbs:
                    reqs = label_selector_from_object(pdb.get("spec", {}).get("selector"))
                    if reqs is not None and labels_match(reqs, pod):
                        matching.append(pdb)
                if len(matching) > 1:
                    raise errors.ApiError(
                        500,
                        "InternalError",
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                        "does not support.",
                    )
                if matching:
                    pdb = self.refresh(matching[0])
                    status = pdb["status"]
                    if status["disruptionsAllowed"] <= 0:
                        raise errors.too_many_requests(
                            "Cannot evict pod as it would violate the pod's disruption budget.",
                            EVICTION_RETRY_AFTER,
                            [
                                {
                                    "reason": "DisruptionBudget",
                                    "message": f"The disruption budget {pdb['metadata']['name']} needs "
                                    f"{status['desiredHealthy']} healthy pods and has "
                                    f"{status['currentHealthy']} currently",
                                }
                            ],
                        )
                    new_status = dict(status)
                    new_status["disruptionsAllowed"] = status["disruptionsAllowed"] - 1
                    new_status["disruptedPods"] = dict(
                        status.get("disruptedPods") or {}, **{name: rfc3339(self.store.clock())}
                    )
                    self.store.update(
                        self.pdbs, dict(pdb, status=new_status), subresource="status", force=True
                    )
            # With the controllers' kubelet running the pod stays Terminating for its grace period.
            self.store.delete(self.pods, namespace, name, grace_period=grace_period)

    # ---- background refresh (the disruption controller) -----------------------------------------

    def start(self) -> None:
        def mark(event: Event) -> None:
            ns = event.object["metadata"].get("namespace", "")
            with self._wake:
                self._dirty.add(ns)
                self._wake.notify()

        with self.store.lock:
            self._watchers = [self.store.subscribe(self.pods, mark), self.store.subscribe(self.pdbs, mark)]
            # Budgets loaded before start get their status now, before anyone can read them.
            pdbs, _, _ = self.store.list_objects(self.pdbs)
            for ns in sorted({p["metadata"]["namespace"] for p in pdbs}):
                self.refresh_namespace(ns)
        self._thread = threading.Thread(target=self._run, name="sandbox-disruption", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for w in self._watchers:
            w.stop()
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._dirty and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                dirty, self._dirty = self._dirty, set()
            for ns in sorted(dirty):
                self.refresh_namespace(ns)
