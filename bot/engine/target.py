"""What the cluster should look like for a wave: the Bottlerocket EC2NodeClass and NodePools, as the
plan says — pure functions from the plan (and the wave's nodes) to Karpenter objects and patches.

Drain waves: the displaced pods need Bottlerocket capacity that accepts them. A pod that selects its
node group's own label (`workload-class: web`) or tolerates its taint (`dedicated=data:NoSchedule`)
fits only on nodes that carry the same, so each drained group gets a Bottlerocket NodePool that
mirrors the labels and taints all of the group's nodes share (well-known and cloud-owned labels
excluded): "<target>-<group>". A group whose nodes carry nothing of their own uses the plan's
NodePool itself. Drift waves: the wave's NodePools are pointed at the Bottlerocket EC2NodeClass and
given a Drifted budget of max_parallel_nodes, so Karpenter replaces their nodes at the wave's pace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.engine.pods import NodeInfo, NodeOwnerKind
from bot.plan.models import EC2NodeClass, Plan
from bot.plan.models import NodePool as PlanNodePool
from bot.plan.models import Wave as PlanWave

JSON = dict[str, Any]

KARPENTER_GROUP = "karpenter.sh"
NODECLASS_GROUP = "karpenter.k8s.aws"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "migratebot"
DRIFTED = "Drifted"
NON_DRIFT_REASONS = ("Empty", "Underutilized")

# Labels that belong to Kubernetes, the cloud or Karpenter, never to the workload's placement intent.
_RESERVED_LABEL = re.compile(
    r"^([a-z0-9.-]*\.)?(kubernetes\.io|k8s\.io|karpenter\.sh|karpenter\.k8s\.aws|amazonaws\.com)/"
)
_RESERVED_TAINT = re.compile(r"^(node\.kubernetes\.io|node\.cloudprovider\.kubernetes\.io|karpenter\.sh)/")


def _selector_terms(terms: Iterable[Any]) -> list[JSON]:
    out: list[JSON] = []
    for term in terms:
        fields = term.model_dump(exclude_none=True)
        out.append({k: v for k, v in fields.items() if v not in ({}, [], ())})
    return out


def desired_nodeclass(target: EC2NodeClass) -> JSON:
    """The Bottlerocket EC2NodeClass: the pinned AMI alias, IMDSv2 required with hop limit 1 (pods
    can't reach the node's credentials), encrypted volumes with the plan's data volume size."""
    return {
        "apiVersion": f"{NODECLASS_GROUP}/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": target.name, "labels": {MANAGED_BY: MANAGER}},
        "spec": {
            "amiSelectorTerms": [{"alias": target.ami_alias}],
            "role": target.role,
            "subnetSelectorTerms": _selector_terms(target.subnet_selector_terms),
            "securityGroupSelectorTerms": _selector_terms(target.security_group_selector_terms),
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            # Bottlerocket: a small OS volume and a data volume that holds images and pod storage.
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "ebs": {"volumeSize": "4Gi", "volumeType": "gp3", "encrypted": True},
                },
                {
                    "deviceName": "/dev/xvdb",
                    "ebs": {
                        "volumeSize": f"{target.data_volume_gib}Gi",
                        "volumeType": "gp3",
                        "encrypted": True,
                    },
                },
            ],
            "tags": dict(target.tags),
        },
    }


@dataclass(frozen=True)
class Placement:
    """What a group of AL2 nodes gives its pods to select or tolerate."""

    labels: Mapping[str, str]
    taints: tuple[tuple[str, str, str], ...]

    @property
    def empty(self) -> bool:
        return not self.labels and not self.taints


def placement_of(nodes: Sequence[NodeInfo]) -> Placement:
    """The labels and taints every one of `nodes` carries, reserved ones excluded."""
    if not nodes:
        return Placement({}, ())
    shared = {k: v for k, v in nodes[0].labels.items() if not _RESERVED_LABEL.match(k)}
    taints = {t for t in nodes[0].taints if not _RESERVED_TAINT.match(t[0])}
    for node in nodes[1:]:
        shared = {k: v for k, v in shared.items() if node.labels.get(k) == v}
        taints &= set(node.taints)
    return Placement(dict(sorted(shared.items())), tuple(sorted(taints)))


def nodepool_name(target: PlanNodePool, group: str, placement: Placement) -> str:
    if placement.empty:
        return target.name
    return f"{target.name}-{group}"[:63].rstrip("-")


def desired_nodepool(plan: Plan, name: str, placement: Placement) -> JSON:
    pool = plan.target.nodepool
    labels = {**dict(placement.labels), **dict(pool.labels)}
    taints = [
        {"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})} for t in pool.taints
    ]
    taints += [{"key": k, "effect": e, **({"value": v} if v else {})} for k, v, e in placement.taints]
    requirements = []
    for r in pool.requirements:
        req: JSON = {"key": r.key, "operator": r.operator.value}
        if r.values:
            req["values"] = list(r.values)
        if r.min_values is not None:
            req["minValues"] = r.min_values
        requirements.append(req)
    spec: JSON = {
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "nodeClassRef": {
                    "group": NODECLASS_GROUP,
                    "kind": "EC2NodeClass",
                    "name": plan.target.ec2nodeclass.name,
                },
                "requirements": requirements,
                **({"taints": taints} if taints else {}),
            },
        },
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "5m",
            "budgets": [{"nodes": "10%"}],
        },
    }
    if pool.limits:
        spec["limits"] = {k: str(v) for k, v in pool.limits.items()}
    return {
        "apiVersion": f"{KARPENTER_GROUP}/v1",
        "kind": "NodePool",
        "metadata": {"name": name, "labels": {MANAGED_BY: MANAGER}},
        "spec": spec,
    }


def group_key(node: NodeInfo) -> str:
    """The capacity a node comes from: "nodegroup/ng-web", "nodepool/general-al2", "self-managed"."""
    if node.owner_kind is NodeOwnerKind.SELF_MANAGED:
        return "self-managed"
    return f"{node.owner_kind.value}/{node.owner_name}"


def replacement_pools(plan: Plan, nodes: Sequence[NodeInfo]) -> dict[str, JSON]:
    """For a drain wave's AL2 nodes: the Bottlerocket NodePools their pods need, by name."""
    return {name: pool for name, (pool, _members) in _pools_by_group(plan, nodes).items()}


def pool_of_nodes(plan: Plan, nodes: Sequence[NodeInfo]) -> dict[str, str]:
    """For a drain wave's AL2 nodes: the replacement NodePool each node's pods move to, by node."""
    return {node: name for name, (_pool, members) in _pools_by_group(plan, nodes).items() for node in members}


def _pools_by_group(plan: Plan, nodes: Sequence[NodeInfo]) -> dict[str, tuple[JSON, list[str]]]:
    by_group: dict[str, list[NodeInfo]] = {}
    for node in nodes:
        by_group.setdefault(group_key(node), []).append(node)
    pools: dict[str, tuple[JSON, list[str]]] = {}
    for group, members in sorted(by_group.items()):
        placement = placement_of(members)
        short = group.split("/", 1)[-1]
        name = nodepool_name(plan.target.nodepool, short, placement)
        _pool, names = pools.setdefault(name, (desired_nodepool(plan, name, placement), []))
        names.extend(n.name for n in members)
    return pools


# ---- comparing with what is there -------------------------------------------------------------


def differs(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """True when `actual` lacks something `desired` says (extra fields the API defaulted are fine)."""
    for key, want in desired.items():
        have = actual.get(key)
        if isinstance(want, Mapping):
            if not isinstance(have, Mapping) or differs(want, have):
                return True
        elif want != have:
            return True
    return False


def spec_patch(desired: JSON) -> JSON:
    """The JSON merge patch that makes an existing object's spec and labels what `desired` says.
    Lists (requirements, taints, terms) are replaced whole, as merge patch does."""
    return {"metadata": {"labels": desired["metadata"].get("labels", {})}, "spec": desired["spec"]}


# ---- drift -------------------------------------------------------------------------------------


def drift_patch(plan: Plan, wave: PlanWave, current: JSON) -> JSON:
    """Point a NodePool at the Bottlerocket EC2NodeClass with a Drifted budget of the wave's pace.

    Budgets that had no reasons applied to drift too; they keep applying to the other reasons only,
    so the wave's max_parallel_nodes alone sets drift's pace."""
    budgets: list[JSON] = [{"nodes": str(wave.max_parallel_nodes), "reasons": [DRIFTED]}]
    for budget in ((current.get("spec") or {}).get("disruption") or {}).get("budgets") or ():
        reasons = [r for r in budget.get("reasons") or NON_DRIFT_REASONS if r != DRIFTED]
        if reasons:
            budgets.append({**budget, "reasons": reasons})
    return {
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": NODECLASS_GROUP,
                        "kind": "EC2NodeClass",
                        "name": plan.target.ec2nodeclass.name,
                    }
                }
            },
            "disruption": {"budgets": budgets},
        }
    }


def restore_patch(original: JSON) -> JSON:
    """The merge patch that puts back what drift_patch changed (recorded before the change)."""
    spec = original.get("spec") or {}
    budgets = (spec.get("disruption") or {}).get("budgets")
    return {
        "spec": {
            "template": {
                "spec": {"nodeClassRef": ((spec.get("template") or {}).get("spec") or {})["nodeClassRef"]}
            },
            "disruption": {"budgets": budgets if budgets is not None else [{"nodes": "10%"}]},
        }
    }
