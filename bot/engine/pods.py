"""Pods and nodes as the engine sees them: small frozen records parsed from API JSON once.

Parsing keeps only what the engine decides on, so an inventory of 100,000 pods holds 100,000 small
records instead of 100,000 full pod documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.adapters.kube import parse_time
from bot.domain.quantities import byte_count, cpu_millis

JSON = dict[str, Any]

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
CRITICAL_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})

_AL2 = re.compile(r"^Amazon Linux 2(\s|$)")


class OsFamily(StrEnum):
    AL2 = "AL2"
    BOTTLEROCKET = "BOTTLEROCKET"
    OTHER = "OTHER"


def os_family(os_image: str) -> OsFamily:
    """From status.nodeInfo.osImage: "Amazon Linux 2" → AL2 ("Amazon Linux 2023" is not),
    "Bottlerocket OS 1.26.2 (aws-k8s-1.31)" → BOTTLEROCKET."""
    if _AL2.match(os_image):
        return OsFamily.AL2
    if os_image.startswith("Bottlerocket OS"):
        return OsFamily.BOTTLEROCKET
    return OsFamily.OTHER


class NodeOwnerKind(StrEnum):
    KARPENTER = "karpenter"  # name: the NodePool
    NODE_GROUP = "nodegroup"  # name: the EKS managed node group
    SELF_MANAGED = "self-managed"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    uid: str
    os_family: OsFamily
    os_image: str
    owner_kind: NodeOwnerKind
    owner_name: str
    zone: str
    instance_id: str
    instance_type: str
    unschedulable: bool
    ready: bool
    created: datetime | None
    labels: Mapping[str, str]
    taints: tuple[tuple[str, str, str], ...] = ()  # (key, value, effect)


def instance_id_from_provider_id(provider_id: str) -> str:
    """aws:///us-west-2a/i-0123… → i-0123…; anything not AWS-shaped → ""."""
    if not provider_id.startswith("aws://"):
        return ""
    last = provider_id.rsplit("/", 1)[-1]
    return last if last.startswith("i-") else ""


def node_from_json(obj: JSON) -> NodeInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    labels: dict[str, str] = meta.get("labels") or {}
    image = str((status.get("nodeInfo") or {}).get("osImage", ""))
    if labels.get(NODEPOOL_LABEL):
        owner_kind, owner_name = NodeOwnerKind.KARPENTER, labels[NODEPOOL_LABEL]
    elif labels.get(NODEGROUP_LABEL):
        owner_kind, owner_name = NodeOwnerKind.NODE_GROUP, labels[NODEGROUP_LABEL]
    else:
        owner_kind, owner_name = NodeOwnerKind.SELF_MANAGED, ""
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    return NodeInfo(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        os_family=os_family(image),
        os_image=image,
        owner_kind=owner_kind,
        owner_name=owner_name,
        zone=labels.get("topology.kubernetes.io/zone")
        or labels.get("failure-domain.beta.kubernetes.io/zone", ""),
        instance_id=instance_id_from_provider_id(str(spec.get("providerID", ""))),
        instance_type=labels.get("node.kubernetes.io/instance-type")
        or labels.get("beta.kubernetes.io/instance-type", ""),
        unschedulable=bool(spec.get("unschedulable", False)),
        ready=ready,
        created=parse_time(meta.get("creationTimestamp")),
        labels=labels,
        taints=tuple(
            (str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", "")))
            for t in spec.get("taints") or ()
        ),
    )


@dataclass(frozen=True, slots=True)
class PodInfo:
    """One pod. `controller_kind/name` is the controller ownerReference as the API has it;
    `workload_kind/name` resolves a ReplicaSet to its Deployment when there is one."""

    namespace: str
    name: str
    uid: str
    node_name: str
    phase: str
    ready: bool
    terminating: bool
    controller_kind: str
    controller_name: str
    workload_kind: str
    workload_name: str
    priority_class_name: str
    has_local_storage: bool
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    pdbs: tuple[str, ...] = ()
    # What the scheduler reserves for it: the containers' requests (or an init container's, if larger).
    cpu_millis: int = 0
    memory_bytes: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_mirror(self) -> bool:
        return MIRROR_ANNOTATION in self.annotations

    @property
    def is_daemonset(self) -> bool:
        return self.controller_kind == "DaemonSet"

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @property
    def do_not_disrupt(self) -> bool:
        return self.annotations.get(DO_NOT_DISRUPT) == "true"

    @property
    def critical(self) -> bool:
        return self.priority_class_name in CRITICAL_PRIORITY_CLASSES


def _resolve_workload(
    namespace: str,
    kind: str,
    name: str,
    labels: Mapping[str, str],
    replicaset_owners: Mapping[tuple[str, str], tuple[str, str]] | None,
) -> tuple[str, str]:
    if kind != "ReplicaSet":
        return kind, name
    if replicaset_owners is not None:
        # Listed: the ReplicaSet's own controller (or the ReplicaSet itself when it has none).
        return replicaset_owners.get((namespace, name), (kind, name))
    # Not listed: a Deployment names its ReplicaSets NAME-<pod-template-hash>.
    template_hash = labels.get("pod-template-hash", "")
    if template_hash and name.endswith("-" + template_hash):
        return "Deployment", name[: -len(template_hash) - 1]
    return kind, name


def _controller(meta: JSON) -> tuple[str, str]:
    controller = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), None)
    if controller is None:
        return "", ""
    return str(controller.get("kind", "")), str(controller.get("name", ""))


def pod_workload(
    obj: JSON, replicaset_owners: Mapping[tuple[str, str], tuple[str, str]] | None = None
) -> tuple[str, str, str]:
    """(kind, namespace, name) of a pod's workload — what `pod_from_json(obj).workload_kind/name`
    resolve to, or ("Pod", namespace, name) without a controller — read without building the PodInfo
    (the reports need it of every pod, the PodInfo only of the wave's)."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace", ""))
    kind, cname = _controller(meta)
    workload_kind, workload_name = _resolve_workload(
        namespace, kind, cname, meta.get("labels") or {}, replicaset_owners
    )
    if workload_kind:
        return workload_kind, namespace, workload_name
    return "Pod", namespace, str(meta.get("name", ""))


def pod_from_json(
    obj: JSON, replicaset_owners: Mapping[tuple[str, str], tuple[str, str]] | None = None
) -> PodInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    namespace = str(meta.get("namespace", ""))
    labels: dict[str, str] = meta.get("labels") or {}
    kind, cname = _controller(meta)
    workload_kind, workload_name = _resolve_workload(namespace, kind, cname, labels, replicaset_owners)
    return PodInfo(
        namespace=namespace,
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        node_name=str(spec.get("nodeName") or ""),
        phase=str(status.get("phase", "")),
        ready=any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
        ),
        terminating=bool(meta.get("deletionTimestamp")),
        controller_kind=kind,
        controller_name=cname,
        workload_kind=workload_kind,
        workload_name=workload_name,
        priority_class_name=str(spec.get("priorityClassName") or ""),
        has_local_storage=any("emptyDir" in v for v in spec.get("volumes") or ()),
        labels=labels,
        annotations=meta.get("annotations") or {},
        cpu_millis=_requested(spec, "cpu", cpu_millis),
        memory_bytes=_requested(spec, "memory", byte_count),
    )


def _requested(spec: JSON, resource: str, parse: Callable[[Any], int]) -> int:
    """The pod's effective request for `resource`, as the scheduler counts it."""

    def of(container: JSON) -> int:
        return parse(((container.get("resources") or {}).get("requests") or {}).get(resource))

    running = sum(of(c) for c in spec.get("containers") or ())
    init = max((of(c) for c in spec.get("initContainers") or ()), default=0)
    return max(running, init)


# ---- label selectors (metav1.LabelSelector) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """matchLabels + matchExpressions; `None` selector objects select nothing (as a PDB's does)."""

    match_labels: tuple[tuple[str, str], ...]
    expressions: tuple[tuple[str, str, frozenset[str]], ...]

    @classmethod
    def from_json(cls, obj: JSON | None) -> LabelSelector | None:
        if obj is None:
            return None
        labels = tuple(sorted((str(k), str(v)) for k, v in (obj.get("matchLabels") or {}).items()))
        exprs = tuple(
            (
                str(e.get("key", "")),
                str(e.get("operator", "")),
                frozenset(str(v) for v in e.get("values") or ()),
            )
            for e in obj.get("matchExpressions") or ()
        )
        return cls(labels, exprs)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for k, v in self.match_labels:
            if labels.get(k) != v:
                return False
        for key, op, values in self.expressions:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True, slots=True)
class PdbInfo:
    namespace: str
    name: str
    selector: LabelSelector | None
    disruptions_allowed: int

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def pdb_from_json(obj: JSON) -> PdbInfo:
    meta = obj.get("metadata") or {}
    return PdbInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        # An empty selector {} in policy/v1 selects every pod of the namespace; a missing one, none.
        selector=LabelSelector.from_json((obj.get("spec") or {}).get("selector")),
        disruptions_allowed=int((obj.get("status") or {}).get("disruptionsAllowed", 0)),
    )
