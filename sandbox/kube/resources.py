"""The kinds the sandbox serves: one `ResourceType` per group/version/resource, as discovery lists them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.kube.crd import CrdSchema

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class PrinterColumn:
    """A CRD additionalPrinterColumn (JSONPath over the object) rendered in server-side tables."""

    name: str
    type: str
    json_path: str
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Subresources served below the object: "status", "eviction" (pods), "scale".
    subresources: tuple[str, ...] = ()
    # Field selectors this kind accepts besides metadata.name/metadata.namespace (the apiserver
    # refuses any other with 400 "field label not supported").
    field_labels: tuple[str, ...] = ()
    # Built-in kinds accept strategic merge patch; custom resources answer 415 to it.
    custom: bool = False
    printer_columns: tuple[PrinterColumn, ...] = ()
    schema: CrdSchema | None = field(default=None, compare=False, hash=False)

    @property
    def key(self) -> str:
        """Storage key: one store per group/resource, whatever version is asked (as etcd keys)."""
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


_POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
_EVENTS_V1_FIELDS = (
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "reason",
    "reportingController",
    "type",
)

BUILTINS: tuple[ResourceType, ...] = (
    ResourceType(
        "", "v1", "namespaces", "Namespace", False, "namespace", ("ns",),
        subresources=("status",), field_labels=("status.phase",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    ResourceType(
        "", "v1", "nodes", "Node", False, "node", ("no",),
        subresources=("status",), field_labels=("spec.unschedulable",),
    ),
    ResourceType(
        "", "v1", "pods", "Pod", True, "pod", ("po",), ("all",),
        subresources=("status", "eviction"), field_labels=_POD_FIELDS,
    ),
    ResourceType("", "v1", "events", "Event", True, "event", ("ev",), field_labels=_EVENT_FIELDS),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, "serviceaccount", ("sa",)),
    ResourceType(
        "events.k8s.io", "v1", "events", "Event", True, "event", ("ev",), field_labels=_EVENTS_V1_FIELDS
    ),
    ResourceType(
        "apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",), ("all",),
        subresources=("status",),
    ),
    ResourceType(
        "apps", "v1", "replicasets", "ReplicaSet", True, "replicaset", ("rs",), ("all",),
        subresources=("status",),
    ),
    ResourceType(
        "apps", "v1", "statefulsets", "StatefulSet", True, "statefulset", ("sts",), ("all",),
        subresources=("status",),
    ),
    ResourceType(
        "apps", "v1", "daemonsets", "DaemonSet", True, "daemonset", ("ds",), ("all",),
        subresources=("status",),
    ),
    ResourceType(
        "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, "poddisruptionbudget",
        ("pdb",), subresources=("status",),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, "lease"),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True, "role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, "clusterrole"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, "rolebinding"),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False,
        "clusterrolebinding",
    ),
    ResourceType(
        "authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
        "selfsubjectaccessreview", verbs=("create",),
    ),
    ResourceType(
        "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False,
        "subjectaccessreview", verbs=("create",),
    ),
)  # fmt: skip

# Kinds answered by computation, never stored (the apiserver's "virtual" review resources).
REVIEW_KINDS = frozenset(
    {"authorization.k8s.io/selfsubjectaccessreviews", "authorization.k8s.io/subjectaccessreviews"}
)


class Registry:
    """Every served resource, looked up the ways the API paths and discovery need."""

    def __init__(self, types: Iterable[ResourceType] = ()) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        for rt in types:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind.setdefault((rt.api_version, rt.kind), rt)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def must_get(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self._by_gvr.get((group, version, plural))
        if rt is None:
            raise KeyError(f"{plural}.{group}/{version} is not served")
        return rt

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def all(self) -> list[ResourceType]:
        return list(self._by_gvr.values())

    def groups(self) -> dict[str, list[str]]:
        """group → versions, in registration order (the first is preferred)."""
        out: dict[str, list[str]] = {}
        for rt in self._by_gvr.values():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._by_gvr.values() if rt.group == group and rt.version == version]
