"""plan_node_drain is pure: every class of pod gets kubectl drain's verdict (--ignore-daemonsets
--delete-emptydir-data), do-not-disrupt pods are held, critical pods go last."""

from __future__ import annotations

from engine_cluster import N1, N2, N3, drain_cluster

from bot.engine.drain import DAEMONSET_WARNING, UNMANAGED_FATAL, DrainPlan, Reason, plan_node_drain
from bot.engine.inventory import Inventory


def inventory(**kw: bool) -> Inventory:
    objects = drain_cluster(**kw)
    by_kind: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    return Inventory.from_objects(
        by_kind["Node"], by_kind["Pod"], pdbs=by_kind["PodDisruptionBudget"],
        replicasets=by_kind["ReplicaSet"], daemonsets=by_kind["DaemonSet"],
    )  # fmt: skip


def plan(node: str, force: bool = False, **kw: bool) -> DrainPlan:
    inv = inventory(**kw)
    return plan_node_drain(inv.nodes[node], inv.pods_on(node), force, daemonsets=inv.daemonsets)


def names(pods: object) -> list[str]:
    return [getattr(p, "pod", p).key for p in pods]  # type: ignore[attr-defined]


def test_replicated_statefulset_job_finished_and_emptydir_pods_are_evicted_critical_last() -> None:
    p = plan(N1)
    assert names(p.evict) == [
        "shop/db-0", "shop/done-1", "shop/report-29001-1x", "shop/web-7f9c6d8b5-x2k4p",
        "kube-system/coredns-5d78c9869d-1abc",
    ]  # fmt: skip
    assert p.refuse == ()
    assert "deleting Pods with local storage: shop/web-7f9c6d8b5-x2k4p" in p.warnings


def test_daemonset_pods_are_skipped_with_kubectls_warning_and_mirror_pods_silently() -> None:
    p = plan(N1)
    assert [(d.pod.key, d.reason, d.message) for d in p.skip] == [
        ("kube-system/aws-node-x2k4p", Reason.DAEMONSET, DAEMONSET_WARNING),
        ("kube-system/kube-proxy-ip-10-0-1-23", Reason.MIRROR, p.skip[1].message),
    ]


def test_a_pod_without_a_controller_is_refused_with_kubectls_sentence_unless_forced() -> None:
    refused = plan(N2)
    assert [(d.pod.key, d.reason, d.message) for d in refused.refuse] == [
        ("shop/debug-shell", Reason.NO_CONTROLLER, UNMANAGED_FATAL)
    ]
    assert UNMANAGED_FATAL == "cannot delete Pods that declare no controller (use --force to override)"
    forced = plan(N2, force=True)
    assert forced.refuse == ()
    assert "shop/debug-shell" in names(forced.evict)
    assert "deleting Pods that declare no controller: shop/debug-shell" in forced.warnings


def test_a_daemonset_pod_whose_daemonset_is_gone_is_refused_unless_forced() -> None:
    refused = plan(N3)
    assert [(d.pod.key, d.message) for d in refused.refuse] == [
        ("kube-system/old-agent-zz9", 'daemonsets.apps "old-agent" not found')
    ]
    assert "kube-system/old-agent-zz9" in names(plan(N3, force=True).evict)


def test_do_not_disrupt_pods_are_held_and_named_never_evicted() -> None:
    p = plan(N1, with_do_not_disrupt=True)
    assert names(p.hold) == ["shop/trainer-1"]
    assert p.hold[0].reason is Reason.DO_NOT_DISRUPT
    assert "karpenter.sh/do-not-disrupt" in p.hold[0].message and "shop/trainer-1" in p.hold[0].message
    assert "shop/trainer-1" not in names(p.evict)


def test_force_never_overrides_do_not_disrupt() -> None:
    assert names(plan(N1, force=True, with_do_not_disrupt=True).hold) == ["shop/trainer-1"]


def test_a_node_without_pods_has_an_empty_plan() -> None:
    p = plan_node_drain("ip-10-0-9-9.us-west-2.compute.internal", [])
    assert (p.evict, p.skip, p.refuse, p.hold) == ((), (), (), ())
