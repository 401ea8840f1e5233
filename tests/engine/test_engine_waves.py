"""The engine moves the demo's waves in the sandbox over the real clients: drain and drift, retire,
pause and resume, rollback — and the ground truth says no PodDisruptionBudget was ever violated."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_world import World, engine_world, fix_demo_workloads, lift_do_not_disrupt

from bot.domain.waves import Trigger, WaveState
from bot.engine.events import EngineAlert, WaveProgress
from bot.engine.executor import Engine
from bot.engine.pods import OsFamily


def _retired(world: World, engine: Engine, index: int) -> bool:
    """The wave is completed and its AL2 capacity retired; a held node is answered as on-call would."""
    wave = world.wave(index)
    if any(isinstance(e, EngineAlert) and e.kind == "held" and e.wave.index == index for e in world.events):
        lift_do_not_disrupt(world.admin)
    return wave.state is WaveState.COMPLETED and engine._done(wave, "retire") is not None


@pytest.mark.slow
def test_the_demo_migration_ends_with_no_al2_node_and_every_workload_ready_on_bottlerocket(
    tmp_path: Path,
) -> None:
    with engine_world(tmp_path) as world:
        engine = world.engine()
        fix_demo_workloads(world.admin)
        for index in (1, 2, 3):
            world.approve(index)
            world.run_until(engine, lambda i=index: _retired(world, engine, i), f"wave {index} to retire")
        world.run_until(engine, lambda: not world.al2_nodes(), "the last AL2 node to be gone")

        def settled() -> bool:
            inventory = world.inventory()
            return not inventory.unscheduled and all(
                p.ready or p.finished for pods in inventory.pods_by_node.values() for p in pods
            )

        world.run_until(engine, settled, "every pod to be Ready", timeout=60)
        inventory = world.inventory()
        assert set(n.os_family for n in inventory.nodes.values()) == {OsFamily.BOTTLEROCKET}
        not_ready = [
            p.key for pods in inventory.pods_by_node.values() for p in pods if not p.ready and not p.finished
        ]
        assert not_ready == [], f"pods not Ready on Bottlerocket: {not_ready}"
        assert not inventory.unscheduled
        pools = {p["metadata"]["name"]: p for p in world.kube.list_nodepools()}
        assert pools["general-al2"]["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "bottlerocket"
        nodeclass = world.kube.get_ec2nodeclass("bottlerocket")["spec"]
        assert nodeclass["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.26.2"}]
        assert nodeclass["metadataOptions"]["httpTokens"] == "required"
        assert world.aws.list_nodegroups("sandbox-demo") == []
        assert world.sandbox.controllers is not None
        assert world.sandbox.controllers.ground_truth()["pdbViolations"] == []
        progress = [e for e in world.events if isinstance(e, WaveProgress) and e.wave.index == 1]
        assert progress[-1].nodes_total == 10 and progress[-1].nodes_drained == 10


def test_a_do_not_disrupt_pod_holds_its_node_and_says_so_until_someone_lifts_it(tmp_path: Path) -> None:
    with engine_world(tmp_path) as world:
        engine = world.engine()
        world.approve(1)

        def held() -> bool:
            return any(isinstance(e, EngineAlert) and e.kind == "held" for e in world.events)

        world.run_until(engine, held, "the do-not-disrupt hold to be reported")
        alert = next(e for e in world.events if isinstance(e, EngineAlert) and e.kind == "held")
        assert "fraud-scorer" in alert.summary and "remove the annotation" in alert.summary
        assert world.state(1) is WaveState.EXECUTING
        fix_demo_workloads(world.admin)
        world.run_until(engine, lambda: world.state(1) is WaveState.COMPLETED, "wave 1 to complete")


def test_pause_stops_new_evictions_and_resume_finishes_the_wave(tmp_path: Path) -> None:
    with engine_world(tmp_path) as world:
        engine = world.engine()
        fix_demo_workloads(world.admin)
        world.approve(1)
        world.run_until(engine, lambda: world.state(1) is WaveState.EXECUTING, "wave 1 to start")
        world.fire(1, Trigger.PAUSE)
        engine.tick()
        evicted = len(world.repos.timings.pods(world.wave(1).id))
        for _ in range(20):
            engine.tick()
        assert len(world.repos.timings.pods(world.wave(1).id)) == evicted
        assert world.state(1) is WaveState.PAUSED
        world.fire(1, Trigger.RESUME)
        world.run_until(engine, lambda: world.state(1) is WaveState.COMPLETED, "wave 1 to complete")
        assert world.sandbox.controllers is not None
        assert world.sandbox.controllers.ground_truth()["pdbViolations"] == []


def test_with_a_tenth_of_api_calls_failing_500_or_429_the_wave_still_completes(tmp_path: Path) -> None:
    with engine_world(tmp_path) as world:
        engine = world.engine()
        fix_demo_workloads(world.admin)
        world.sandbox.api_faults.update(
            {"error_fraction": 0.1, "error_codes": [500, 429], "retry_after_seconds": 0, "random_seed": 7}
        )
        world.approve(1)
        world.run_until(engine, lambda: _retired(world, engine, 1), "wave 1 to complete under faults")
        faulted = world.sandbox.api_faults.describe()
        assert sum(faulted["counts"]["failed"].values()) > 10, faulted
        assert world.sandbox.controllers is not None
        assert world.sandbox.controllers.ground_truth()["pdbViolations"] == []
        assert world.repos.audit.verify().ok


def test_rolling_back_a_baking_wave_brings_its_workloads_back_onto_al2_capacity(tmp_path: Path) -> None:
    with engine_world(tmp_path) as world:
        engine = world.engine(manage_bake=False)
        fix_demo_workloads(world.admin)
        world.approve(1)
        world.run_until(engine, lambda: world.state(1) is WaveState.BAKING, "wave 1 to bake")
        web_nodes = {n.node_name for n in world.repos.nodes.nodes(world.wave(1).id)}
        world.fire(1, Trigger.CANARY_FAIL, actor="migratebot")
        world.fire(1, Trigger.ROLLBACK, actor="U0LEAD0001")
        world.run_until(engine, lambda: world.state(1) is WaveState.ROLLED_BACK, "wave 1 to roll back")
        inventory = world.inventory()
        back = [inventory.nodes[n] for n in web_nodes if n in inventory.nodes]
        assert len(back) == 10 and not any(n.unschedulable for n in back)
        storefront = [
            p for pods in inventory.pods_by_node.values() for p in pods if p.workload_name == "storefront"
        ]
        assert storefront and all(inventory.nodes[p.node_name].os_family is OsFamily.AL2 for p in storefront)
        assert world.sandbox.controllers is not None
        assert world.sandbox.controllers.ground_truth()["pdbViolations"] == []
