"""Inventory of a 5,000-node / 100,000-pod cluster vs `kubectl get pods -A -o json` on the same server.

    .venv/bin/python -m bench.inventory [--nodes 5000] [--pods 100000] [--page-size 1000]

Loads a scale-like store into one SandboxServer (bulk `api.load`, before the API starts), then runs,
each in its own process so their peak RSS is their own: migratebot's `Inventory.build` (one paginated
list each of nodes, pods, ReplicaSets, DaemonSets, PDBs; orjson; no client models) and kubectl. Prints
wall times, the ratio and each process's peak RSS. Not a timed test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

JSON = dict[str, Any]


def _child(kubeconfig: str, page_size: int) -> int:
    from bot.adapters.kube import KubeAdapter
    from bot.engine.inventory import Inventory

    kube = KubeAdapter.from_kubeconfig(kubeconfig, None, page_size=page_size)
    started = time.monotonic()
    inv = Inventory.build(kube)
    seconds = time.monotonic() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "nodes": len(inv.nodes),
                "pods": inv.pod_count,
                "rss_mb": _hwm_mb(os.getpid()),
            }
        )
    )
    return 0


def _hwm_mb(pid: int) -> float:
    """The process's peak RSS so far (VmHWM). Read from /proc because a child's ru_maxrss also counts
    the pages it inherited from this (1.7 GB) process between fork and exec."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS (MB) of the child, its stdout (head only: kubectl prints ~200 MB)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _hwm_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = b""
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        if len(out) < (1 << 16):
            out += chunk
    proc.wait()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode})")
    return time.monotonic() - started, peak, out


def _objects(nodes: int, pods: int) -> tuple[list[JSON], list[list[JSON]]]:
    from sandbox.kube import fixtures

    namespaces = 50
    deployments = 500
    node_names = [
        f"ip-10-{i // 250}-{i % 250}-{7 + i % 200}.us-west-2.compute.internal" for i in range(nodes)
    ]
    zones = ("us-west-2a", "us-west-2b", "us-west-2c")
    base: list[JSON] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"team-{n}"}}
        for n in range(namespaces)
    ]
    for i, name in enumerate(node_names):
        n = fixtures.node(
            name,
            f"10.{i // 250}.{i % 250}.{7 + i % 200}",
            zones[i % 3],
            f"i-{i:017x}",
            nodegroup=f"ng-{i % 20}",
        )
        base.append(n)
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system", "uid": "ds-aws-node"},
        "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}}},
    }
    base.append(ds)
    owners: list[JSON] = []
    for d in range(deployments):
        ns = f"team-{d % namespaces}"
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"svc-{d}-6b7c8d9f5",
                "namespace": ns,
                "uid": f"rs-{d}",
                "labels": {"app": f"svc-{d}", "pod-template-hash": "6b7c8d9f5"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": f"svc-{d}",
                        "uid": f"deploy-{d}",
                        "controller": True,
                    }
                ],
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f"svc-{d}"}}},
        }
        owners.append(rs)
        base.append(rs)
        base.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": f"svc-{d}", "namespace": ns},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": f"svc-{d}"}}},
            }
        )
    batches: list[list[JSON]] = []
    batch: list[JSON] = []
    ds_pods = min(nodes, pods)
    for i in range(pods):
        if i < ds_pods:
            p = fixtures.pod(
                f"aws-node-{i:06x}", "kube-system", node_names[i], "10.1.0.1", ds, {"k8s-app": "aws-node"}
            )
        else:
            owner = owners[i % deployments]
            p = fixtures.pod(
                f"{owner['metadata']['name']}-{i:06x}",
                owner["metadata"]["namespace"],
                node_names[i % nodes],
                "10.2.0.1",
                owner,
                {"app": owner["metadata"]["labels"]["app"], "pod-template-hash": "6b7c8d9f5"},
            )
        batch.append(p)
        if len(batch) == 10_000:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)
    return base, batches


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.page_size)

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is not on PATH: this benchmark compares against it")
    from bench.results import Recorder, compared
    from sandbox.kube import SandboxServer

    recorder = Recorder("inventory")

    t = time.monotonic()
    base, batches = _objects(args.nodes, args.pods)
    print(f"generated {args.nodes} nodes, {args.pods} pods in {time.monotonic() - t:.1f} s")
    sb = SandboxServer()
    t = time.monotonic()
    sb.api.load(base)
    for batch in batches:
        sb.api.load(batch)
    del batches
    print(f"loaded in {time.monotonic() - t:.1f} s")
    with sb:
        env = {"HOME": str(Path(sb.kubeconfig).parent), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        runs: dict[str, list[tuple[float, float]]] = {"inventory": [], "kubectl": []}
        for _ in range(2):
            secs, rss, out = _run(
                [
                    sys.executable,
                    "-m",
                    "bench.inventory",
                    "--child",
                    str(sb.kubeconfig),
                    "--page-size",
                    str(args.page_size),
                ]
            )
            report = json.loads(out)
            assert report["pods"] == args.pods and report["nodes"] == args.nodes, report
            runs["inventory"].append((report["seconds"], max(rss, report["rss_mb"])))
            secs, rss, _ = _run(
                [kubectl, "--kubeconfig", str(sb.kubeconfig), "get", "pods", "-A", "-o", "json"], env
            )
            runs["kubectl"].append((secs, rss))
        inv_s = min(s for s, _ in runs["inventory"])
        kub_s = min(s for s, _ in runs["kubectl"])
        print(
            f"inventory (nodes+pods+rs+ds+pdbs, page {args.page_size}): {inv_s:.2f} s, "
            f"peak RSS {max(r for _, r in runs['inventory']):.0f} MB"
        )
        print(
            f"kubectl get pods -A -o json:                        {kub_s:.2f} s, "
            f"peak RSS {max(r for _, r in runs['kubectl']):.0f} MB"
        )
        print(f"ratio inventory / kubectl: {inv_s / kub_s:.2f}")
        server_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"sandbox process RSS: {server_mb:.0f} MB")
    inv_mb = max(r for _, r in runs["inventory"])
    kub_mb = max(r for _, r in runs["kubectl"])
    scope = (
        f"{args.nodes:,} nodes, {args.pods:,} pods in one sandbox API server (its process: "
        f"{server_mb:,.0f} MB RSS); best of 2 runs each, each side in its own process"
    )
    recorder.emit(
        [
            compared(
                "inventory.time",
                f"inventory time (nodes, pods, ReplicaSets, DaemonSets, PDBs; pages of {args.page_size:,})",
                inv_s,
                "s",
                "`kubectl get pods -A -o json` (pods only)",
                kub_s,
                notes=scope,
            ),
            compared(
                "inventory.peak_rss",
                "inventory peak RSS",
                inv_mb,
                "MB",
                "`kubectl get pods -A -o json` peak RSS",
                kub_mb,
            ),
        ],
        {"runs": runs, "sandbox_rss_mb": server_mb, "nodes": args.nodes, "pods": args.pods},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
