"""The acceptance point of issue 5: for the same nodes, the pods the engine evicts, skips and refuses
are the ones the real `kubectl drain --ignore-daemonsets --delete-emptydir-data` evicts, skips (its
"ignoring DaemonSet-managed Pods" warning; mirror pods silently) and refuses (its error) — each run on
its own, identical sandbox.

The fixture has no do-not-disrupt pods: kubectl does not know that Karpenter annotation (it would
evict them; the engine holds them — tested in test_engine_drain.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from engine_cluster import N1, N2, N3, drain_cluster

from bot.adapters.kube import KubeAdapter
from bot.engine.drain import DrainSettings, NodeOutcome, PodOutcome, Reason, drain_nodes, plan_drain
from bot.engine.inventory import Inventory
from sandbox.kube import SandboxServer

NODES = [N1, N2, N3]
Sets = dict[str, dict[str, set[str]]]


def pods_by_node(kube: KubeAdapter) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {n: set() for n in NODES}
    for p in kube.list_pods():
        if p["spec"].get("nodeName") in out:
            out[p["spec"]["nodeName"]].add(f"{p['metadata']['namespace']}/{p['metadata']['name']}")
    return out


def kubectl_drain(binary: str, sb: SandboxServer, force: bool) -> Sets:
    kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), None)
    out: Sets = {}
    for node in NODES:
        before = pods_by_node(kube)[node]
        run = subprocess.run(
            [binary, "--kubeconfig", str(sb.kubeconfig), "drain", node, "--ignore-daemonsets",
             "--delete-emptydir-data", "--timeout=30s", *(["--force"] if force else [])],
            capture_output=True, text=True, timeout=60,
            env={"HOME": str(Path(sb.kubeconfig).parent), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        after = pods_by_node(kube)[node]
        said_evicting = set(re.findall(r"^evicting pod (\S+)$", run.stdout, re.MULTILINE))
        # One warning line, its parts joined by "; " (daemonsets, no controller, local storage …).
        warning = re.search(r"^Warning: (.+)$", run.stderr, re.MULTILINE)
        parts = warning.group(1).split("; ") if warning else []
        skipped = next(
            (p.split(": ", 1)[1] for p in parts if p.startswith("ignoring DaemonSet-managed Pods: ")), ""
        )
        refused: set[str] = set()
        for line in run.stderr.splitlines():
            if line.startswith("cannot delete "):  # kubectl's closing summary of the node's errors
                refused |= set(line.rsplit(": ", 1)[1].split(", "))
        assert (run.returncode == 0) == (not refused), run.stderr
        assert said_evicting == before - after, "kubectl's own report disagrees with the cluster"
        out[node] = {
            "evicted": before - after,
            "skipped": set(skipped.split(", ")) if skipped else set(),
            "refused": refused,
            "left": after,
        }
    return out


def engine_drain(sb: SandboxServer, force: bool) -> Sets:
    kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), None)
    inv = Inventory.build(kube)
    plans = plan_drain(inv, NODES, force)
    results = drain_nodes(
        kube, plans, DrainSettings(max_parallel_nodes=3, retry_interval=0.2, pod_timeout=20)
    )
    after = pods_by_node(kube)
    out: Sets = {}
    for r in results:
        refused = r.outcome is NodeOutcome.REFUSED
        out[r.node] = {
            "evicted": {p.key for p in r.pods_with(PodOutcome.GONE)},
            # kubectl prints its DaemonSet warning only for a node it goes on to drain.
            "skipped": set() if refused else {d.pod.key for d in r.plan.skip if d.reason is Reason.DAEMONSET},
            "refused": {d.pod.key for d in r.plan.refuse},
            "left": after[r.node],
        }
    return out


@pytest.mark.kubectl
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_engine_evicts_skips_and_refuses_what_kubectl_drain_does(kubectl_binary: str, force: bool) -> None:
    with (
        SandboxServer(objects=drain_cluster()) as for_kubectl,
        SandboxServer(objects=drain_cluster()) as for_engine,
    ):
        expected = kubectl_drain(kubectl_binary, for_kubectl, force)
        actual = engine_drain(for_engine, force)
    assert actual == expected
    # The fixture exercises every verdict: something evicted, skipped and refused (or forced).
    assert expected[N1]["evicted"] and expected[N1]["skipped"]
    if force:
        assert all(not expected[n]["refused"] for n in NODES)
        assert "shop/debug-shell" in expected[N2]["evicted"]
        assert "kube-system/old-agent-zz9" in expected[N3]["evicted"]
    else:
        assert expected[N2]["refused"] == {"shop/debug-shell"}
        assert expected[N3]["refused"] == {"kube-system/old-agent-zz9"}
