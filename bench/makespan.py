"""A whole demo-scenario wave's makespan in emulated time vs the timing model's lower bound.

    .venv/bin/python -m bench.makespan [--wave 1] [--time-scale 1] [--poll-interval 2] [--retry-interval 5]

The demo sandbox (`Sandbox("demo")`: cluster, Karpenter, node groups, AWS) and the real engine
(bot/engine/executor.py, `Engine.run` on a thread as `migratebot serve` runs it, default settings
unless told) over the real clients, on a migrated SQLite database with examples/plan.yaml. Before the
wave, what an SRE does after reading the readiness report (`bot.demo.fix_demo_workloads`: the bare
pod finished, node-tuner retired, the resizer cache moved off /usr, the do-not-disrupt hold lifted);
then the cluster is left to settle, wave 1 (stateless-web: ng-web's 10 AL2 nodes, drain,
max_parallel_nodes 4) is requested and approved, and timed from its start to every displaced pod Ready
on its new node (the wave baking), on the sandbox's own clock (emulated seconds).

The reference is bench/timing_bound.py's lower bound for this wave, computed from the sandbox's timing
model and the wave as it stood when it started. Target: makespan <= 1.15 x the bound.

At time scale 1 (the default) emulated seconds are real ones, so the engine's own work (inventories,
API calls, its poll and retry intervals) counts as it would on a real cluster; at 20x it would count
twenty times over.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import boto3

from bench.results import Figure, Recorder, compared
from bench.timing_bound import Bound, Elsewhere, EvictedPod, lower_bound
from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.demo import fix_demo_workloads
from bot.domain.waves import Trigger, WaveState
from bot.engine.drain import plan_drain
from bot.engine.events import EventBus
from bot.engine.executor import Engine, EngineSettings
from bot.engine.inventory import Inventory
from bot.engine.pods import NodeInfo, OsFamily
from bot.engine.selection import wave_nodes
from bot.plan import parse_plan
from bot.services.plans import register_plan
from sandbox.main import Sandbox
from storage.db import Database
from storage.repositories import Repositories
from storage.schema import upgrade

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = "sandbox-demo"
SRE, LEAD = "U0SRE00001", "U0LEAD0001"
TARGET = 1.15
MODEL_CONSTANTS = (
    "karpenter_batch",
    "karpenter_ready",
    "image_pull_bottlerocket",
    "pod_start",
    "termination_grace_cap",
    "eviction_retry",
)
JSON = dict[str, Any]


def _settled(kube: KubeAdapter) -> bool:
    inv = Inventory.build(kube)
    pods = [p for ps in inv.pods_by_node.values() for p in ps]
    return (
        not inv.unscheduled
        and all(p.ready or p.phase in ("Succeeded", "Failed") for p in pods)
        and not any(p.terminating for p in pods)
    )


def _wait(what: str, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench.makespan: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _tolerated(pod: JSON, taint: JSON) -> bool:
    for t in (pod.get("spec") or {}).get("tolerations") or ():
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if t.get("key") != taint.get("key"):
            continue
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" or t.get("value") == taint.get("value"):
            return True
    return False


def _could_run_on(pod: JSON, node: NodeInfo) -> bool:
    """Node selector and NoSchedule/NoExecute taints only: erring towards "yes" keeps the bound low."""
    selector: dict[str, str] = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    return all(
        _tolerated(pod, {"key": k, "value": v, "effect": e})
        for k, v, e in node.taints
        if e in ("NoSchedule", "NoExecute")
    )


def wave_bound(
    timing: Any,
    inventory: Inventory,
    raw_pods: dict[str, JSON],
    wave_node_names: list[str],
    parallel: int,
    images: Mapping[str, Collection[str]],
) -> Bound:
    """bench.timing_bound's bound for draining `wave_node_names` out of `inventory`; `images` is
    each node's image cache (the emulated kubelet's ground truth)."""
    elsewhere = [
        n
        for n in inventory.nodes.values()
        if n.name not in wave_node_names and n.ready and not n.unschedulable
    ]
    evicted = []
    for drain in plan_drain(inventory, wave_node_names):
        for pod in drain.evict:
            raw = raw_pods[pod.key]
            wanted = {c.get("image", "") for c in (raw.get("spec") or {}).get("containers") or ()}
            fits = [n for n in elsewhere if _could_run_on(raw, n)]
            if not fits:
                where = Elsewhere.NOWHERE
            elif any(wanted <= set(images.get(n.name, ())) for n in fits):
                where = Elsewhere.CACHED
            elif any(n.os_family is OsFamily.BOTTLEROCKET for n in fits):
                where = Elsewhere.BOTTLEROCKET
            else:
                where = Elsewhere.AL2
            evicted.append(
                EvictedPod(
                    key=pod.key,
                    pdbs=pod.pdbs,
                    elsewhere=where,
                    grace_seconds=float((raw.get("spec") or {}).get("terminationGracePeriodSeconds", 30)),
                )
            )
    return lower_bound(timing, evicted, inventory.budget_allowances(), len(wave_node_names), parallel)


def measure(wave_index: int, time_scale: float, poll_interval: float, retry_interval: float) -> JSON:
    out: JSON = {"wave": wave_index, "time_scale": time_scale}
    with tempfile.TemporaryDirectory() as tmp, Sandbox("demo", time_scale=time_scale) as sb:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        database = Database(url)
        repos = Repositories.over(database)
        plan = parse_plan((ROOT / "examples" / "plan.yaml").read_text(), "plan.yaml")
        register_plan(plan, repos.migrations, actor="bench")
        env = sb.info()["aws"]["env"]
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        aws = AwsAdapter(env["AWS_REGION"], session=session, endpoint_url=sb.aws_endpoint)
        kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.bot_context)
        admin = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.context)
        assert sb.controllers is not None
        timing = sb.controllers.timing
        try:
            fix_demo_workloads(admin)
            _wait("the demo's pods to settle after the SRE's fixes", lambda: _settled(kube), 600)
            pw = plan.waves_for(CLUSTER)[wave_index - 1]
            inventory = Inventory.build(kube)
            names = [n.name for n in wave_nodes(pw, inventory.nodes.values(), inventory.pods_by_node)]
            raw = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in admin.list_pods()}
            # The emulated kubelet's image cache per node (ground truth, read in-process): which nodes
            # outside the wave could start a replacement without pulling its image.
            images = {node: set(cached) for node, cached in sb.controllers.kubelet._images.items()}
            bound = wave_bound(timing, inventory, raw, names, pw.max_parallel_nodes, images)
            out |= {
                "wave_name": pw.name,
                "nodes": len(names),
                "max_parallel_nodes": pw.max_parallel_nodes,
                "pods_evicted_planned": bound.pods,
                "lower_bound_s": bound.seconds,
                "bound_first_round_new_capacity_s": bound.first_round_new_capacity,
                "bound_parallel_floor_s": bound.parallel_floor,
                "bound_explained": bound.explain(),
                "bound_chains": [c.__dict__ for c in bound.chains],
                "timing_model": {k: getattr(timing, k) for k in MODEL_CONSTANTS},
            }
            wave = next(w for w in repos.migrations.waves(CLUSTER) if w.index == wave_index)
            wave = repos.migrations.transition(
                wave.id, Trigger.REQUEST, actor=SRE, expected_version=wave.version
            )
            repos.migrations.transition(wave.id, Trigger.APPROVE, actor=LEAD, expected_version=wave.version)
            defaults = EngineSettings()
            settings = EngineSettings(
                poll_interval=poll_interval if poll_interval > 0 else defaults.poll_interval,
                retry_interval=retry_interval if retry_interval > 0 else defaults.retry_interval,
                manage_bake=False,
            )
            out["engine_settings"] = {
                "poll_interval": settings.poll_interval,
                "retry_interval": settings.retry_interval,
            }
            engine = Engine(plan, CLUSTER, kube=kube, aws=aws, repos=repos, bus=EventBus(), settings=settings)
            stop = threading.Event()
            runner = threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True)
            started = sb.clock.now()
            real_started = time.monotonic()
            runner.start()
            try:
                while True:
                    state = repos.migrations.wave(wave.id).state
                    if state is WaveState.BAKING:
                        break
                    if state in (WaveState.FAILED, WaveState.ABORTED):
                        raise SystemExit(f"bench.makespan: the wave went {state.value}")
                    if time.monotonic() - real_started > 1800:
                        raise SystemExit(f"bench.makespan: the wave is still {state.value} after 30 min")
                    time.sleep(0.05)
                finished = sb.clock.now()
            finally:
                stop.set()
                runner.join(timeout=60)
            out["makespan_s"] = finished - started
            out["real_seconds"] = time.monotonic() - real_started
            out |= _cluster_side(repos, wave.id, started)
            out["pdb_violations"] = len(sb.controllers.ground_truth()["pdbViolations"])
        finally:
            kube.close()
            admin.close()
            database.dispose()
    return out


def _cluster_side(repos: Repositories, wave_id: int, started: float) -> JSON:
    """What the engine recorded from the cluster's own timestamps: first eviction, last pod Ready."""
    pods = repos.timings.pods(wave_id)
    nodes = [n for n in repos.timings.nodes(wave_id) if n.os_family == "bottlerocket"]
    evicted = [p.evicted_at for p in pods if p.evicted_at is not None]
    ready = [p.ready_at for p in pods if p.ready_at is not None]
    origin = dt.datetime.fromtimestamp(started, dt.UTC)
    out: JSON = {"pods_evicted": len(pods), "bottlerocket_nodes": len(nodes)}
    if evicted:
        out["first_eviction_after_s"] = (min(evicted) - origin).total_seconds()
    if evicted and ready:
        out["first_eviction_to_last_ready_s"] = (max(ready) - min(evicted)).total_seconds()
        out["last_ready_after_s"] = (max(ready) - origin).total_seconds()
    launches = [n.launch_to_ready for n in nodes if n.launch_to_ready is not None]
    if launches:
        out["bottlerocket_launch_to_ready_s"] = sorted(launches)

    def after(t: dt.datetime | None) -> float | None:
        return None if t is None else round((t - origin).total_seconds(), 1)

    out["bottlerocket_nodes_timeline"] = sorted(
        ({"node": n.name, "launched": after(n.launched_at), "ready": after(n.ready_at)} for n in nodes),
        key=lambda n: n["launched"] or 0.0,
    )
    out["pods_timeline"] = sorted(
        (
            {
                "pod": f"{p.namespace}/{p.name}",
                "evicted": after(p.evicted_at),
                "scheduled": after(p.scheduled_at),
                "ready": after(p.ready_at),
                "node": p.node,
            }
            for p in pods
        ),
        key=lambda p: p["evicted"] or 0.0,
    )
    return out


def critical_path(r: JSON) -> str:
    """Where this run's time went, from the recorded timestamps: Bottlerocket launches, the last pod."""
    launched = [n for n in r.get("bottlerocket_nodes_timeline", []) if n.get("launched") is not None]
    parts = []
    if launched:
        parts.append(
            "Bottlerocket node(s) launched at "
            + ", ".join(f"{n['launched']:.0f} s (Ready {n['ready']:.0f} s)" for n in launched)
        )
    pods = [p for p in r.get("pods_timeline", []) if p.get("ready") is not None]
    if pods:
        last = max(pods, key=lambda p: p["ready"])
        bottlerocket = {n["node"] for n in launched}
        where = "a new Bottlerocket node" if last["node"] in bottlerocket else f"node {last['node']}"
        parts.append(
            f"the last replacement Ready: {last['pod']}'s, evicted at {last['evicted']:.0f} s, Ready at "
            f"{last['ready']:.0f} s on {where} ({last['ready'] - last['evicted']:.0f} s)"
        )
    return "; ".join(parts) + " (seconds from the engine's start)" if parts else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--wave", type=int, default=1, help="the demo plan's wave (a drain wave)")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--poll-interval", type=float, default=0.0, help="engine poll (0: its default)")
    parser.add_argument("--retry-interval", type=float, default=0.0, help="after a 429 (0: its default)")
    args = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    recorder = Recorder("makespan")
    r = measure(args.wave, args.time_scale, args.poll_interval, args.retry_interval)
    for key, value in r.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"  {key}:")
            for item in value:
                print(f"    {item}")
        else:
            print(f"  {key}: {value}")
    cluster = r.get("first_eviction_to_last_ready_s")
    engine = r["engine_settings"]
    notes = (
        f"wave {r['wave']} ({r['wave_name']}): {r['nodes']} AL2 nodes, max_parallel_nodes "
        f"{r['max_parallel_nodes']}, {r['pods_evicted']} pods evicted, {r['bottlerocket_nodes']} "
        f"Bottlerocket node(s) launched, time scale {r['time_scale']:g}, engine poll "
        f"{engine['poll_interval']:g} s / 429 retry {engine['retry_interval']:g} s; first eviction "
        f"{r.get('first_eviction_after_s', float('nan')):.1f} s after the start"
    )
    if cluster is not None:
        notes += f", first eviction → last pod Ready {cluster:.1f} s (cluster clock)"
    notes += f"; PDB violations (ground truth): {r['pdb_violations']}. Bound: {r['bound_explained']}"
    notes += ". " + critical_path(r)
    figure: Figure = compared(
        "makespan.demo_wave",
        "demo wave makespan (emulated s) vs the timing model's lower bound",
        r["makespan_s"],
        "s",
        "timing model's lower bound for the wave",
        r["lower_bound_s"],
        at_most=TARGET,
        notes=notes,
    )
    print(
        f"wave {r['wave']} makespan {r['makespan_s']:.1f} s (emulated) vs lower bound "
        f"{r['lower_bound_s']:.1f} s "
        f"→ {figure.ratio:.2f}x (target <= {TARGET}x: {'met' if figure.met else 'MISSED'})"
    )
    recorder.emit([figure], r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
