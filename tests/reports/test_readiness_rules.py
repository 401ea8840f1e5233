"""The readiness verdict over hand-made clusters: which wave's nodes, PDB headroom, unreplicated pods,
do-not-disrupt, capacity, shell user data — each reason names the object and the fix."""

from __future__ import annotations

from pathlib import Path

from objects import BOTTLEROCKET_IMAGE, deployment, node, pdb, pod, replicaset

from bot.engine.selection import wave_nodes
from bot.plan import load_plan
from bot.plan.models import Plan, Selector, Taint, Wave
from bot.reports.facts import AwsFacts, cluster_facts_from_objects
from bot.reports.readiness import Verdict, readiness
from bot.reports.reasons import Severity
from bot.reports.snapshot import ReadinessSnapshot, snapshot

PLAN: Plan = load_plan(Path(__file__).parents[2] / "examples" / "plan.yaml")
WEB = Wave(name="web", selector=Selector(managed_node_groups=("ng-web",)))


def web_cluster(*, allowed: int = 1, extra_pods: tuple[dict, ...] = ()) -> dict:  # type: ignore[type-arg]
    return {
        "nodes": [
            node("n1"),
            node("n2"),
            node("b1", group="ng-batch"),
            node("br1", pool="bottlerocket", image=BOTTLEROCKET_IMAGE),
        ],
        "pods": [pod("web-5d78c9869d-a", "n1"), pod("web-5d78c9869d-b", "n2"), *extra_pods],
        "replicasets": [replicaset("web-5d78c9869d", "web")],
        "deployments": [deployment("web")],
        "pdbs": [pdb("web", allowed=allowed)],
    }


def test_a_wave_selects_the_al2_nodes_of_its_node_groups_only() -> None:
    inv = cluster_facts_from_objects(**web_cluster()).inventory

    def names(wave: Wave) -> list[str]:
        return [n.name for n in wave_nodes(wave, inv.nodes.values(), inv.pods_by_node)]

    assert names(WEB) == ["n1", "n2"]
    assert (
        names(Wave(name="br", selector=Selector(nodepools=("bottlerocket",)))) == []
    )  # already Bottlerocket
    labelled = Wave(name="l", selector=Selector(node_labels={"workload-class": "web"}, namespaces=("shop",)))
    assert names(labelled) == ["n1", "n2"]


def test_a_healthy_replicated_wave_is_ready() -> None:
    report = readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**web_cluster()))
    assert report.verdict is Verdict.READY, [r.sentence for r in report.reasons]
    assert [w.workload for w in report.workloads] == ["Deployment shop/web"]
    assert report.workloads[0].pods == 2 and report.workloads[0].disruptions_allowed == 1


def test_a_pdb_that_allows_no_disruption_blocks_the_wave_and_says_which() -> None:
    report = readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**web_cluster(allowed=0)))
    assert report.verdict is Verdict.BLOCKED
    (reason,) = [r for r in report.reasons if r.severity is Severity.BLOCKER]
    assert reason.object == "PodDisruptionBudget shop/web"
    assert "allows 0 disruptions" in reason.reason and "shop/web-5d78c9869d-a" in reason.reason
    assert "maxUnavailable" in reason.fix


def test_a_bare_pod_blocks_unless_the_wave_forces_unreplicated() -> None:
    bare = pod("debug", "n1", owner=None, labels={"app": "debug"})
    facts = cluster_facts_from_objects(**web_cluster(extra_pods=(bare,)))
    blocked = readiness(WEB, 1, PLAN.target, facts)
    assert blocked.verdict is Verdict.BLOCKED
    assert any(r.object == "Pod shop/debug" and r.check == "unreplicated" for r in blocked.reasons)
    forced = WEB.model_copy(update={"force_unreplicated": True})
    assert readiness(forced, 1, PLAN.target, facts).verdict is Verdict.READY_WITH_WARNINGS


def test_a_do_not_disrupt_pod_is_a_warning_naming_its_node() -> None:
    held = pod(
        "web-5d78c9869d-c", "n2", annotations={"karpenter.sh/do-not-disrupt": "true"}, labels={"app": "other"}
    )
    report = readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**web_cluster(extra_pods=(held,))))
    (reason,) = [r for r in report.reasons if r.check == "do-not-disrupt"]
    assert reason.severity is Severity.WARNING and "n2" in reason.reason


def test_requests_beyond_the_bottlerocket_nodepool_limit_block_with_the_limit_to_set() -> None:
    small = PLAN.target.model_copy(
        update={
            "nodepool": PLAN.target.nodepool.model_copy(update={"limits": {"cpu": "0.5", "memory": "100Gi"}})
        }
    )
    report = readiness(WEB, 1, small, cluster_facts_from_objects(**web_cluster()))
    (reason,) = [r for r in report.reasons if r.check == "capacity"]
    assert reason.object == "NodePool bottlerocket" and "limits.cpu is 0.5" in reason.reason
    assert "at least 1" in reason.fix
    assert report.capacity.needed_cpu_millis == 1000


def test_shell_user_data_behind_the_waves_node_group_is_a_warning() -> None:
    aws = AwsFacts(launch_template_user_data={"ng-web": "#!/bin/bash\nyum install -y x\n"})
    report = readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**web_cluster()), aws)
    (reason,) = [r for r in report.reasons if r.check == "shell-user-data"]
    assert reason.object == "launch template of node group ng-web" and "TOML" in reason.fix


def test_eksup_checks_single_replica_and_missing_probe() -> None:
    lone = pod("solo-7c9d-a", "n1", labels={"app": "solo"}, owner=("ReplicaSet", "solo-7c9d"))
    lone["spec"]["containers"][0].pop("readinessProbe")
    objects = web_cluster(extra_pods=(lone,))
    objects["replicasets"].append(replicaset("solo-7c9d", "solo", replicas=1))
    objects["deployments"].append(deployment("solo", replicas=1))
    report = readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**objects))
    checks = {r.check for r in report.reasons if r.object == "Deployment shop/solo"}
    assert checks == {"single-replica", "no-readiness-probe"}
    assert report.verdict is Verdict.READY_WITH_WARNINGS


def test_a_wave_that_selects_nothing_says_so() -> None:
    empty = Wave(name="none", selector=Selector(managed_node_groups=("ng-gone",)))
    report = readiness(empty, 4, PLAN.target, cluster_facts_from_objects(**web_cluster()))
    assert report.verdict is Verdict.READY_WITH_WARNINGS
    assert report.reasons[0].check == "no-nodes" and "ng-gone" in report.reasons[0].reason


def test_a_node_agent_that_does_not_tolerate_the_bottlerocket_taint_is_a_warning() -> None:
    tainted = PLAN.target.model_copy(
        update={
            "nodepool": PLAN.target.nodepool.model_copy(
                update={"taints": (Taint(key="os", value="bottlerocket", effect="NoSchedule"),)}
            )
        }
    )
    agent = pod(
        "agent-x1", "n1", namespace="kube-system", owner=("DaemonSet", "agent"), labels={"app": "agent"}
    )
    tolerant = pod(
        "tolerant-x1",
        "n1",
        namespace="kube-system",
        owner=("DaemonSet", "tolerant"),
        labels={"app": "tolerant"},
        tolerations=[{"operator": "Exists"}],
    )
    objects = web_cluster(extra_pods=(agent, tolerant))
    report = readiness(WEB, 1, tainted, cluster_facts_from_objects(**objects))
    (reason,) = [r for r in report.reasons if r.check == "daemonset-taints"]
    assert reason.object == "DaemonSet kube-system/agent" and "os=bottlerocket:NoSchedule" in reason.reason
    assert report.daemonsets == ("kube-system/agent", "kube-system/tolerant")


def test_an_approvals_snapshot_moves_with_the_verdict_and_its_reasons_not_with_pod_counts() -> None:
    def taken(**cluster: object) -> ReadinessSnapshot:
        return snapshot(readiness(WEB, 1, PLAN.target, cluster_facts_from_objects(**web_cluster(**cluster))))  # type: ignore[arg-type]

    first = taken()
    # One more replica of the same Deployment on the wave's nodes, a PDB that allows more: same judgement.
    more = pod("web-5d78c9869d-c", "n1")
    assert taken(extra_pods=(more,)).digest == first.digest
    assert taken(allowed=2).digest == first.digest
    # A PDB that now allows no disruption blocks the wave: another snapshot, and it says what changed.
    blocked = taken(allowed=0)
    assert blocked.digest != first.digest
    assert blocked.changes_since(first.facts()) == (
        "verdict READY → BLOCKED; new: blocker pdb-no-headroom PodDisruptionBudget shop/web"
    )
    assert first.changes_since(blocked.facts()) == (
        "verdict BLOCKED → READY; gone: blocker pdb-no-headroom PodDisruptionBudget shop/web"
    )
