"""Which nodes a wave moves: the plan's selector over an inventory. One function, used by the engine,
the preview and the reports.

Selector kinds combine with AND, values inside a kind with OR (the plan's documented meaning):
managed_node_groups by the eks.amazonaws.com/nodegroup label, nodepools by karpenter.sh/nodepool,
node_labels by exact match, namespaces by the node running at least one non-DaemonSet pod of them.
Only AL2 nodes are moved; Bottlerocket nodes a selector also matches are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.engine.pods import NodeInfo, NodeOwnerKind, OsFamily, PodInfo
from bot.plan.models import Selector
from bot.plan.models import Wave as PlanWave


def matches(selector: Selector, node: NodeInfo, pods: Iterable[PodInfo] = ()) -> bool:
    if selector.managed_node_groups and not (
        node.owner_kind is NodeOwnerKind.NODE_GROUP and node.owner_name in selector.managed_node_groups
    ):
        return False
    if selector.nodepools and not (
        node.owner_kind is NodeOwnerKind.KARPENTER and node.owner_name in selector.nodepools
    ):
        return False
    if any(node.labels.get(k) != v for k, v in selector.node_labels.items()):
        return False
    if selector.namespaces:
        wanted = set(selector.namespaces)
        if not any(p.namespace in wanted and not p.is_daemonset for p in pods):
            return False
    return True


def wave_nodes(
    wave: PlanWave,
    nodes: Iterable[NodeInfo],
    pods_by_node: Mapping[str, Iterable[PodInfo]] | None = None,
    *,
    family: OsFamily | None = OsFamily.AL2,
) -> list[NodeInfo]:
    """The wave's nodes of `family` (AL2 by default; None for every family), sorted by name."""
    pods_by_node = pods_by_node or {}
    return sorted(
        (
            n
            for n in nodes
            if (family is None or n.os_family is family)
            and matches(wave.selector, n, pods_by_node.get(n.name, ()))
        ),
        key=lambda n: n.name,
    )
