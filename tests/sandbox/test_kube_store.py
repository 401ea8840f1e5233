"""The store keeps etcd's promises: one resourceVersion, generations, finalizers, GC and watch history."""

from __future__ import annotations

import pytest

from sandbox.kube import errors
from sandbox.kube.app import KubeApi
from sandbox.kube.store import Event, Store


@pytest.fixture
def api() -> KubeApi:
    return KubeApi(admin_token="t")


def cm(name: str, **meta: object) -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {"containers": [{"name": "c"}]},
    }


def test_resource_versions_come_from_one_global_counter(api: KubeApi) -> None:
    pods = api.rt("", "v1", "pods")
    nodes = api.rt("", "v1", "nodes")
    a = api.store.create(pods, cm("a"))
    n = api.store.create(nodes, {"metadata": {"name": "n"}})
    b = api.store.create(pods, cm("b"))
    rvs = [int(o["metadata"]["resourceVersion"]) for o in (a, n, b)]
    assert rvs == sorted(rvs)
    assert len(set(rvs)) == 3


def test_generation_moves_with_spec_not_with_metadata_or_status(api: KubeApi) -> None:
    deployments = api.rt("apps", "v1", "deployments")
    d = api.store.create(
        deployments, {"metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": 1}}
    )
    assert d["metadata"]["generation"] == 1
    labelled = api.store.update(deployments, {**d, "metadata": {**d["metadata"], "labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    status = api.store.update(deployments, {**labelled, "status": {"replicas": 1}}, subresource="status")
    assert status["metadata"]["generation"] == 1
    scaled = api.store.update(deployments, {**status, "spec": {"replicas": 3}})
    assert scaled["metadata"]["generation"] == 2
    assert scaled["status"] == {"replicas": 1}  # the main resource ignores status


def test_stale_update_is_a_conflict(api: KubeApi) -> None:
    pods = api.rt("", "v1", "pods")
    old = api.store.create(pods, cm("a"))
    api.store.update(pods, {**old, "metadata": {**old["metadata"], "labels": {"x": "1"}}})
    with pytest.raises(errors.ApiError) as e:
        api.store.update(pods, {**old, "metadata": {**old["metadata"], "labels": {"x": "2"}}})
    assert e.value.code == 409
    assert "the object has been modified; please apply your changes" in e.value.message


def test_finalizers_hold_a_deleted_object_until_they_are_removed(api: KubeApi) -> None:
    pods = api.rt("", "v1", "pods")
    api.store.create(pods, cm("a", finalizers=["example.com/hold"]))
    obj, gone = api.store.delete(pods, "default", "a")
    assert not gone
    assert obj["metadata"]["deletionTimestamp"]
    released = {**obj, "metadata": {**obj["metadata"], "finalizers": []}}
    api.store.update(pods, released)
    assert api.store.get(pods, "default", "a") is None


def test_background_deletion_collects_dependents_and_orphan_keeps_them(api: KubeApi) -> None:
    rs = api.rt("apps", "v1", "replicasets")
    pods = api.rt("", "v1", "pods")
    owner = api.store.create(rs, {"metadata": {"name": "rs", "namespace": "default"}, "spec": {}})
    ref = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "rs",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    api.store.create(pods, cm("p1", ownerReferences=[ref]))
    api.store.delete(rs, "default", "rs")
    assert api.store.get(pods, "default", "p1") is None

    owner = api.store.create(rs, {"metadata": {"name": "rs", "namespace": "default"}, "spec": {}})
    ref = dict(ref, uid=owner["metadata"]["uid"])
    api.store.create(pods, cm("p2", ownerReferences=[ref]))
    api.store.delete(rs, "default", "rs", propagation="Orphan")
    orphan = api.store.get(pods, "default", "p2")
    assert orphan is not None
    assert "ownerReferences" not in orphan["metadata"]


def test_watch_replays_history_after_a_resource_version() -> None:
    api = KubeApi(admin_token="t")
    pods = api.rt("", "v1", "pods")
    since = api.store.resource_version
    a = api.store.create(pods, cm("a"))
    api.store.update(pods, {**a, "metadata": {**a["metadata"], "labels": {"x": "1"}}})
    api.store.delete(pods, "default", "a")
    live: list[Event] = []
    watcher, replay = api.store.watch(pods, None, since, live.append)
    assert [e.type for e in replay] == ["ADDED", "MODIFIED", "DELETED"]
    api.store.create(pods, cm("b"))
    assert [e.type for e in live] == ["ADDED"]
    watcher.stop()


def test_watch_from_a_compacted_resource_version_is_gone() -> None:
    api = KubeApi(admin_token="t")
    api.store = Store(api.registry, history=5)
    ns = api.rt("", "v1", "namespaces")
    for i in range(10):
        api.store.create(ns, {"metadata": {"name": f"n{i}"}})
    with pytest.raises(errors.ApiError) as e:
        api.store.watch(ns, None, 2, lambda _: None)
    assert e.value.code == 410
    assert e.value.message.startswith("too old resource version: 2 (")


def test_creating_in_a_missing_namespace_is_not_found(api: KubeApi) -> None:
    with pytest.raises(errors.ApiError) as e:
        api.store.create(api.rt("", "v1", "pods"), {"metadata": {"name": "p", "namespace": "nope"}})
    assert (e.value.code, e.value.message) == (404, 'namespaces "nope" not found')


def test_generate_name_gets_a_random_suffix(api: KubeApi) -> None:
    obj = api.store.create(
        api.rt("", "v1", "pods"), {"metadata": {"generateName": "web-", "namespace": "default"}}
    )
    assert obj["metadata"]["name"].startswith("web-")
    assert len(obj["metadata"]["name"]) == len("web-") + 5


def test_the_node_name_index_follows_binds_moves_and_deletes(api: KubeApi) -> None:
    pods = api.rt("", "v1", "pods")

    def on(node: str) -> list[str]:
        items, _, _ = api.store.list_objects(
            pods, None, predicate=lambda p: p["spec"].get("nodeName") == node, indexed=("spec.nodeName", node)
        )
        return [p["metadata"]["name"] for p in items]

    a = api.store.create(
        pods, {"metadata": {"name": "a", "namespace": "default"}, "spec": {"nodeName": "n1"}}
    )
    api.store.create(pods, {"metadata": {"name": "b", "namespace": "default"}, "spec": {"nodeName": "n1"}})
    assert on("n1") == ["a", "b"]
    api.store.update(pods, {**a, "spec": {**a["spec"], "nodeName": "n2"}})
    assert (on("n1"), on("n2")) == (["b"], ["a"])
    api.store.delete(pods, "default", "b")
    assert on("n1") == []


def test_create_drops_a_clients_status_except_for_nodes(api: KubeApi) -> None:
    pod = api.store.create(
        api.rt("", "v1", "pods"),
        {"metadata": {"name": "p", "namespace": "default"}, "spec": {}, "status": {"phase": "Running"}},
    )
    assert pod["status"]["phase"] == "Pending"
    node = api.store.create(api.rt("", "v1", "nodes"), {"metadata": {"name": "n"}, "status": {"phase": "x"}})
    assert node["status"] == {"phase": "x"}


def test_bulk_loaded_pods_share_equal_parts_yet_change_independently(api: KubeApi) -> None:
    pods = api.rt("", "v1", "pods")
    bulk = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"web-{i}", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], "nodeName": f"n{i % 7}"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
        for i in range(10_000)
    ]
    assert api.load(bulk) == 10_000
    first, second = api.store.get(pods, "default", "web-0"), api.store.get(pods, "default", "web-1")
    assert first is not None and second is not None
    # One dict for what is equal; a big scenario's memory depends on it.
    assert first["spec"]["containers"] is second["spec"]["containers"]
    assert first["metadata"]["labels"] is second["metadata"]["labels"]

    # A write through the store's own paths changes one pod only.
    changed = dict(first, metadata={**first["metadata"], "labels": {"app": "web", "canary": "yes"}})
    relabelled = api.store.update(pods, changed)
    status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}
    api.store.update(pods, dict(relabelled, status=status), subresource="status")
    after = api.store.get(pods, "default", "web-0")
    untouched = api.store.get(pods, "default", "web-1")
    assert after is not None and untouched is not None
    assert after["metadata"]["labels"] == {"app": "web", "canary": "yes"}
    assert after["status"]["conditions"] == [{"type": "Ready", "status": "False"}]
    assert untouched["metadata"]["labels"] == {"app": "web"}
    assert untouched["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    assert untouched["spec"]["nodeName"] == "n1"
