"""The demo as the migration will use it: every workload running at start, the general-al2 pool's
nodes busy, a Bottlerocket NodePool that mirrors ng-data taking the database, node groups scaled to
zero and deleted through boto3, NodeClaims deleted through the API, and the two workloads Bottlerocket's
read-only root breaks.

Time runs 100x faster; nothing here measures a latency.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client, config
from test_controllers_support import ready, wait_for

from sandbox.kube.jsontypes import JSON
from sandbox.main import Sandbox

SCALE = 100.0
NODEPOOL = "karpenter.sh/nodepool"
NODEGROUP = "eks.amazonaws.com/nodegroup"
BOTTLEROCKET_OS = "Bottlerocket OS 1.26.2 (aws-k8s-1.31)"


@pytest.fixture
def demo() -> Iterator[Sandbox]:
    with Sandbox("demo", time_scale=SCALE) as sb:
        yield sb


def _api(sb: Sandbox) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(sb.kubeconfig))  # type: ignore[no-untyped-call]
    return api


def _list(sb: Sandbox, group: str, version: str, resource: str) -> list[JSON]:
    api = sb.kube_server.api
    items, _, _ = api.store.list_objects(api.rt(group, version, resource))
    return items


def _nodes(sb: Sandbox) -> dict[str, JSON]:
    return {n["metadata"]["name"]: n for n in _list(sb, "", "v1", "nodes")}


def _pods(sb: Sandbox, namespace: str, name: str) -> list[JSON]:
    return [
        p
        for p in _list(sb, "", "v1", "pods")
        if p["metadata"]["namespace"] == namespace
        and (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == name
    ]


def _is_daemon(pod: JSON) -> bool:
    return any(r.get("kind") == "DaemonSet" for r in pod["metadata"].get("ownerReferences") or ())


def _crash_looping(pod: JSON) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (
        bool(statuses) and statuses[0].get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
    )


def _ec2_nodeclass_bottlerocket(sb: Sandbox) -> JSON:
    """The EC2NodeClass the engine creates: the al2 one's role and selectors, a pinned Bottlerocket."""
    al2 = next(
        c for c in _list(sb, "karpenter.k8s.aws", "v1", "ec2nodeclasses") if c["metadata"]["name"] == "al2"
    )
    spec = {k: al2["spec"][k] for k in ("role", "subnetSelectorTerms", "securityGroupSelectorTerms")}
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "bottlerocket"},
        "spec": {**spec, "amiSelectorTerms": [{"alias": "bottlerocket@v1.26.2"}]},
    }


def _nodepool(name: str, labels: dict[str, str], taints: list[JSON]) -> JSON:
    """A Bottlerocket NodePool mirroring a node group's labels and taints, as the engine writes it."""
    template_spec: JSON = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "bottlerocket"},
        "requirements": [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
            {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
        ],
    }
    if taints:
        template_spec["taints"] = taints
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {"metadata": {"labels": labels}, "spec": template_spec},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"},
        },
    }


def _create_bottlerocket_pool(sb: Sandbox, pool: JSON) -> None:
    custom = client.CustomObjectsApi(_api(sb))
    custom.create_cluster_custom_object(
        "karpenter.k8s.aws", "v1", "ec2nodeclasses", _ec2_nodeclass_bottlerocket(sb)
    )
    custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)


def _data_pool() -> JSON:
    return _nodepool(
        "bottlerocket-ng-data",
        {"workload-class": "data"},
        [{"key": "dedicated", "value": "data", "effect": "NoSchedule"}],
    )


def _on_pool(sb: Sandbox, pods: list[JSON], pool: str) -> bool:
    nodes = _nodes(sb)
    return bool(pods) and all(
        ready(p)
        and p["spec"].get("nodeName") in nodes
        and nodes[p["spec"]["nodeName"]]["metadata"]["labels"].get(NODEPOOL) == pool
        for p in pods
    )


def test_every_demo_pod_is_ready_soon_after_start_and_the_general_pool_keeps_its_four_busy_nodes(
    demo: Sandbox,
) -> None:
    nodes = _nodes(demo)
    by_group: dict[str, int] = {}
    for n in nodes.values():
        labels = n["metadata"]["labels"]
        key = labels.get(NODEGROUP) or labels.get(NODEPOOL, "?")
        by_group[key] = by_group.get(key, 0) + 1
    assert by_group == {"ng-web": 10, "ng-batch": 6, "ng-data": 4, "general-al2": 4}
    pool_nodes = {name for name, n in nodes.items() if n["metadata"]["labels"].get(NODEPOOL) == "general-al2"}

    def not_ready() -> list[str]:
        return [
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in _list(demo, "", "v1", "pods")
            if not ready(p)
        ]

    wait_for("every demo pod Ready", lambda: not not_ready() or None, timeout=10)
    workloads_on_pool = {
        (p["spec"]["nodeName"], p["metadata"]["namespace"], p["metadata"]["labels"]["app.kubernetes.io/name"])
        for p in _list(demo, "", "v1", "pods")
        if p["spec"].get("nodeName") in pool_nodes and not _is_daemon(p)
    }
    assert {node for node, _, _ in workloads_on_pool} == pool_nodes
    assert {(ns, name) for _, ns, name in workloads_on_pool} == {
        ("search", "search-api"),
        ("analytics", "dashboard"),
    }

    # Well past the pool's consolidateAfter (1m) and several disruption polls: nothing goes away.
    start = demo.clock.now()
    wait_for("5 emulated minutes", lambda: demo.clock.now() >= start + 300)
    assert set(_nodes(demo)) == set(nodes)
    assert not [n for n, r in demo.controllers.ground_truth()["nodes"].items() if "disrupted" in r]  # type: ignore[union-attr]
    assert not not_ready()


def test_a_bottlerocket_nodepool_mirroring_ng_data_takes_the_database_pods_of_a_drained_node(
    demo: Sandbox,
) -> None:
    wait_for(
        "orders-db Ready", lambda: len([p for p in _pods(demo, "payments", "orders-db") if ready(p)]) == 3
    )
    _create_bottlerocket_pool(demo, _data_pool())
    core = client.CoreV1Api(_api(demo))
    data_nodes = [n for n, v in _nodes(demo).items() if v["metadata"]["labels"].get(NODEGROUP) == "ng-data"]
    for name in data_nodes:  # the wave cordons its nodes first, as migratebot does
        core.patch_node(name, {"spec": {"unschedulable": True}})
    victim = next(p for p in _pods(demo, "payments", "orders-db") if p["metadata"]["name"] == "orders-db-0")
    moved = [
        p
        for p in _list(demo, "", "v1", "pods")
        if p["spec"].get("nodeName") == victim["spec"]["nodeName"] and not _is_daemon(p)
    ]
    assert [p["metadata"]["name"] for p in moved] == ["orders-db-0"]
    core.create_namespaced_pod_eviction(
        "orders-db-0",
        "payments",
        client.V1Eviction(metadata=client.V1ObjectMeta(name="orders-db-0", namespace="payments")),
    )

    def landed() -> JSON | None:
        pod = next(
            (p for p in _pods(demo, "payments", "orders-db") if p["metadata"]["name"] == "orders-db-0"), None
        )
        if pod is None or pod["metadata"]["uid"] == victim["metadata"]["uid"] or not ready(pod):
            return None
        return pod

    pod = wait_for("orders-db-0 Ready again", landed, timeout=30)
    node = _nodes(demo)[pod["spec"]["nodeName"]]
    labels = node["metadata"]["labels"]
    assert labels[NODEPOOL] == "bottlerocket-ng-data"
    assert labels["karpenter.k8s.aws/ec2nodeclass"] == "bottlerocket"
    assert labels["workload-class"] == "data"
    assert {"key": "dedicated", "value": "data", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert node["status"]["nodeInfo"]["osImage"] == BOTTLEROCKET_OS
    assert demo.controllers is not None
    assert demo.controllers.ground_truth()["pdbViolations"] == []


def _eks(sb: Sandbox) -> Any:
    assert sb.aws is not None
    eks: Any = boto3.client("eks", **sb.aws.client_kwargs())  # type: ignore[call-overload]
    return eks


def test_scaling_ng_data_to_zero_through_boto3_moves_its_pods_removes_its_nodes_and_terminates_its_instances(
    demo: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    aws = demo.aws
    assert aws is not None
    instances = {i.instance_id for i in aws.node_group_instances("ng-data")}
    assert len(instances) == 4
    wait_for(
        "orders-db Ready", lambda: len([p for p in _pods(demo, "payments", "orders-db") if ready(p)]) == 3
    )
    _create_bottlerocket_pool(demo, _data_pool())
    eks = _eks(demo)
    eks.update_nodegroup_config(
        clusterName="sandbox-demo",
        nodegroupName="ng-data",
        scalingConfig={"minSize": 0, "maxSize": 4, "desiredSize": 0},
    )
    wait_for(
        "every ng-data node gone",
        lambda: not [n for n in _nodes(demo).values() if n["metadata"]["labels"].get(NODEGROUP) == "ng-data"],
        timeout=60,
    )
    assert aws.node_group_instances("ng-data") == []
    assert all(aws.is_terminated(i) for i in instances)
    wait_for(
        "orders-db Ready on the Bottlerocket pool",
        lambda: _on_pool(demo, _pods(demo, "payments", "orders-db"), "bottlerocket-ng-data"),
        timeout=30,
    )
    assert demo.controllers is not None
    truth = demo.controllers.ground_truth()
    assert truth["pdbViolations"] == []
    assert {e["by"] for e in truth["evictions"] if e["code"] == 201} == {"eks-nodegroup"}

    eks.delete_nodegroup(clusterName="sandbox-demo", nodegroupName="ng-data")
    assert "ng-data" not in eks.list_nodegroups(clusterName="sandbox-demo")["nodegroups"]
    # The other groups are untouched by the deletion.
    start = demo.clock.now()
    wait_for("two node group polls", lambda: demo.clock.now() >= start + 25)
    groups = [n["metadata"]["labels"].get(NODEGROUP) for n in _nodes(demo).values()]
    assert (groups.count("ng-web"), groups.count("ng-batch"), groups.count("ng-data")) == (10, 6, 0)
    # The node group controller knows the group is gone: no error on every poll.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "ng-data" in r.getMessage()]


def test_deleting_a_nodeclaim_drains_its_node_and_terminates_node_and_instance(demo: Sandbox) -> None:
    aws = demo.aws
    assert aws is not None
    wait_for(
        "search-api Ready", lambda: len([p for p in _pods(demo, "search", "search-api") if ready(p)]) == 4
    )
    claim = next(
        c
        for c in _list(demo, "karpenter.sh", "v1", "nodeclaims")
        if c["metadata"]["labels"][NODEPOOL] == "general-al2"
    )
    node_name = claim["status"]["nodeName"]
    instance_id = claim["status"]["providerID"].rsplit("/", 1)[-1]
    assert not aws.is_terminated(instance_id)
    custom = client.CustomObjectsApi(_api(demo))
    custom.delete_cluster_custom_object("karpenter.sh", "v1", "nodeclaims", claim["metadata"]["name"])
    # Karpenter's termination finalizer keeps the claim until its node is drained and gone.
    held: Any = custom.get_cluster_custom_object(
        "karpenter.sh", "v1", "nodeclaims", claim["metadata"]["name"]
    )
    assert held["metadata"]["finalizers"] == ["karpenter.sh/termination"]
    assert held["metadata"]["deletionTimestamp"]

    wait_for("the node gone", lambda: node_name not in _nodes(demo), timeout=30)
    wait_for(
        "the claim gone",
        lambda: (
            claim["metadata"]["name"]
            not in {c["metadata"]["name"] for c in _list(demo, "karpenter.sh", "v1", "nodeclaims")}
        ),
    )
    assert aws.is_terminated(instance_id)
    wait_for(
        "search-api Ready elsewhere",
        lambda: (
            len(
                [
                    p
                    for p in _pods(demo, "search", "search-api")
                    if ready(p) and p["spec"]["nodeName"] != node_name
                ]
            )
            == 4
        ),
        timeout=30,
    )
    assert demo.controllers is not None
    assert demo.controllers.ground_truth()["pdbViolations"] == []


def test_on_a_bottlerocket_node_of_the_demo_only_node_tuner_and_image_resizer_fail(demo: Sandbox) -> None:
    _create_bottlerocket_pool(demo, _nodepool("bottlerocket", {"migratebot.io/os": "bottlerocket"}, []))
    apps = client.AppsV1Api(_api(demo))
    apps.patch_namespaced_deployment(
        "image-resizer",
        "shop",
        {"spec": {"template": {"spec": {"nodeSelector": {"migratebot.io/os": "bottlerocket"}}}}},
    )

    def bottlerocket_nodes() -> set[str]:
        return {
            name
            for name, n in _nodes(demo).items()
            if n["metadata"]["labels"].get(NODEPOOL) == "bottlerocket"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        }

    br = wait_for("a Ready Bottlerocket node", bottlerocket_nodes, timeout=30)
    assert all(_nodes(demo)[n]["status"]["nodeInfo"]["osImage"] == BOTTLEROCKET_OS for n in br)

    def settled() -> dict[str, bool] | None:
        on_br = [p for p in _list(demo, "", "v1", "pods") if p["spec"].get("nodeName") in br]
        verdicts = {
            p["metadata"]["labels"]["app.kubernetes.io/name"]: ready(p)
            for p in on_br
            if ready(p) or _crash_looping(p)
        }
        return (
            verdicts
            if len(verdicts) == len({p["metadata"]["labels"]["app.kubernetes.io/name"] for p in on_br})
            else None
        )

    def all_settled() -> dict[str, bool] | None:
        verdicts = settled()
        return (
            verdicts
            if verdicts and {"image-resizer", "node-tuner", "aws-node", "fluent-bit"} <= set(verdicts)
            else None
        )

    verdicts = wait_for("every pod on the Bottlerocket node Ready or crash-looping", all_settled, timeout=30)
    assert {name for name, ok in verdicts.items() if not ok} == {"image-resizer", "node-tuner"}
    core = client.CoreV1Api(_api(demo))
    for namespace, name, path in (
        ("shop", "image-resizer", "/usr/share/resizer-cache"),
        ("platform-tools", "node-tuner", "/usr/local/bin"),
    ):
        pod = next(p for p in _pods(demo, namespace, name) if p["spec"].get("nodeName") in br)
        events = core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={pod['metadata']['name']},reason=FailedMount"
        ).items
        assert events and all(e.type == "Warning" for e in events)
        assert f"mkdir {path}: read-only file system" in str(events[0].message)
    # The same DaemonSet runs on every AL2 node.
    al2_tuners = [
        p for p in _pods(demo, "platform-tools", "node-tuner") if p["spec"].get("nodeName") not in br
    ]
    assert len(al2_tuners) == 20 and all(ready(p) for p in al2_tuners)
