"""KubeAdapter against the sandbox API over HTTPS: errors become migratebot's tree, lists are paginated
and complete, cordon is kubectl's patch, impersonation reaches the audit log, contexts are clusters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.adapters.errors import Conflict, EvictionBlocked, Forbidden, Invalid, NotFound
from bot.adapters.kube import Identity, KubeAdapter, parse_time
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import NODES, pod, tiny_cluster

N1 = NODES[0][0]


def test_a_missing_pod_is_not_found_naming_it(kube: KubeAdapter) -> None:
    with pytest.raises(NotFound, match='get pod shop/ghost: pods "ghost" not found') as info:
        kube.get_pod("shop", "ghost")
    assert info.value.status == 404
    assert info.value.__cause__ is not None  # raised from the client's exception


def test_creating_an_existing_nodepool_is_a_conflict(kube: KubeAdapter) -> None:
    existing = kube.get_nodepool("default")
    with pytest.raises(Conflict, match=r'nodepools\.karpenter\.sh "default" already exists'):
        kube.create_nodepool({"metadata": {"name": "default"}, "spec": existing["spec"]})


def test_an_invalid_nodepool_is_invalid_with_the_servers_field_error(kube: KubeAdapter) -> None:
    with pytest.raises(Invalid, match=r"spec.template: Required value") as info:
        kube.create_nodepool({"metadata": {"name": "broken"}, "spec": {}})
    assert info.value.status == 422


def test_forbidden_names_the_identity_the_verb_and_the_resource(
    cluster: SandboxServer, tmp_path: Path
) -> None:
    path = cluster.write_kubeconfig(tmp_path / "bob", cluster.token_for("bob", ("devs",)), user="bob")
    bob = KubeAdapter.from_kubeconfig(str(path), None)
    with pytest.raises(Forbidden) as info:
        bob.evict("shop", "web-7f9c6d8b5-x2k4p")
    assert str(info.value) == (
        'evict pod shop/web-7f9c6d8b5-x2k4p: pods "web-7f9c6d8b5-x2k4p" is forbidden: User "bob" cannot '
        'create resource "pods/eviction" in API group "" in the namespace "shop"'
    )


def test_an_eviction_a_pdb_forbids_is_blocked_with_the_budgets_message(kube: KubeAdapter) -> None:
    kube.evict("shop", "web-7f9c6d8b5-x2k4p")
    with pytest.raises(EvictionBlocked) as info:
        kube.evict("shop", "web-7f9c6d8b5-m8q7z")
    assert info.value.status == 429
    assert info.value.budget_message == "The disruption budget web needs 2 healthy pods and has 2 currently"
    with pytest.raises(NotFound):
        kube.get_pod("shop", "web-7f9c6d8b5-x2k4p")


def test_pagination_returns_every_pod_exactly_once(cluster: SandboxServer) -> None:
    rs = next(o for o in tiny_cluster() if o["kind"] == "ReplicaSet")
    cluster.api.load(
        [pod(f"web-7f9c6d8b5-p{i:03d}", "shop", N1, f"10.0.9.{i}", rs, {"app": "web"}) for i in range(40)]
    )
    kube = KubeAdapter.from_kubeconfig(str(cluster.kubeconfig), None, page_size=7)
    before, _ = cluster.api.log.since(0)
    pods = kube.list_pods()
    after, _ = cluster.api.log.since(len(before))
    keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods]
    assert len(keys) == len(set(keys)) == 46
    lists = [e for e in after if e["verb"] == "list" and e["resource"] == "pods"]
    assert len(lists) == 7  # ceil(46 / 7)
    assert sum(len(page) for page in kube.pod_pages(page_size=7)) == 46


def test_cordon_and_uncordon_patch_spec_unschedulable_as_kubectl(kube: KubeAdapter) -> None:
    assert kube.cordon(N1)["spec"]["unschedulable"] is True
    assert "unschedulable" not in kube.uncordon(N1)["spec"]


def test_mutating_calls_carry_the_impersonated_identity_and_reads_do_not(
    cluster: SandboxServer, kube: KubeAdapter
) -> None:
    cluster.api.load([{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "sre-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sre"}],
    }])  # fmt: skip
    alice = kube.acting_as(Identity("alice", ("sre", "oncall")))
    start = len(cluster.api.log.since(0)[0])
    alice.cordon(N1)
    alice.get_node(N1)
    patch, get = cluster.api.log.since(start)[0]
    assert (patch["verb"], patch["user"], patch["impersonatedBy"]) == ("patch", "alice", "kubernetes-admin")
    assert {"sre", "oncall"} <= set(patch["groups"])
    assert (get["verb"], get["user"]) == ("get", "kubernetes-admin")


def test_each_context_is_its_own_cluster(tmp_path: Path) -> None:
    with SandboxServer(objects=tiny_cluster()) as a, SandboxServer(objects=tiny_cluster()[:2]) as b:
        merged = yaml.safe_load(a.kubeconfig.read_text())
        other = yaml.safe_load(b.kubeconfig.read_text())
        merged["clusters"] = [dict(merged["clusters"][0], name="a"), dict(other["clusters"][0], name="b")]
        merged["users"] = [dict(merged["users"][0], name="a"), dict(other["users"][0], name="b")]
        merged["contexts"] = [
            {"name": "prod", "context": {"cluster": "a", "user": "a"}},
            {"name": "staging", "context": {"cluster": "b", "user": "b"}},
        ]
        merged["current-context"] = "prod"
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(merged))
        assert KubeAdapter.contexts(str(path)) == ["prod", "staging"]
        prod = KubeAdapter.from_kubeconfig(str(path), "prod")
        staging = KubeAdapter.from_kubeconfig(str(path), "staging")
        assert (len(prod.list_nodes()), len(staging.list_nodes())) == (3, 1)


def test_timestamps_parse_without_dateutil() -> None:
    assert parse_time("2026-11-25T03:04:05Z").isoformat() == "2026-11-25T03:04:05+00:00"  # type: ignore[union-attr]
    assert parse_time("2026-11-25T03:04:05.123456Z").microsecond == 123456  # type: ignore[union-attr]
    assert parse_time("2026-11-25T05:04:05+02:00").utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    assert parse_time(None) is None
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
        parse_time("yesterday")


def test_karpenter_objects_are_created_and_merge_patched(kube: KubeAdapter) -> None:
    created = kube.create_ec2nodeclass(
        {
            "metadata": {"name": "bottlerocket"},
            "spec": {
                "role": "KarpenterNodeRole-sandbox",
                "amiSelectorTerms": [{"alias": "bottlerocket@v1.26.2"}],
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
                "metadataOptions": {"httpTokens": "required"},
            },
        }
    )
    assert created["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.26.2"}]
    patched = kube.patch_ec2nodeclass(
        "bottlerocket", {"spec": {"amiSelectorTerms": [{"alias": "bottlerocket@v1.26.1"}]}}
    )
    assert patched["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.26.1"}]
    assert kube.get_ec2nodeclass("bottlerocket")["spec"]["metadataOptions"]["httpTokens"] == "required"
    pool = kube.patch_nodepool(
        "default",
        {"spec": {"disruption": {"budgets": [{"nodes": "2", "reasons": ["Drifted"]}]}}},
    )
    assert pool["spec"]["disruption"]["budgets"] == [{"nodes": "2", "reasons": ["Drifted"]}]
    assert pool["spec"]["disruption"]["consolidateAfter"] == "1m"  # merge patch kept the rest
    assert [c["metadata"]["name"] for c in kube.list_nodeclaims()] == ["default-8xk2q"]
    assert [p["metadata"]["name"] for p in kube.list_nodepools()] == ["default"]
    kube.delete_nodeclaim("default-8xk2q")
    with pytest.raises(NotFound):
        kube.delete_nodeclaim("default-8xk2q")
