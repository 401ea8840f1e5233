"""Karpenter and EKS managed node groups behind the sandbox API, with the AWS emulator (moto) behind them.

Time runs 150x faster; latencies and the order of disruptions are read back from the ground truth in
emulated seconds.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Iterator

import boto3
import pytest
from kubernetes import client, config
from test_controllers_support import deployment, pdb, pods_of, ready, running, wait_for

from sandbox.aws import AwsEmulator, AwsSeed, NodeGroupSeed
from sandbox.controllers import Controllers
from sandbox.kube import SandboxServer
from sandbox.kube.jsontypes import JSON

SCALE = 150.0
# Tests that measure latencies run slower: a launch through moto takes real milliseconds that a fast
# clock turns into emulated seconds (0.3 s at 150x is 45 s, longer than registration itself).
MEASURING_SCALE = 40.0


@pytest.fixture
def aws() -> Iterator[AwsEmulator]:
    with AwsEmulator(region="us-west-2") as emulator:
        emulator.seed(
            AwsSeed(cluster_name="sandbox", node_groups=(NodeGroupSeed("al2-ng", desired=0, max_size=5),))
        )
        yield emulator


def nodeclass(name: str, alias: str) -> JSON:
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name},
        "spec": {
            "role": "KarpenterNodeRole-sandbox",
            "amiSelectorTerms": [{"alias": alias}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
        },
    }


def nodepool(name: str, nodeclass_name: str, *, budget: str = "1", consolidate_after: str = "Never") -> JSON:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": nodeclass_name,
                    },
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large"]},
                    ],
                }
            },
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": consolidate_after,
                "budgets": [{"nodes": budget}],
            },
        },
    }


def _objects() -> list[JSON]:
    return [nodeclass("al2", "al2@latest"), nodeclass("bottlerocket", "bottlerocket@latest")]


def _nodes(sb: SandboxServer) -> list[JSON]:
    items, _, _ = sb.api.store.list_objects(sb.api.rt("", "v1", "nodes"))
    return items


def _claims(sb: SandboxServer) -> list[JSON]:
    items, _, _ = sb.api.store.list_objects(sb.api.rt("karpenter.sh", "v1", "nodeclaims"))
    return items


def _condition(obj: JSON, kind: str) -> str:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), "")


def _kubectl(sb: SandboxServer, *args: str) -> str:
    binary = shutil.which("kubectl")
    assert binary is not None, "kubectl must be on PATH"
    result = subprocess.run(
        [binary, "--kubeconfig", str(sb.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(sb.kubeconfig.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_pending_pod_triggers_a_nodeclaim_and_a_ready_bottlerocket_node(aws: AwsEmulator) -> None:
    with running([*_objects(), nodepool("br", "bottlerocket")], scale=MEASURING_SCALE, aws=aws) as (sb, ctl):
        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        apps.create_namespaced_deployment("default", deployment("web", 2, cpu="500m"))
        wait_for("2 pods Ready", lambda: sum(ready(p) for p in pods_of(sb, "web")) == 2)
        (claim,) = _claims(sb)
        assert claim["metadata"]["ownerReferences"][0]["kind"] == "NodePool"
        assert all(_condition(claim, c) == "True" for c in ("Launched", "Registered", "Initialized", "Ready"))
        (node,) = _nodes(sb)
        labels = node["metadata"]["labels"]
        assert (
            labels["karpenter.sh/nodepool"] == "br"
            and labels["karpenter.k8s.aws/ec2nodeclass"] == "bottlerocket"
        )
        assert labels["karpenter.sh/capacity-type"] == "on-demand"
        assert labels["node.kubernetes.io/instance-type"] == "m5.large"
        assert labels["karpenter.sh/registered"] == "true" and labels["karpenter.sh/initialized"] == "true"
        assert labels["topology.kubernetes.io/zone"] in ("us-west-2a", "us-west-2b")
        assert not [t for t in node["spec"].get("taints", []) if t["key"] == "karpenter.sh/unregistered"]
        info = node["status"]["nodeInfo"]
        assert info["osImage"].startswith("Bottlerocket OS 1.26.2 (aws-k8s-1.31)")
        assert info["kernelVersion"].startswith("6.1.")
        assert "bottlerocket" in info["containerRuntimeVersion"]
        assert claim["status"]["providerID"] == node["spec"]["providerID"]
        instance_id = node["spec"]["providerID"].rsplit("/", 1)[-1]
        assert aws.instance(instance_id).name == node["metadata"]["name"]
        truth = ctl.ground_truth()["nodes"][node["metadata"]["name"]]
        assert truth["os"] == "Bottlerocket", truth
        assert 30 <= truth["registered"] - truth["launched"] <= 42
        assert 50 <= truth["ready"] - truth["launched"] <= 62
        out = _kubectl(sb, "get", "nodeclaims")
        assert claim["metadata"]["name"] in out and "True" in out


def test_nodepool_limits_cap_what_karpenter_launches(aws: AwsEmulator) -> None:
    pool = nodepool("small", "bottlerocket")
    pool["spec"]["limits"] = {"cpu": "2"}
    with running([*_objects(), pool], scale=SCALE, aws=aws) as (sb, _ctl):
        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        apps.create_namespaced_deployment("default", deployment("big", 3, cpu="1500m"))
        wait_for("one pod Ready", lambda: sum(ready(p) for p in pods_of(sb, "big")) == 1)
        wait_for("a few more provisioning rounds", lambda: ctl_passes(_ctl, 40))
        assert len(_claims(sb)) == 1  # m5.large is 2 vCPU: a second node would exceed cpu: 2


def ctl_passes(ctl: Controllers, n: int) -> bool:
    if not hasattr(ctl, "_mark"):
        ctl._mark = ctl.passes  # type: ignore[attr-defined]
    return bool(ctl.passes - ctl._mark >= n)  # type: ignore[attr-defined]


def _drifting_cluster(aws: AwsEmulator, extra: list[JSON]) -> list[JSON]:
    return [*_objects(), nodepool("general", "al2", budget="1"), *extra]


@pytest.mark.kubectl
def test_changing_nodeclassref_to_bottlerocket_replaces_nodes_one_at_a_time_without_pdb_violation(
    aws: AwsEmulator,
) -> None:
    objects = _drifting_cluster(
        aws, [deployment("shop", 3, cpu="1500m"), pdb("shop", "shop", maxUnavailable=1)]
    )
    with running(objects, scale=SCALE, aws=aws) as (sb, ctl):
        wait_for(
            "3 shop pods Ready on AL2", lambda: sum(ready(p) for p in pods_of(sb, "shop")) == 3, timeout=30
        )
        al2_nodes = {n["metadata"]["name"] for n in _nodes(sb)}
        assert len(al2_nodes) == 3
        assert all(n["status"]["nodeInfo"]["osImage"] == "Amazon Linux 2" for n in _nodes(sb))
        originals = {c["metadata"]["name"] for c in _claims(sb)}
        _kubectl(
            sb,
            "patch",
            "nodepool",
            "general",
            "--type",
            "merge",
            "-p",
            '{"spec":{"template":{"spec":{"nodeClassRef":{"name":"bottlerocket"}}}}}',
        )
        wait_for(
            "Drifted=True on every original claim",
            lambda: all(
                _condition(c, "Drifted") == "True" for c in _claims(sb) if c["metadata"]["name"] in originals
            ),
            timeout=10,
        )

        def all_bottlerocket() -> bool:
            nodes = _nodes(sb)
            return (
                len(nodes) == 3
                and all(n["status"]["nodeInfo"]["osImage"].startswith("Bottlerocket") for n in nodes)
                and sum(ready(p) for p in pods_of(sb, "shop")) == 3
            )

        wait_for("every node replaced by Bottlerocket", all_bottlerocket, timeout=60)
        truth = ctl.ground_truth()
        olds = sorted((truth["nodes"][n] for n in al2_nodes), key=lambda r: r["disrupted"]["at"])
        for before, after in itertools.pairwise(olds):
            assert after["disrupted"]["at"] >= before["deleted"], "two drifted nodes were disrupted at once"
        assert all(r["disrupted"]["reason"] == "Drifted" for r in olds)
        new = [r for name, r in truth["nodes"].items() if name not in al2_nodes]
        assert len(new) == 3 and all(r["os"] == "Bottlerocket" for r in new)
        # The replacement is launched first: each old node goes after its replacement was Ready.
        for old in olds:
            assert any(r["ready"] <= old["deleted"] and r["launched"] >= old["disrupted"]["at"] for r in new)
        # Bottlerocket Karpenter nodes are Ready ~5 s sooner than AL2 ones.
        al2_ready = [r["ready"] - r["launched"] for r in olds]
        br_ready = [r["ready"] - r["launched"] for r in new]
        # (medians: one launch slowed by a loaded machine must not decide it)
        assert sorted(br_ready)[1] + 3 <= sorted(al2_ready)[1]
        assert truth["pdbViolations"] == []
        assert {e["by"] for e in truth["evictions"]} == {"karpenter"}


def test_a_do_not_disrupt_pods_node_is_never_disrupted(aws: AwsEmulator) -> None:
    objects = _drifting_cluster(
        aws,
        [
            deployment("free", 1, cpu="1500m"),
            deployment("pinned", 1, cpu="1500m", annotations={"karpenter.sh/do-not-disrupt": "true"}),
        ],
    )
    with running(objects, scale=SCALE, aws=aws) as (sb, ctl):
        wait_for(
            "both Ready",
            lambda: all(any(ready(p) for p in pods_of(sb, a)) for a in ("free", "pinned")),
            timeout=30,
        )
        pinned_node = pods_of(sb, "pinned")[0]["spec"]["nodeName"]
        pool = client.CustomObjectsApi(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        pool.patch_cluster_custom_object(
            "karpenter.sh",
            "v1",
            "nodepools",
            "general",
            {"spec": {"template": {"spec": {"nodeClassRef": {"name": "bottlerocket"}}}}},
        )
        wait_for(
            "free moved to Bottlerocket",
            lambda: any(
                ready(p)
                and "Bottlerocket"
                in (ctl.ground_truth()["nodes"].get(p["spec"]["nodeName"], {}).get("os") or "")
                for p in pods_of(sb, "free")
            ),
            timeout=30,
        )
        start = ctl.clock.now()
        wait_for("120 more emulated seconds", lambda: ctl.clock.now() - start > 120, timeout=10)
        node = next(n for n in _nodes(sb) if n["metadata"]["name"] == pinned_node)
        assert not [t for t in node["spec"].get("taints", []) if t["key"] == "karpenter.sh/disrupted"]
        claim = next(c for c in _claims(sb) if c["status"].get("nodeName") == pinned_node)
        assert _condition(claim, "Drifted") == "True"  # drifted, and left alone
        assert "disrupted" not in ctl.ground_truth()["nodes"][pinned_node]


def test_scaling_a_managed_node_group_down_through_boto3_removes_its_nodes(aws: AwsEmulator) -> None:
    eks = boto3.client("eks", **aws.client_kwargs())
    eks.update_nodegroup_config(
        clusterName="sandbox",
        nodegroupName="al2-ng",
        scalingConfig={"minSize": 0, "maxSize": 5, "desiredSize": 3},
    )
    with running([deployment("api", 2)], scale=SCALE, aws=aws) as (sb, ctl):
        wait_for("3 node group nodes Ready", lambda: sum(ready_node(n) for n in _nodes(sb)) == 3, timeout=20)
        nodes = _nodes(sb)
        assert all(n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "al2-ng" for n in nodes)
        assert all(n["status"]["nodeInfo"]["osImage"] == "Amazon Linux 2" for n in nodes)
        truth = ctl.ground_truth()["nodes"]
        assert all(
            20 <= truth[n["metadata"]["name"]]["ready"] - truth[n["metadata"]["name"]]["registered"] <= 32
            for n in nodes
        )
        wait_for("2 api pods Ready", lambda: sum(ready(p) for p in pods_of(sb, "api")) == 2)
        eks.update_nodegroup_config(
            clusterName="sandbox",
            nodegroupName="al2-ng",
            scalingConfig={"minSize": 0, "maxSize": 5, "desiredSize": 1},
        )
        wait_for("1 node left", lambda: len(_nodes(sb)) == 1, timeout=20)
        assert len(aws.node_group_instances("al2-ng")) == 1
        (left,) = _nodes(sb)
        assert left["spec"]["providerID"].endswith(aws.node_group_instances("al2-ng")[0].instance_id)
        wait_for(
            "api Ready on the remaining node",
            lambda: (
                sum(
                    ready(p) and p["spec"]["nodeName"] == left["metadata"]["name"] for p in pods_of(sb, "api")
                )
                == 2
            ),
        )


def ready_node(node: JSON) -> bool:
    return _condition(node, "Ready") == "True"


def test_a_node_that_never_becomes_ready_leaves_its_pods_pending(aws: AwsEmulator) -> None:
    with running([*_objects(), nodepool("br", "bottlerocket")], scale=SCALE, aws=aws) as (sb, ctl):
        ctl.fault_node_never_ready(nodepool="br")
        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        apps.create_namespaced_deployment("default", deployment("web", 1))
        (node,) = wait_for(
            "a registered node",
            lambda: [
                n for n in _nodes(sb) if n["metadata"]["labels"].get("karpenter.sh/registered") == "true"
            ],
        )
        start = ctl.clock.now()
        wait_for("90 emulated seconds", lambda: ctl.clock.now() - start > 90, timeout=10)
        (node,) = _nodes(sb)
        assert not ready_node(node)
        assert not any(ready(p) for p in pods_of(sb, "web"))
        ctl.clear_fault()
        wait_for("Ready once the fault is cleared", lambda: ready_node(_nodes(sb)[0]))
        wait_for("the pod runs", lambda: any(ready(p) for p in pods_of(sb, "web")))


def test_changing_the_ec2nodeclass_ami_drifts_its_claims_and_empty_nodes_are_consolidated(
    aws: AwsEmulator,
) -> None:
    objects = [
        *_objects(),
        nodepool("general", "al2", budget="100%", consolidate_after="30s"),
        deployment("web", 1),
    ]
    with running(objects, scale=SCALE, aws=aws) as (sb, ctl):
        wait_for("web Ready", lambda: any(ready(p) for p in pods_of(sb, "web")), timeout=30)
        (claim,) = _claims(sb)
        custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        custom.patch_cluster_custom_object(
            "karpenter.k8s.aws",
            "v1",
            "ec2nodeclasses",
            "al2",
            {"spec": {"amiSelectorTerms": [{"alias": "al2@v20241011"}]}},
        )
        wait_for(
            "the node replaced",
            lambda: (
                claim["metadata"]["name"] not in {c["metadata"]["name"] for c in _claims(sb)}
                and any(ready(p) for p in pods_of(sb, "web"))
            ),
            timeout=30,
        )
        drifted = ctl.ground_truth()["nodes"][claim["status"]["nodeName"]]["disrupted"]
        assert drifted["reason"] == "Drifted"
        apps = client.AppsV1Api(custom.api_client)
        apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 0}})
        wait_for("the empty node consolidated", lambda: not _nodes(sb) and not _claims(sb), timeout=30)
        reasons = [r.get("disrupted", {}).get("reason") for r in ctl.ground_truth()["nodes"].values()]
        assert sorted(reasons) == ["Drifted", "Empty"]


def test_drain_evicts_non_critical_pods_before_system_critical_ones(aws: AwsEmulator) -> None:
    critical = deployment("dns", 1, cpu="200m")
    critical["spec"]["template"]["spec"]["priorityClassName"] = "system-cluster-critical"
    objects = [
        *_objects(),
        nodepool("general", "al2", budget="1"),
        deployment("app", 2, cpu="200m"),
        critical,
    ]
    with running(objects, scale=SCALE, aws=aws) as (sb, ctl):
        wait_for(
            "all Ready on one node",
            lambda: sum(ready(p) for p in pods_of(sb, "app") + pods_of(sb, "dns")) == 3,
            timeout=30,
        )
        assert len(_nodes(sb)) == 1
        custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(sb.kubeconfig)))
        custom.patch_cluster_custom_object(
            "karpenter.sh",
            "v1",
            "nodepools",
            "general",
            {"spec": {"template": {"spec": {"nodeClassRef": {"name": "bottlerocket"}}}}},
        )
        wait_for(
            "3 evictions",
            lambda: len([e for e in ctl.ground_truth()["evictions"] if e["code"] == 201]) == 3,
            timeout=30,
        )
        order = [e["pod"].split("-")[0] for e in ctl.ground_truth()["evictions"] if e["code"] == 201]
        assert order == ["app", "app", "dns"]
