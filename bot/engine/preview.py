"""`preview`: exactly what a wave would do — the objects it would create or patch, the nodes it would
cordon, the pods it would evict, skip, refuse or hold, and the capacity it would retire — computed
from the cluster as it is, changing nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.errors import NotFound
from bot.adapters.kube import KubeAdapter
from bot.engine.drain import plan_drain
from bot.engine.guards import blocking_selectors, pod_hold
from bot.engine.inventory import Inventory
from bot.engine.pods import NodeOwnerKind, OsFamily
from bot.engine.selection import wave_nodes
from bot.engine.target import desired_nodeclass, differs, drift_patch, replacement_pools
from bot.plan.models import Plan, Strategy
from bot.plan.models import Wave as PlanWave

JSON = dict[str, Any]


@dataclass(frozen=True)
class ObjectChange:
    verb: str  # "create" | "patch" | "unchanged"
    kind: str
    name: str
    why: str

    def line(self) -> str:
        return f"{self.verb} {self.kind} {self.name}: {self.why}"


@dataclass(frozen=True)
class Preview:
    wave: str
    strategy: Strategy
    objects: tuple[ObjectChange, ...]
    cordon: tuple[str, ...]
    evict: tuple[str, ...]
    skip: tuple[str, ...]  # "pod: reason"
    refuse: tuple[str, ...]
    hold: tuple[str, ...]
    retire: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        out = [f"{self.wave} ({self.strategy.value}) — preview, nothing changed:"]
        out += [f"  {c.line()}" for c in self.objects]
        out.append(f"  cordon {len(self.cordon)} node(s): {', '.join(self.cordon) or '—'}")
        out.append(f"  evict {len(self.evict)} pod(s)" + (f": {', '.join(self.evict)}" if self.evict else ""))
        for title, items in (("skip", self.skip), ("refuse", self.refuse), ("hold", self.hold)):
            if items:
                out.append(f"  {title} {len(items)}: " + "; ".join(items))
        out += [f"  then retire {r}" for r in self.retire]
        out += [f"  note: {n}" for n in self.notes]
        return out


def _change(
    kind: str, desired: JSON, get: Callable[[str], JSON], patch: Mapping[str, Any] | None = None
) -> ObjectChange:
    name = desired["metadata"]["name"]
    try:
        current = get(name)
    except NotFound:
        return ObjectChange("create", kind, name, "does not exist yet")
    if patch is not None:
        return ObjectChange("patch", kind, name, "point it at the Bottlerocket EC2NodeClass, Drifted budget")
    if differs({"spec": desired["spec"]}, current):
        return ObjectChange("patch", kind, name, "its spec differs from the plan")
    return ObjectChange("unchanged", kind, name, "already as the plan says")


def preview_wave(
    plan: Plan, wave: PlanWave, kube: KubeAdapter, inventory: Inventory | None = None
) -> Preview:
    inventory = inventory or Inventory.build(kube)
    nodes = wave_nodes(wave, inventory.nodes.values(), inventory.pods_by_node)
    objects = [_change("EC2NodeClass", desired_nodeclass(plan.target.ec2nodeclass), kube.get_ec2nodeclass)]
    notes: list[str] = []
    if wave.strategy is Strategy.DRIFT:
        for name in wave.selector.nodepools:
            current = kube.get_nodepool(name)
            patch = drift_patch(plan, wave, current)
            objects.append(
                _change("NodePool", {"metadata": {"name": name}, "spec": {}}, kube.get_nodepool, patch)
            )
        held = [
            p.key for n in nodes for p in inventory.pods_on(n.name) if p.do_not_disrupt and not p.finished
        ]
        pods = [
            p.key
            for n in nodes
            for p in inventory.pods_on(n.name)
            if not p.is_daemonset and not p.is_mirror and not p.finished and not p.do_not_disrupt
        ]
        notes.append(
            f"Karpenter replaces the {len(nodes)} node(s), {wave.max_parallel_nodes} at a time, "
            "launching each replacement before evicting"
        )
        return Preview(
            wave.name, wave.strategy, tuple(objects), (), tuple(pods), (), (), tuple(held), (), tuple(notes)
        )
    for desired in replacement_pools(plan, nodes).values():
        objects.append(_change("NodePool", desired, kube.get_nodepool))
    selectors = blocking_selectors(plan.blocking)
    plans = plan_drain(inventory, [n.name for n in nodes], force=wave.force_unreplicated)
    for node in nodes:
        blocked = pod_hold(node.name, inventory.pods_on(node.name), selectors)
        if blocked is not None:
            notes.append(blocked.reason)
    groups = sorted({n.owner_name for n in nodes if n.owner_kind is NodeOwnerKind.NODE_GROUP})
    retire = [f"managed node group {g}: scale to 0, then delete" for g in groups]
    claims = [n.name for n in nodes if n.owner_kind is NodeOwnerKind.KARPENTER]
    if claims:
        retire.append(f"the NodeClaims of {len(claims)} Karpenter node(s)")
    if not nodes:
        left = len(inventory.nodes_of(OsFamily.AL2))
        notes.append(f"the wave's selector matches no AL2 node ({left} AL2 node(s) in the cluster)")
    return Preview(
        wave.name,
        wave.strategy,
        tuple(objects),
        tuple(n.name for n in nodes),
        tuple(p.key for plan_ in plans for p in plan_.evict),
        tuple(f"{d.pod.key}: {d.message}" for plan_ in plans for d in plan_.skip),
        tuple(f"{d.pod.key}: {d.message}" for plan_ in plans for d in plan_.refuse),
        tuple(d.message for plan_ in plans for d in plan_.hold),
        tuple(retire),
        tuple(notes),
    )
