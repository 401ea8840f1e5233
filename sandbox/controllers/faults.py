"""Faults the composition and admin layers switch on at runtime (issue 4, item 5)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from sandbox.kube.jsontypes import JSON
from sandbox.kube.selectors import Requirement, labels_match, parse_label_selector


@dataclass(frozen=True)
class NeverReady:
    node: str | None = None
    nodepool: str | None = None
    node_group: str | None = None

    def matches(self, node: JSON) -> bool:
        labels = node["metadata"].get("labels") or {}
        if self.node is not None and node["metadata"]["name"] != self.node:
            return False
        if self.nodepool is not None and labels.get("karpenter.sh/nodepool") != self.nodepool:
            return False
        return self.node_group is None or labels.get("eks.amazonaws.com/nodegroup") == self.node_group


@dataclass(frozen=True)
class CrashOnBottlerocket:
    namespace: str | None
    selector: tuple[Requirement, ...]
    path: str

    def matches(self, pod: JSON) -> bool:
        if self.namespace is not None and pod["metadata"].get("namespace") != self.namespace:
            return False
        return labels_match(list(self.selector), pod)


class Faults:
    """Thread-safe registry of active faults, keyed by the id `add` returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._never_ready: dict[int, NeverReady] = {}
        self._crash: dict[int, CrashOnBottlerocket] = {}

    def add_never_ready(self, fault: NeverReady) -> int:
        with self._lock:
            fid = next(self._ids)
            self._never_ready[fid] = fault
            return fid

    def add_crash(self, namespace: str | None, selector: str, path: str) -> int:
        fault = CrashOnBottlerocket(namespace, tuple(parse_label_selector(selector)), path)
        with self._lock:
            fid = next(self._ids)
            self._crash[fid] = fault
            return fid

    def clear(self, fault_id: int | None = None) -> None:
        with self._lock:
            if fault_id is None:
                self._never_ready.clear()
                self._crash.clear()
            else:
                self._never_ready.pop(fault_id, None)
                self._crash.pop(fault_id, None)

    def never_ready(self, node: JSON) -> bool:
        with self._lock:
            return any(f.matches(node) for f in self._never_ready.values())

    def crash(self, pod: JSON) -> CrashOnBottlerocket | None:
        with self._lock:
            return next((f for f in self._crash.values() if f.matches(pod)), None)

    def describe(self) -> JSON:
        with self._lock:
            return {
                "nodeNeverReady": {
                    str(k): {"node": f.node, "nodepool": f.nodepool, "nodeGroup": f.node_group}
                    for k, f in self._never_ready.items()
                },
                "crashOnBottlerocket": {
                    str(k): {"namespace": f.namespace, "path": f.path} for k, f in self._crash.items()
                },
            }
