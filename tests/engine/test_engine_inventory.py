"""Inventory over the wire: OS family, owner, zone and instance id per node; pods per node with their
workloads and PDBs — from one paginated list of nodes and one of pods, never a call per node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_cluster import AL2023_NODE, BR_NODE, KARPENTER_AL2_NODE, N1, N2, drain_cluster

from bot.adapters.kube import KubeAdapter
from bot.engine.inventory import Inventory
from bot.engine.pods import NodeOwnerKind, OsFamily, os_family
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import tiny_cluster


@pytest.fixture
def tiny() -> Iterator[SandboxServer]:
    with SandboxServer(objects=tiny_cluster()) as sb:
        yield sb


@pytest.fixture
def mixed() -> Iterator[SandboxServer]:
    with SandboxServer(objects=drain_cluster(permissive_pdb=False)) as sb:
        yield sb


def test_the_tiny_cluster_is_three_al2_node_group_nodes_with_their_pods(tiny: SandboxServer) -> None:
    inv = Inventory.build(KubeAdapter.from_kubeconfig(str(tiny.kubeconfig), None))
    assert sorted((n.os_family, n.owner_kind, n.owner_name, n.zone) for n in inv.nodes.values()) == [
        (OsFamily.AL2, NodeOwnerKind.NODE_GROUP, "general", "us-west-2a"),
        (OsFamily.AL2, NodeOwnerKind.NODE_GROUP, "general", "us-west-2b"),
        (OsFamily.AL2, NodeOwnerKind.NODE_GROUP, "general", "us-west-2c"),
    ]
    assert inv.nodes[N1].instance_id == "i-0a1b2c3d4e5f60001"
    assert inv.nodes[N1].ready and not inv.nodes[N1].unschedulable
    web, node_agent = sorted(inv.pods_on(N1), key=lambda p: p.name, reverse=True)
    assert (web.workload_kind, web.workload_name, web.pdbs, web.has_local_storage) == (
        "Deployment",
        "web",
        ("shop/web",),
        True,
    )
    assert (node_agent.is_daemonset, node_agent.workload_name, node_agent.pdbs) == (True, "aws-node", ())
    assert inv.pod_count == 6


def test_os_family_owner_zone_and_instance_id_of_every_kind_of_node(mixed: SandboxServer) -> None:
    inv = Inventory.build(KubeAdapter.from_kubeconfig(str(mixed.kubeconfig), None))
    br, al2023, kal2 = inv.nodes[BR_NODE], inv.nodes[AL2023_NODE], inv.nodes[KARPENTER_AL2_NODE]
    assert (br.os_family, br.owner_kind, br.owner_name, br.instance_id) == (
        OsFamily.BOTTLEROCKET,
        NodeOwnerKind.KARPENTER,
        "bottlerocket",
        "i-0b00000000000000a",
    )
    assert (al2023.os_family, al2023.owner_kind, al2023.instance_id) == (
        OsFamily.OTHER,
        NodeOwnerKind.SELF_MANAGED,
        "",
    )
    assert (kal2.os_family, kal2.owner_kind, kal2.owner_name) == (
        OsFamily.AL2,
        NodeOwnerKind.KARPENTER,
        "default",
    )
    assert (kal2.unschedulable, kal2.ready, kal2.zone) == (True, False, "us-west-2c")
    assert [n.name for n in inv.nodes_of(OsFamily.BOTTLEROCKET)] == [BR_NODE]


def test_pods_carry_owners_mirror_critical_and_pdb_membership(mixed: SandboxServer) -> None:
    inv = Inventory.build(KubeAdapter.from_kubeconfig(str(mixed.kubeconfig), None))
    pods = {p.name: p for p in inv.pods_on(N2)}
    assert (pods["db-1"].workload_kind, pods["db-1"].workload_name) == ("StatefulSet", "db")
    assert (pods["coredns-5d78c9869d-2abc"].workload_kind, pods["coredns-5d78c9869d-2abc"].critical) == (
        "Deployment",
        True,
    )
    assert pods["kube-proxy-ip-10-0-2-45"].is_mirror
    assert pods["debug-shell"].controller_kind == ""
    assert pods["web-7f9c6d8b5-m8q7z"].pdbs == ("shop/web",)
    assert inv.budget_allowances() == {"shop/web": 1}


def test_one_list_of_nodes_and_one_list_of_pods_never_a_call_per_node(mixed: SandboxServer) -> None:
    kube = KubeAdapter.from_kubeconfig(str(mixed.kubeconfig), None, page_size=10)
    start = len(mixed.api.log.since(0)[0])
    inv = Inventory.build(kube)
    requests = mixed.api.log.since(start)[0]
    pod_lists = [r for r in requests if r["resource"] == "pods"]
    assert all(r["verb"] == "list" and "fieldSelector" not in r["path"] for r in pod_lists)
    assert len(pod_lists) == -(-inv.pod_count // 10)  # one paginated list: ceil(pods / page)
    assert {r["resource"] for r in requests} == {
        "nodes",
        "pods",
        "replicasets",
        "daemonsets",
        "poddisruptionbudgets",
    }
    assert sum(1 for r in requests if r["resource"] == "nodes") == 1


def test_without_listing_replicasets_the_deployment_comes_from_the_pod_template_hash(
    tiny: SandboxServer,
) -> None:
    inv = Inventory.build(KubeAdapter.from_kubeconfig(str(tiny.kubeconfig), None), resolve_replicasets=False)
    web = next(p for p in inv.pods_on(N1) if p.name.startswith("web-"))
    assert (web.controller_kind, web.workload_kind, web.workload_name) == ("ReplicaSet", "Deployment", "web")


@pytest.mark.parametrize(
    ("image", "family"),
    [
        ("Amazon Linux 2", OsFamily.AL2),
        ("Amazon Linux 2023.6.20241111", OsFamily.OTHER),
        ("Bottlerocket OS 1.26.2 (aws-k8s-1.31)", OsFamily.BOTTLEROCKET),
        ("Ubuntu 22.04.4 LTS", OsFamily.OTHER),
        ("", OsFamily.OTHER),
    ],
)
def test_os_family_from_os_image(image: str, family: OsFamily) -> None:
    assert os_family(image) is family
