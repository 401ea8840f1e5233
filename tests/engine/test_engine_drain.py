"""Drain execution over the wire against the sandbox: exactly the planned pods are evicted, PDBs are
waited out (429 then success once relaxed), do-not-disrupt pods are held, critical pods go last."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from engine_cluster import N1, N2, N3, drain_cluster
from kubernetes import client, config

from bot.adapters.kube import KubeAdapter
from bot.engine.drain import (
    Drainer,
    DrainEvent,
    DrainSettings,
    EventKind,
    NodeOutcome,
    NodeResult,
    PodOutcome,
    plan_node_drain,
)
from bot.engine.inventory import Inventory
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import tiny_cluster

FAST = DrainSettings(
    max_parallel_nodes=3, retry_interval=0.1, poll_interval=0.05, pod_timeout=10, wave_timeout=30
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[DrainEvent] = []
        self.lock = threading.Lock()
        self.blocked = threading.Event()

    def __call__(self, event: DrainEvent) -> None:
        with self.lock:
            self.events.append(event)
        if event.kind is EventKind.EVICTION_BLOCKED:
            self.blocked.set()

    def of(self, kind: EventKind) -> list[DrainEvent]:
        with self.lock:
            return [e for e in self.events if e.kind is kind]


def drain(
    sb: SandboxServer, nodes: list[str], settings: DrainSettings = FAST, **kw: Any
) -> tuple[list[NodeResult], Recorder]:
    kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), None)
    inv = Inventory.build(kube)
    plans = [plan_node_drain(inv.nodes[n], inv.pods_on(n), daemonsets=inv.daemonsets) for n in nodes]
    events = kw.pop("events", None) or Recorder()
    drainer = Drainer(kube, settings, events=events, budgets=inv.budget_allowances(), **kw)
    return drainer.drain(plans), events


def evictions(sb: SandboxServer, start: int = 0) -> list[str]:
    entries = sb.api.log.since(start)[0]
    return [f"{e['namespace']}/{e['name']}" for e in entries if e["subresource"] == "eviction"]


def pods_on(sb: SandboxServer, node: str) -> set[str]:
    kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), None)
    return {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in kube.list_pods(field_selector=f"spec.nodeName={node}")
    }


@pytest.fixture
def mixed() -> Iterator[SandboxServer]:
    with SandboxServer(objects=drain_cluster()) as sb:
        yield sb


def test_exactly_the_planned_pods_are_evicted_and_refused_nodes_keep_theirs(mixed: SandboxServer) -> None:
    before = {n: pods_on(mixed, n) for n in (N1, N2, N3)}
    results, events = drain(mixed, [N1, N2, N3])
    drained, refused_n2, refused_n3 = results
    assert drained.outcome is NodeOutcome.DRAINED
    assert sorted(evictions(mixed)) == sorted(p.key for p in drained.plan.evict)
    assert pods_on(mixed, N1) == {d.pod.key for d in drained.plan.skip}
    assert (refused_n2.outcome, refused_n3.outcome) == (NodeOutcome.REFUSED, NodeOutcome.REFUSED)
    assert (
        "cannot delete Pods that declare no controller (use --force to override): shop/debug-shell"
        in refused_n2.message
    )
    assert pods_on(mixed, N2) == before[N2] and pods_on(mixed, N3) == before[N3]
    kube = KubeAdapter.from_kubeconfig(str(mixed.kubeconfig), None)
    assert all(kube.get_node(n)["spec"].get("unschedulable") for n in (N1, N2, N3))  # cordoned, as kubectl
    assert len(events.of(EventKind.POD_GONE)) == len(drained.plan.evict)


def test_critical_pods_are_evicted_after_every_other_pod(mixed: SandboxServer) -> None:
    drain(mixed, [N1])
    order = evictions(mixed)
    assert order[-1] == "kube-system/coredns-5d78c9869d-1abc"
    assert len(order) == 5


def test_do_not_disrupt_pods_are_held_reported_and_keep_their_node_unfinished() -> None:
    with SandboxServer(objects=drain_cluster(with_do_not_disrupt=True)) as sb:
        (result,), events = drain(sb, [N1])
        assert result.outcome is NodeOutcome.HELD
        assert "shop/trainer-1" not in evictions(sb)
        assert "shop/trainer-1" in pods_on(sb, N1)
        (held,) = events.of(EventKind.POD_HELD)
        assert held.pod == "shop/trainer-1" and "karpenter.sh/do-not-disrupt" in held.message


def test_a_pdb_blocks_with_429_until_relaxed_through_the_admin_client() -> None:
    with SandboxServer(objects=tiny_cluster()) as sb:
        holder: dict[str, list[NodeResult]] = {}
        events = Recorder()
        worker = threading.Thread(
            target=lambda: holder.setdefault("r", drain(sb, [N1, N2], events=events)[0])
        )
        worker.start()
        assert events.blocked.wait(10), "the second web pod's eviction was never refused by the PDB"
        admin = config.new_client_from_config(config_file=str(sb.kubeconfig))
        client.PolicyV1Api(admin).patch_namespaced_pod_disruption_budget(
            "web", "shop", {"spec": {"maxUnavailable": 2}}
        )
        worker.join(20)
        assert not worker.is_alive()
        assert [r.outcome for r in holder["r"]] == [NodeOutcome.DRAINED, NodeOutcome.DRAINED]
        blocked = events.of(EventKind.EVICTION_BLOCKED)[0]
        assert "The disruption budget web needs 2 healthy pods and has 2 currently" in blocked.message
        web = [e for e in evictions(sb) if e.startswith("shop/web")]
        assert len(web) >= 3  # two successes and at least one 429


def test_a_blocked_pdb_is_probed_by_one_eviction_at_a_time_until_the_pod_timeout() -> None:
    objects = tiny_cluster()
    for o in objects:
        if o["kind"] == "PodDisruptionBudget":
            o["spec"] = {"minAvailable": 3, "selector": o["spec"]["selector"]}
    with SandboxServer(objects=objects) as sb:
        settings = DrainSettings(
            max_parallel_nodes=3, retry_interval=0.1, poll_interval=0.05, pod_timeout=1.0
        )
        results, _ = drain(sb, [N1, N2, N3], settings)
        assert all(r.outcome is NodeOutcome.INCOMPLETE for r in results)
        assert all(r.pods_with(PodOutcome.TIMED_OUT) for r in results)
        # Without the per-PDB gate, three pods retrying every 0.1 s for 1 s would send ~30.
        assert len([e for e in evictions(sb) if e.startswith("shop/web")]) <= 15


def test_a_pod_replaced_under_the_same_name_counts_as_gone(mixed: SandboxServer) -> None:
    original = next(o for o in drain_cluster() if o["kind"] == "Pod" and o["metadata"]["name"] == "db-0")

    def recreate(event: DrainEvent) -> None:
        if event.kind is EventKind.POD_EVICTED and event.pod == "shop/db-0":
            mixed.api.load([original])  # a StatefulSet brings db-0 back at once, with a new UID

    (result,), _ = drain(mixed, [N1], events=recreate)
    assert result.outcome is NodeOutcome.DRAINED
    (db,) = [r.pod for r in result.pods if r.pod.name == "db-0"]
    now = KubeAdapter.from_kubeconfig(str(mixed.kubeconfig), None).get_pod("shop", "db-0")
    assert now["metadata"]["uid"] != db.uid


def test_stopping_before_the_first_eviction_evicts_nothing(mixed: SandboxServer) -> None:
    (result,), _ = drain(mixed, [N1], should_stop=lambda: True)
    assert result.outcome is NodeOutcome.INCOMPLETE
    assert {r.outcome for r in result.pods} == {PodOutcome.NOT_STARTED}
    assert evictions(mixed) == []


def test_the_wave_timeout_bounds_every_node_even_those_not_started_yet() -> None:
    objects = tiny_cluster()
    for o in objects:
        if o["kind"] == "PodDisruptionBudget":
            o["spec"] = {"minAvailable": 3, "selector": o["spec"]["selector"]}
    with SandboxServer(objects=objects) as sb:
        settings = DrainSettings(max_parallel_nodes=1, retry_interval=0.1, pod_timeout=30, wave_timeout=0.5)
        started = time.monotonic()
        results, _ = drain(sb, [N1, N2, N3], settings)
        assert time.monotonic() - started < 5
        assert [r.outcome for r in results] == [NodeOutcome.INCOMPLETE] * 3
        late = [e for e in evictions(sb) if e in ("shop/web-7f9c6d8b5-m8q7z", "shop/web-7f9c6d8b5-t5v9w")]
        assert late == []  # nodes reached after the deadline send no eviction at all


def test_a_pod_under_two_pdbs_fails_at_once_with_the_apiservers_reason() -> None:
    second = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-too", "namespace": "shop"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }
    with SandboxServer(objects=[*tiny_cluster(), second]) as sb:
        (result,), events = drain(sb, [N1])
        assert result.outcome is NodeOutcome.INCOMPLETE
        (failed,) = result.pods_with(PodOutcome.FAILED)
        assert failed.key == "shop/web-7f9c6d8b5-x2k4p"
        assert "more than one PodDisruptionBudget" in events.of(EventKind.POD_FAILED)[0].message
        assert evictions(sb) == ["shop/web-7f9c6d8b5-x2k4p"]  # permanent: not retried
