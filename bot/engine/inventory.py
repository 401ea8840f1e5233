"""Inventory of one cluster: nodes with OS family, owner, zone and instance id; pods per node with
their workloads and PodDisruptionBudgets.

Built from one paginated list of nodes and one paginated list of all pods (plus one list each of
ReplicaSets, DaemonSets and PDBs) — never a call per node: at 5,000 nodes that would be 5,000 round
trips. Each page is parsed by orjson and reduced to small records at once, so peak memory is one page
of JSON plus the records.
"""

from __future__ import annotations

import gc
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from bot.adapters.kube import Expired, KubeAdapter
from bot.engine.pods import (
    JSON,
    NodeInfo,
    OsFamily,
    PdbInfo,
    PodInfo,
    node_from_json,
    pdb_from_json,
    pod_from_json,
)

EMPTY: tuple[PodInfo, ...] = ()

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a cluster's lists are parsed and reduced.

    Parsing 100,000 pods allocates millions of dicts, which reference counting frees page by page;
    the collector, set off by the allocations alone, would still rescan every object kept so far at
    each full collection — half of the 14 s a wave's reports took at 100,000 pods (measured), and
    parsing one page of 1,000 pods took 80 ms with it, 7 ms without. JSON parses into no cycles.
    Pauses nest and overlap across threads: the last one to end turns the collector back on, if it
    was on when the first began."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


@dataclass(frozen=True)
class Inventory:
    nodes: Mapping[str, NodeInfo]
    pods_by_node: Mapping[str, tuple[PodInfo, ...]]
    pdbs: Mapping[str, PdbInfo]
    daemonsets: frozenset[tuple[str, str]]
    # Pods not bound to any node (Pending) are kept apart: no drain touches them.
    unscheduled: tuple[PodInfo, ...] = field(default=())

    # ---- building -------------------------------------------------------------------------------

    @classmethod
    def build(
        cls, kube: KubeAdapter, *, page_size: int | None = None, resolve_replicasets: bool = True
    ) -> Inventory:
        for attempt in range(3):
            try:
                with gc_paused():
                    return cls._build(kube, page_size, resolve_replicasets)
            except Expired:
                # A continue token outlived its revision (a list of 100,000 pods takes seconds):
                # start over, as kubectl's pager does.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _build(cls, kube: KubeAdapter, page_size: int | None, resolve_replicasets: bool) -> Inventory:
        rs_owners = replicaset_owners(kube.list_replicasets()) if resolve_replicasets else None
        daemonsets = kube.list_daemonsets()
        pdbs = kube.list_pdbs()
        nodes = [node_from_json(n) for page in kube.node_pages(page_size=page_size) for n in page]
        pods = (pod_from_json(p, rs_owners) for page in kube.pod_pages(page_size=page_size) for p in page)
        return cls.from_records(nodes, pods, [pdb_from_json(p) for p in pdbs], _names(daemonsets))

    @classmethod
    def from_objects(
        cls,
        nodes: Iterable[JSON],
        pods: Iterable[JSON],
        *,
        pdbs: Iterable[JSON] = (),
        replicasets: Iterable[JSON] | None = None,
        daemonsets: Iterable[JSON] = (),
    ) -> Inventory:
        """The same inventory from API objects in hand (tests, previews of a file)."""
        rs_owners = replicaset_owners(replicasets) if replicasets is not None else None
        return cls.from_records(
            [node_from_json(n) for n in nodes],
            (pod_from_json(p, rs_owners) for p in pods),
            [pdb_from_json(p) for p in pdbs],
            _names(daemonsets),
        )

    @classmethod
    def from_records(
        cls,
        nodes: Sequence[NodeInfo],
        pods: Iterable[PodInfo],
        pdbs: Sequence[PdbInfo],
        daemonsets: frozenset[tuple[str, str]],
    ) -> Inventory:
        pdbs_by_ns: dict[str, list[PdbInfo]] = defaultdict(list)
        for pdb in pdbs:
            if pdb.selector is not None:
                pdbs_by_ns[pdb.namespace].append(pdb)
        by_node: dict[str, list[PodInfo]] = defaultdict(list)
        unscheduled: list[PodInfo] = []
        for pod in pods:
            candidates = pdbs_by_ns.get(pod.namespace)
            if candidates:
                covering = tuple(
                    p.key for p in candidates if p.selector is not None and p.selector.matches(pod.labels)
                )
                if covering:
                    pod = replace(pod, pdbs=covering)
            if pod.node_name:
                by_node[pod.node_name].append(pod)
            else:
                unscheduled.append(pod)
        return cls(
            nodes={n.name: n for n in nodes},
            pods_by_node={k: tuple(v) for k, v in by_node.items()},
            pdbs={p.key: p for p in pdbs},
            daemonsets=daemonsets,
            unscheduled=tuple(unscheduled),
        )

    # ---- reading --------------------------------------------------------------------------------

    def pods_on(self, node: str) -> tuple[PodInfo, ...]:
        return self.pods_by_node.get(node, EMPTY)

    def nodes_of(self, family: OsFamily) -> list[NodeInfo]:
        return [n for n in self.nodes.values() if n.os_family == family]

    @property
    def pod_count(self) -> int:
        return sum(len(p) for p in self.pods_by_node.values()) + len(self.unscheduled)

    def budget_allowances(self) -> dict[str, int]:
        """PDB key → disruptionsAllowed when the inventory was taken (the drain's per-PDB gate)."""
        return {k: p.disruptions_allowed for k, p in self.pdbs.items()}


def replicaset_owners(replicasets: Iterable[JSON]) -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, ReplicaSet) → (kind, name) of its controller (a Deployment, usually)."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        ref = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), None)
        if ref is not None:
            out[(str(meta.get("namespace", "")), str(meta.get("name", "")))] = (
                str(ref.get("kind", "")),
                str(ref.get("name", "")),
            )
    return out


def _names(objects: Iterable[JSON]) -> frozenset[tuple[str, str]]:
    return frozenset(
        (str((o.get("metadata") or {}).get("namespace", "")), str((o.get("metadata") or {}).get("name", "")))
        for o in objects
    )
