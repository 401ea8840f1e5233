"""Gathering for one wave's reports keeps only the wave's nodes' pods, and the reports read the same:
every other pod still counts for its workload, whose spec is its first pod's wherever that runs."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from objects import container, deployment, node, pdb, pod, replicaset

from bot.engine.inventory import gc_paused, replicaset_owners
from bot.engine.pods import pod_from_json, pod_workload
from bot.plan import load_plan
from bot.plan.models import Plan, Selector, Wave
from bot.reports.facts import cluster_facts_from_objects, workload_key
from bot.reports.readiness import readiness

PLAN: Plan = load_plan(Path(__file__).parents[2] / "examples" / "plan.yaml")
WEB = Wave(name="web", selector=Selector(managed_node_groups=("ng-web",)))


def cluster() -> dict[str, Any]:
    hostpath = {"name": "bin", "hostPath": {"path": "/usr/local/bin"}}
    writes_usr = container(volumeMounts=[{"name": "bin", "mountPath": "/host/bin"}])
    return {
        "nodes": [node("n1"), node("n2"), node("b1", group="ng-batch")],
        "pods": [
            # The workload's first pod runs off the wave and writes /usr: its spec is the workload's.
            pod("web-5d78c9869d-a", "b1", containers=[writes_usr], volumes=[hostpath]),
            pod("web-5d78c9869d-b", "n1"),
            pod("web-5d78c9869d-c", "n2"),
            pod("batch-0", "b1", owner=("StatefulSet", "batch"), labels={"app": "batch"}),
            pod("loose", "n2", owner=None, labels={"app": "loose"}),
            pod("pending", "", owner=("Job", "once"), labels={"app": "once"}),
        ],
        "replicasets": [replicaset("web-5d78c9869d", "web")],
        "deployments": [deployment("web", replicas=3)],
        "pdbs": [pdb("web", allowed=1)],
    }


def test_a_pods_workload_read_alone_is_the_one_its_record_resolves_to() -> None:
    objects = cluster()
    owners = replicaset_owners(objects["replicasets"])
    for obj in objects["pods"]:
        assert pod_workload(obj, owners) == workload_key(pod_from_json(obj, owners))
        assert pod_workload(obj) == workload_key(pod_from_json(obj))


def test_keeping_only_the_wave_nodes_pods_changes_no_report() -> None:
    everything = cluster_facts_from_objects(**cluster())
    wave_only = cluster_facts_from_objects(**cluster(), pods_on=frozenset({"n1", "n2"}))

    assert wave_only.inventory.pod_count == 3
    assert dict(wave_only.workloads) == dict(everything.workloads)
    assert readiness(WEB, 1, PLAN.target, wave_only) == readiness(WEB, 1, PLAN.target, everything)
    hostpath = [r for r in readiness(WEB, 1, PLAN.target, wave_only).reasons if "/usr" in r.sentence]
    assert hostpath, "the spec of the first pod, off the wave, stands for the workload"


def test_gc_pauses_nest_and_the_collector_comes_back_as_it_was() -> None:
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
