"""Pre-provisioning: Bottlerocket capacity for a drain wave, up before the first eviction.

Without it every eviction waits for Karpenter: the evicted pod goes Pending, a node is launched
(~55 s to Ready), the pod starts, and only then does its PodDisruptionBudget allow the next eviction —
a wave drains at the pace of node launches. With it, placeholder pods ("headroom") that request what
the wave's displaced pods request, each pinned to the replacement NodePool its pod will need, are
created first and the drain starts at once; Karpenter launches for the placeholders and the first
round's evicted pods in one batch; once the placeholders all run (or the wait runs out) they are
deleted: every later round's evicted pod finds an empty node waiting for it, and each PDB frees
again within seconds.

The placeholders are plain Deployments of the pause image in the bot's namespace, one per
(NodePool, requests) shape, labelled with the wave; they tolerate every taint (the replacement pools
mirror the drained groups' taints). Deleting them is idempotent and happens again before verifying
and on rollback, so a crash between creation and release leaves nothing behind. An empty node stays
for the pool's consolidateAfter (5m), long enough for the evictions to land.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.adapters.errors import NotFound
from bot.adapters.kube import KubeAdapter
from bot.engine.drain import DrainPlan

JSON = dict[str, Any]

HEADROOM_LABEL = "migratebot.io/headroom"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
NODEPOOL_LABEL = "karpenter.sh/nodepool"


@dataclass(frozen=True, order=True)
class Shape:
    pool: str
    cpu_millis: int
    memory_bytes: int

    @property
    def name(self) -> str:
        return f"{self.pool}-{self.cpu_millis}m-{self.memory_bytes // 2**20}mi"


def shapes(plans: Iterable[DrainPlan], pool_of_node: Mapping[str, str]) -> Counter[Shape]:
    """One placeholder per pod the drains will evict, shaped like it, in its replacement pool."""
    counts: Counter[Shape] = Counter()
    for plan in plans:
        pool = pool_of_node.get(plan.node)
        if pool is None:
            continue
        for pod in plan.evict:
            if pod.cpu_millis or pod.memory_bytes:
                counts[Shape(pool, pod.cpu_millis, pod.memory_bytes)] += 1
    return counts


def deployments(wave_id: int, namespace: str, counts: Mapping[Shape, int]) -> list[JSON]:
    out = []
    for index, (shape, replicas) in enumerate(sorted(counts.items())):
        name = f"migratebot-headroom-w{wave_id}-{index}"
        labels = {HEADROOM_LABEL: str(wave_id), "app.kubernetes.io/managed-by": "migratebot"}
        selector = {HEADROOM_LABEL: str(wave_id), "migratebot.io/headroom-shape": str(index)}
        requests = {"cpu": f"{shape.cpu_millis}m", "memory": str(shape.memory_bytes)}
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {"migratebot.io/shape": shape.name},
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": selector},
                    "template": {
                        "metadata": {"labels": {**labels, **selector}},
                        "spec": {
                            "nodeSelector": {NODEPOOL_LABEL: shape.pool},
                            "tolerations": [{"operator": "Exists"}],
                            "terminationGracePeriodSeconds": 0,
                            "automountServiceAccountToken": False,
                            "containers": [
                                {
                                    "name": "pause",
                                    "image": PAUSE_IMAGE,
                                    "resources": {"requests": requests, "limits": requests},
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "runAsNonRoot": True,
                                        "runAsUser": 65535,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                }
                            ],
                        },
                    },
                },
            }
        )
    return out


def _deployments_path(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


def create(kube: KubeAdapter, objects: Iterable[JSON]) -> int:
    """Create the placeholders (those already there are kept); returns how many pods they ask for."""
    pods = 0
    for obj in objects:
        meta = obj["metadata"]
        try:
            kube.request("GET", f"{_deployments_path(meta['namespace'])}/{meta['name']}", what="get headroom")
        except NotFound:
            kube.request(
                "POST",
                _deployments_path(meta["namespace"]),
                body=obj,
                content_type="application/json",
                what="create headroom",
            )
        pods += int(obj["spec"]["replicas"])
    return pods


def ready(kube: KubeAdapter, namespace: str, wave_id: int) -> int:
    """How many of the wave's placeholder pods are running Ready on a node."""
    listed = kube.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods",
        query=[("labelSelector", f"{HEADROOM_LABEL}={wave_id}")],
        what="list headroom pods",
    )
    return sum(
        1
        for pod in listed.get("items") or ()
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or ()
        )
    )


def release(kube: KubeAdapter, namespace: str, wave_id: int) -> int:
    """Delete the wave's placeholders (their pods go with them); returns how many were deleted."""
    try:
        listed = kube.request(
            "GET",
            _deployments_path(namespace),
            query=[("labelSelector", f"{HEADROOM_LABEL}={wave_id}")],
            what="list headroom",
        )
    except NotFound:
        return 0  # no such namespace: nothing was ever created
    deleted = 0
    for obj in listed.get("items") or ():
        try:
            kube.request(
                "DELETE",
                f"{_deployments_path(namespace)}/{obj['metadata']['name']}",
                body={"propagationPolicy": "Background", "gracePeriodSeconds": 0},
                content_type="application/json",
                what="release headroom",
            )
            deleted += 1
        except NotFound:
            pass
    return deleted
