"""A 10-node, 300-pod wave: migratebot's drain vs sequential `kubectl drain`, and its makespan vs
Karpenter's own one-at-a-time drift — each on a fresh sandbox of the same scenario.

    .venv/bin/python -m bench.engine_waves [--time-scale 20] [--drain-time-scale 1] [--parallel 5]

1. drain: the wave's 10 nodes (a managed node group) drained by `kubectl drain --ignore-daemonsets
   --delete-emptydir-data`, one node after another, vs the engine draining the same wave
   (cordon all, then `max_parallel_nodes` at a time, PDBs respected). Both start with the same
   Bottlerocket NodePool in place, so evicted pods have somewhere to go. Target ratio <= 0.35.
2. makespan: the same wave as a Karpenter NodePool: Karpenter's drift (nodeClassRef changed, budget
   one node — what Karpenter does without migratebot) vs the engine's drain of it; from the change to
   every workload Ready on Bottlerocket and no AL2 node left. Target ratio <= 0.5.

Times are the sandbox's emulated seconds (real seconds x time scale), the cluster's own clock, as
the timing model's figures are. Not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.domain.waves import Trigger, WaveState
from bot.engine.events import EventBus
from bot.engine.executor import Engine, EngineSettings
from bot.engine.inventory import Inventory
from bot.engine.pods import OsFamily
from bot.engine.target import desired_nodeclass, desired_nodepool, placement_of
from bot.plan import parse_plan
from bot.services.plans import register_plan
from sandbox.main import Sandbox
from sandbox.scenarios import Scenario, load_scenario
from storage.db import Database
from storage.repositories import Repositories
from storage.schema import upgrade

ROOT = Path(__file__).resolve().parents[1]
JSON = dict[str, Any]
DEPLOYMENTS, REPLICAS, NODES = 10, 30, 10


def scenario(as_nodepool: bool) -> Scenario:
    data = load_scenario("demo").model_dump()
    data["name"] = "bench-wave"
    bench = {"workload-class": "bench"}
    if as_nodepool:
        data["node_groups"] = []
        data["nodepools"] = [
            {"name": "bench-pool", "nodeclass": "al2", "nodes": NODES, "instance_type": "m5.4xlarge",
             "labels": bench, "budget_nodes": "1"},
        ]  # fmt: skip
    else:
        data["node_groups"] = [
            {"name": "ng-bench", "instance_type": "m5.4xlarge", "desired": NODES, "labels": bench}
        ]
        data["nodepools"] = []
    system = next(ns for ns in data["namespaces"] if ns["name"] == "kube-system")
    system["workloads"] = [w for w in system["workloads"] if w["kind"] == "DaemonSet"]
    workloads = [
        {"kind": "Deployment", "name": f"svc-{i:02d}", "replicas": REPLICAS,
         "image": f"111122223333.dkr.ecr.us-west-2.amazonaws.com/bench/svc-{i:02d}:1.0.0",
         "cpu": "100m", "memory": "128Mi", "port": 8080, "node_selector": bench,
         "pdb": {"max_unavailable": "20%"}}
        for i in range(DEPLOYMENTS)
    ]  # fmt: skip
    data["namespaces"] = [system, {"name": "bench", "workloads": workloads}]
    data["faults"] = {}
    return Scenario.model_validate(data)


def plan_text(selector: str) -> str:
    text = (ROOT / "examples" / "plan.yaml").read_text()
    head, _, rest = text.partition("\nwaves:\n")
    tail = rest[rest.index("\nchange_windows:") :]
    wave = (
        f"  - name: bench\n    selector:\n      {selector}\n    strategy: drain\n"
        "    max_parallel_nodes: {par}\n"
    )
    return head + "\nwaves:\n" + wave + "    bake: 1s\n" + tail


class World:
    def __init__(self, sb: Sandbox, tmp: Path, selector: str, parallel: int) -> None:
        self.sb = sb
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(url)
        self.database = Database(url)
        self.repos = Repositories.over(self.database)
        self.plan = parse_plan(plan_text(selector).replace("{par}", str(parallel)), "bench-plan.yaml")
        register_plan(self.plan, self.repos.migrations, actor="bench")
        env = sb.info()["aws"]["env"]
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        self.aws = AwsAdapter(env["AWS_REGION"], session=session, endpoint_url=sb.aws_endpoint)
        self.kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.bot_context)
        self.scale = sb.clock.time_scale

    def emulated(self, real_seconds: float) -> float:
        return real_seconds * self.scale

    def settled(self) -> bool:
        inv = Inventory.build(self.kube)
        return not inv.unscheduled and all(p.ready for pods in inv.pods_by_node.values() for p in pods)

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 900.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.2)

    def prepare_bottlerocket(self) -> None:
        """The Bottlerocket EC2NodeClass and NodePool the wave's pods can go to (as the engine makes)."""
        inv = Inventory.build(self.kube)
        nodes = [n for n in inv.nodes.values() if n.os_family is OsFamily.AL2]
        self.kube.create_ec2nodeclass(desired_nodeclass(self.plan.target.ec2nodeclass))
        pool = desired_nodepool(self.plan, "bottlerocket-bench", placement_of(nodes))
        self.kube.create_nodepool(pool)

    def engine(self) -> Engine:
        return Engine(
            self.plan, self.plan.clusters[0].name, kube=self.kube, aws=self.aws, repos=self.repos,
            bus=EventBus(), settings=EngineSettings(poll_interval=0.1, retry_interval=5.0 / self.scale,
                                                    manage_bake=False),
        )  # fmt: skip

    def close(self) -> None:
        self.kube.close()
        self.database.dispose()


def _approve(world: World) -> None:
    wave = world.repos.migrations.waves(world.plan.clusters[0].name)[0]
    moves = world.repos.migrations
    wave = moves.transition(wave.id, Trigger.REQUEST, actor="U0SRE00001", expected_version=wave.version)
    moves.transition(wave.id, Trigger.APPROVE, actor="U0LEAD0001", expected_version=wave.version)


def _engine_run(world: World, until: WaveState) -> float:
    engine = world.engine()
    _approve(world)
    started = time.monotonic()
    while True:
        engine.tick()
        state = world.repos.migrations.waves(world.plan.clusters[0].name)[0].state
        if state is until or (until is WaveState.VERIFYING and state is WaveState.BAKING):
            return time.monotonic() - started
        if time.monotonic() - started > 900:
            raise SystemExit(f"the engine's wave did not reach {until.value}: it is {state.value}")
        time.sleep(0.05)


def kubectl_drain(world: World, nodes: list[str], timeout_s: int) -> float:
    binary = shutil.which("kubectl")
    if binary is None:
        raise SystemExit("kubectl is not on PATH: the reference needs the real kubectl")
    env = {"HOME": str(world.sb.kubeconfig.parent), "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    for node in nodes:
        result = subprocess.run(
            [binary, "--kubeconfig", str(world.sb.kubeconfig), "--context", world.sb.context, "drain", node,
             "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={timeout_s}s"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"kubectl drain {node} failed: {result.stderr[-800:]}")
    return time.monotonic() - started


def measure(time_scale: float, drain_time_scale: float, parallel: int) -> JSON:
    out: JSON = {
        "drain_time_scale": drain_time_scale,
        "makespan_time_scale": time_scale,
        "parallel": parallel,
        "nodes": NODES,
        "pods": DEPLOYMENTS * REPLICAS,
    }
    # 1. drain: kubectl sequential vs the engine, node group wave. kubectl waits 5 real seconds after a
    # PDB's 429: on a scaled clock that wait would count 5 x scale emulated seconds against it, so this
    # comparison runs at `drain_time_scale` (1: real time, both sides' waits as they really are).
    time_scale, makespan_scale = drain_time_scale, time_scale
    with tempfile.TemporaryDirectory() as tmp, Sandbox(scenario(False), time_scale=time_scale) as sb:
        world = World(sb, Path(tmp), "managed_node_groups: [ng-bench]", parallel)
        world.wait("the bench pods to be Ready", world.settled)
        world.prepare_bottlerocket()
        nodes = sorted(n.name for n in Inventory.build(world.kube).nodes_of(OsFamily.AL2))
        out["kubectl_drain_s"] = world.emulated(kubectl_drain(world, nodes, int(900 / time_scale) + 60))
        world.close()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(scenario(False), time_scale=time_scale) as sb:
        world = World(sb, Path(tmp), "managed_node_groups: [ng-bench]", parallel)
        world.wait("the bench pods to be Ready", world.settled)
        world.prepare_bottlerocket()
        out["engine_drain_s"] = world.emulated(_engine_run(world, WaveState.VERIFYING))
        assert sb.controllers is not None
        out["engine_drain_pdb_violations"] = len(sb.controllers.ground_truth()["pdbViolations"])
        world.close()
    # 2. makespan: Karpenter's drift (budget 1) vs the engine, NodePool wave.
    time_scale = makespan_scale
    with tempfile.TemporaryDirectory() as tmp, Sandbox(scenario(True), time_scale=time_scale) as sb:
        world = World(sb, Path(tmp), "nodepools: [bench-pool]", parallel)
        world.wait("the bench pods to be Ready", world.settled)
        world.kube.create_ec2nodeclass(desired_nodeclass(world.plan.target.ec2nodeclass))
        started = time.monotonic()
        world.kube.patch_nodepool(
            "bench-pool", {"spec": {"template": {"spec": {"nodeClassRef": {
                "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "bottlerocket"}}}}},
        )  # fmt: skip

        def drifted() -> bool:
            inv = Inventory.build(world.kube)
            return not inv.nodes_of(OsFamily.AL2) and world.settled()

        world.wait("Karpenter's drift to finish", drifted, timeout=1800)
        out["karpenter_drift_makespan_s"] = world.emulated(time.monotonic() - started)
        world.close()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(scenario(True), time_scale=time_scale) as sb:
        world = World(sb, Path(tmp), "nodepools: [bench-pool]", parallel)
        world.wait("the bench pods to be Ready", world.settled)
        out["engine_makespan_s"] = world.emulated(_engine_run(world, WaveState.BAKING))
        assert sb.controllers is not None
        out["engine_makespan_pdb_violations"] = len(sb.controllers.ground_truth()["pdbViolations"])
        world.close()
    out["drain_ratio"] = out["engine_drain_s"] / out["kubectl_drain_s"]
    out["makespan_ratio"] = out["engine_makespan_s"] / out["karpenter_drift_makespan_s"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=20.0, help="clock scale for the makespan runs")
    parser.add_argument(
        "--drain-time-scale", type=float, default=1.0, help="clock scale for the kubectl drain comparison"
    )
    parser.add_argument("--parallel", type=int, default=5, help="the wave's max_parallel_nodes")
    args = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    from bench.results import Recorder, compared

    recorder = Recorder("engine_waves")
    r = measure(args.time_scale, args.drain_time_scale, args.parallel)
    print(json.dumps(r, indent=2))
    print(
        f"drain of {r['nodes']} nodes / {r['pods']} pods: migratebot {r['engine_drain_s']:.0f} s vs "
        f"sequential kubectl drain {r['kubectl_drain_s']:.0f} s (emulated) → ratio {r['drain_ratio']:.2f} "
        "(target <= 0.35)"
    )
    print(
        f"wave makespan: migratebot {r['engine_makespan_s']:.0f} s vs Karpenter's one-at-a-time drift "
        f"{r['karpenter_drift_makespan_s']:.0f} s (emulated) → ratio {r['makespan_ratio']:.2f} "
        "(target <= 0.5)"
    )
    print(f"measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    scope = f"{r['nodes']} m5.4xlarge AL2 nodes, {r['pods']} pods, max_parallel_nodes {r['parallel']}"
    recorder.emit(
        [
            compared(
                "engine_waves.drain",
                f"drain of a {r['nodes']}-node / {r['pods']}-pod wave (emulated s, clock "
                f"{r['drain_time_scale']:g}×)",
                r["engine_drain_s"],
                "s",
                "sequential `kubectl drain --ignore-daemonsets --delete-emptydir-data`, node by node",
                r["kubectl_drain_s"],
                at_most=0.35,
                notes=f"{scope}; PDB violations (ground truth): {r['engine_drain_pdb_violations']}",
            ),
            compared(
                "engine_waves.makespan",
                f"wave makespan, change → every pod Ready on Bottlerocket (emulated s, clock "
                f"{r['makespan_time_scale']:g}×)",
                r["engine_makespan_s"],
                "s",
                "Karpenter's own drift with a one-node budget",
                r["karpenter_drift_makespan_s"],
                at_most=0.5,
                notes=f"{scope}; PDB violations (ground truth): {r['engine_makespan_pdb_violations']}",
            ),
        ],
        r,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
