"""Results after a real drain in the sandbox: Bottlerocket nodes launched by Karpenter for the
displaced pods, an AL2 node launched by its node group as the baseline; the figures computed from
the timings agree with the sandbox's ground truth within 1%, and the chart is a PNG."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy
import pytest
from conftest import World, start_world, wait_for

from bot.domain.timings import NodeTiming, PodTiming
from bot.engine.drain import DrainSettings, NodeOutcome, drain_nodes, plan_drain
from bot.engine.inventory import Inventory
from bot.engine.pods import NODEGROUP_LABEL
from bot.reports.render import results_text
from bot.services.reports import results_chart, results_report, security_report
from handlers.report_views import results_blocks
from sandbox.slack.blockkit import validate_blocks

JSON = dict[str, Any]


@pytest.fixture
def world() -> Iterator[World]:
    yield from start_world(time_scale=50.0)


BASELINE_DEPLOYMENT: JSON = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "baseline", "namespace": "analytics"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "baseline"}},
        "template": {
            "metadata": {"labels": {"app": "baseline"}},
            "spec": {
                "nodeSelector": {"workload-class": "general"},
                "containers": [
                    {
                        "name": "app",
                        "image": "111122223333.dkr.ecr.us-west-2.amazonaws.com/analytics/dashboard:1.2.0",
                        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                    }
                ],
            },
        },
    },
}


def _at(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def node_timings(truth: JSON, os_name: str) -> list[NodeTiming]:
    """The nodes launched during the test (not the seeded ones), as the engine records them."""
    return [
        NodeTiming(
            name=name,
            os_family=os_name.lower(),
            instance_type=None,
            launched_at=_at(record.get("launched")),
            registered_at=_at(record.get("registered")),
            ready_at=_at(record.get("ready")),
        )
        for name, record in truth["nodes"].items()
        if not record.get("seeded") and record.get("os") == os_name
    ]


def pod_timings(truth: JSON) -> list[PodTiming]:
    out = []
    for key, record in truth["pods"].items():
        evicted = record.get("evicted")
        if not evicted:
            continue
        replacement = truth["pods"].get(record.get("replacement", ""), {})
        namespace, name = key.split("/", 1)
        out.append(
            PodTiming(
                namespace=namespace,
                name=name,
                workload=key,
                evicted_at=_at(evicted["at"]),
                replacement=record.get("replacement"),
                scheduled_at=_at(replacement.get("scheduled")),
                ready_at=_at(replacement.get("ready")),
                node=replacement.get("node"),
            )
        )
    return out


def _close(ours: float | None, truth: float) -> bool:
    return ours is not None and abs(ours - truth) <= 0.01 * abs(truth) + 1e-9


def setup_bottlerocket(world: World) -> None:
    """What the engine does before a drain wave: a Bottlerocket EC2NodeClass and a NodePool that carry
    the node group's labels (workload-class: web)."""
    al2 = world.kube.get_ec2nodeclass("al2")
    spec = {k: al2["spec"][k] for k in ("role", "subnetSelectorTerms", "securityGroupSelectorTerms")}
    world.kube.create_ec2nodeclass(
        {
            "metadata": {"name": "bottlerocket"},
            "spec": {**spec, "amiSelectorTerms": [{"alias": "bottlerocket@v1.26.2"}]},
        }
    )
    template = world.kube.get_nodepool("general-al2")["spec"]
    template["template"]["metadata"] = {"labels": {"workload-class": "web"}}
    template["template"]["spec"]["nodeClassRef"]["name"] = "bottlerocket"
    world.kube.create_nodepool({"metadata": {"name": "bottlerocket"}, "spec": template})


def test_results_after_a_drain_agree_with_the_sandboxs_ground_truth(world: World) -> None:
    ctl = world.sandbox.controllers
    assert ctl is not None
    setup_bottlerocket(world)
    # The AL2 baseline: Karpenter launches an AL2 node into general-al2 for a new workload there.
    general = [
        n["metadata"]["name"]
        for n in world.kube.list_nodes(label_selector="karpenter.sh/nodepool=general-al2")
    ]
    for name in general:
        world.kube.cordon(name)
    world.kube.request(
        "POST",
        "/apis/apps/v1/namespaces/analytics/deployments",
        body=BASELINE_DEPLOYMENT,
        content_type="application/json",
    )

    inventory = Inventory.build(world.kube)
    web = sorted(n.name for n in inventory.nodes.values() if n.labels.get(NODEGROUP_LABEL) == "ng-web")
    for name in web:  # the wave cordons its nodes first, so displaced pods go to Bottlerocket
        world.kube.cordon(name)
    plans = [p for p in plan_drain(inventory, web) if not p.refuse and not p.hold and p.evict][:3]
    assert len(plans) == 3
    results = drain_nodes(world.kube, plans, DrainSettings(max_parallel_nodes=3, pod_timeout=120))
    assert all(r.outcome is NodeOutcome.DRAINED for r in results), results

    def settled() -> JSON | None:
        truth = ctl.ground_truth()
        pods = pod_timings(truth)
        al2 = node_timings(truth, "AL2")
        if pods and all(p.ready_at for p in pods) and al2 and all(n.ready_at for n in al2):
            return truth
        return None

    truth = wait_for("every displaced pod Ready again and the AL2 baseline node Ready", settled, timeout=120)
    nodes, baseline, pods = (
        node_timings(truth, "Bottlerocket"),
        node_timings(truth, "AL2"),
        pod_timings(truth),
    )
    assert nodes and all(n.ready_at for n in nodes), "Karpenter launched no Bottlerocket node"
    report = results_report(world.plan, 1, nodes, pods, al2_baseline=baseline)

    # Ground truth, computed apart: emulated seconds straight from the sandbox's records.
    br_truth = [
        r["ready"] - r["launched"]
        for r in truth["nodes"].values()
        if not r.get("seeded") and r.get("os") == "Bottlerocket"
    ]
    al2_truth = [
        r["ready"] - r["launched"]
        for r in truth["nodes"].values()
        if not r.get("seeded") and r.get("os") == "AL2"
    ]
    pod_truth = [
        truth["pods"][r["replacement"]]["ready"] - r["evicted"]["at"]
        for r in truth["pods"].values()
        if r.get("evicted")
    ]
    for spread, values in (
        (report.bottlerocket_ready, br_truth),
        (report.al2_ready, al2_truth),
        (report.reschedule, pod_truth),
    ):
        p50, p90 = numpy.percentile(values, [50, 90])
        assert spread.count == len(values)
        assert _close(spread.p50, float(p50)) and _close(spread.p90, float(p90)), (spread, p50, p90)
    assert report.nodes_pending == () and report.pods_pending == ()
    node_gain = report.comparisons[0]
    assert node_gain.observed is not None
    assert _close(node_gain.observed, float(numpy.median(al2_truth) - numpy.median(br_truth)))
    assert node_gain.case_study == 5.0

    assert "case study ~5 s" in results_text(report)
    # The Bottlerocket column of the security table is now observed, and equals the emulator's truth.
    emulator = world.sandbox.aws
    assert emulator is not None
    security = security_report(world.plan, 1, world.kube, world.aws)
    by_name = {i.name: i for i in emulator.instances()}
    launched = [by_name[n] for n in security.bottlerocket_nodes]
    assert {n.name for n in nodes} <= set(security.bottlerocket_nodes)
    assert security.bottlerocket.instances == len(launched) > 0
    assert security.bottlerocket.imds_v1 == sum(1 for i in launched if i.http_tokens == "optional")
    assert security.bottlerocket.volumes == 2 * len(launched)  # OS volume + data volume
    assert security.bottlerocket.unencrypted_volumes == sum(2 for i in launched if not i.ebs_encrypted)
    expected: dict[str, int] = {}
    for i in launched:
        for severity, count in emulator.active_finding_counts(i.instance_id).items():
            expected[severity.value] = expected.get(severity.value, 0) + count
    assert security.bottlerocket.findings is not None
    assert {k: v for k, v in security.bottlerocket.findings.items() if v} == {
        k: v for k, v in expected.items() if v
    }
    imds = next(r for r in security.rows if r.topic == "IMDSv2")
    assert imds.bottlerocket.source.value == "observed"

    png = results_chart(report)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    assert validate_blocks(results_blocks(report)) == []
