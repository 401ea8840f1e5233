"""The official Python client works against the sandbox as against EKS.

Lists, watches, patches, evictions and the errors the bot must handle.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from kube_support import client_for
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from sandbox.kube import SandboxServer

POD = "web-7f9c6d8b5-x2k4p"


def status_of(e: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(e.body)
    return body


def new_pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def test_paginated_list_returns_every_object_once(
    cluster: SandboxServer, api_client: client.ApiClient
) -> None:
    cluster.api.load(
        [
            new_pod(f"p-{i:03d}") | {"metadata": {"name": f"p-{i:03d}", "namespace": "default"}}
            for i in range(57)
        ]
    )
    core = client.CoreV1Api(api_client)
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=10, _continue=token)
        names += [f"{p.metadata.namespace}/{p.metadata.name}" for p in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert pages == 7
    assert len(names) == len(set(names)) == 57 + 6
    assert names == sorted(names)


def test_a_paginated_list_continues_from_the_first_page_s_snapshot(
    cluster: SandboxServer, api_client: client.ApiClient
) -> None:
    cluster.api.load(
        [new_pod(f"p-{i}") | {"metadata": {"name": f"p-{i}", "namespace": "default"}} for i in range(6)]
    )
    core = client.CoreV1Api(api_client)
    first = core.list_namespaced_pod("default", limit=2)
    assert [p.metadata.name for p in first.items] == ["p-0", "p-1"]
    # Between pages: one pod deleted, one relabelled, one created.
    core.delete_namespaced_pod("p-3", "default", grace_period_seconds=0)
    core.patch_namespaced_pod("p-4", "default", {"metadata": {"labels": {"moved": "yes"}}})
    core.create_namespaced_pod("default", new_pod("p-5a"))
    rest = []
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_pod("default", limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        rest += page.items
        token = page.metadata._continue
    assert [p.metadata.name for p in rest] == ["p-2", "p-3", "p-4", "p-5"]
    assert "moved" not in (rest[2].metadata.labels or {})
    # A new list sees the present.
    now = [p.metadata.name for p in core.list_namespaced_pod("default").items]
    assert now == ["p-0", "p-1", "p-2", "p-4", "p-5", "p-5a"]


def test_list_with_set_based_label_and_field_selectors(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    web = core.list_pod_for_all_namespaces(label_selector="app in (web,api),!missing")
    assert len(web.items) == 3
    on_node = core.list_pod_for_all_namespaces(
        field_selector="spec.nodeName=ip-10-0-1-23.us-west-2.compute.internal,status.phase!=Failed"
    )
    assert sorted(p.metadata.name for p in on_node.items) == ["aws-node-x2k4p", POD]
    schedulable = core.list_node(field_selector="spec.unschedulable=false")
    assert len(schedulable.items) == 3


def test_watch_sees_added_modified_deleted(api_client: client.ApiClient, cluster: SandboxServer) -> None:
    core = client.CoreV1Api(api_client)
    writer = client.CoreV1Api(client_for(cluster, cluster.admin_token))
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    # Each write happens only after the stream has shown the previous step: no sleeps.
    for event in w.stream(core.list_namespaced_pod, "shop", timeout_seconds=10):
        kind, name = event["type"], event["object"].metadata.name
        seen.append((kind, name))
        if name != "watched" and len(seen) == 1:
            writer.create_namespaced_pod("shop", new_pod("watched"))
        elif (kind, name) == ("ADDED", "watched"):
            writer.patch_namespaced_pod("watched", "shop", {"metadata": {"labels": {"seen": "yes"}}})
        elif (kind, name) == ("MODIFIED", "watched"):
            writer.delete_namespaced_pod("watched", "shop")
        elif kind == "DELETED":
            w.stop()
    assert [e for e in seen if e[1] == "watched"] == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ]
    assert [e[0] for e in seen[:3]] == ["ADDED"] * 3  # the current pods first


def test_watch_resumes_from_a_resource_version(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", new_pod("later"))
    core.delete_namespaced_pod("later", "default")
    w = watch.Watch()
    events = []
    for event in w.stream(core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=5):
        events.append(event["type"])
        if len(events) == 2:
            w.stop()
    assert events == ["ADDED", "DELETED"]


def test_watch_bookmarks_carry_the_resource_version(cluster: SandboxServer) -> None:
    cluster.api.watches.bookmark_interval = 0.2
    url = f"{cluster.url}/api/v1/namespaces/shop/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1"
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    with requests.get(url, headers=headers, stream=True, verify=str(cluster.ca_file), timeout=10) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    types = [e["type"] for e in lines]
    assert types[:3] == ["ADDED", "ADDED", "ADDED"]
    assert "BOOKMARK" in types
    bookmark = next(e for e in lines if e["type"] == "BOOKMARK")
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) > 0


def test_patch_flavours(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    node = "ip-10-0-1-23.us-west-2.compute.internal"
    core.patch_node(node, {"spec": {"unschedulable": True}})  # strategic merge, as kubectl cordon
    assert core.read_node(node).spec.unschedulable is True
    core.patch_node(node, [{"op": "add", "path": "/metadata/labels/wave", "value": "1"}])  # JSON patch
    assert core.read_node(node).metadata.labels["wave"] == "1"
    custom = client.CustomObjectsApi(api_client)
    custom.patch_cluster_custom_object(
        "karpenter.sh", "v1", "nodepools", "default", {"metadata": {"annotations": {"migratebot/wave": "1"}}}
    )  # merge patch, the client's choice for custom objects
    pool = custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", "default")
    assert pool["metadata"]["annotations"] == {"migratebot/wave": "1"}


def test_status_subresource_only_touches_status(api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    custom.patch_cluster_custom_object_status(
        "karpenter.sh", "v1", "nodepools", "default", {"status": {"nodes": 7}, "spec": {"weight": 5}}
    )
    pool = custom.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", "default")
    assert pool["status"]["nodes"] == 7
    assert "weight" not in pool["spec"]


def test_stale_update_is_409_conflict(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    stale = core.read_namespaced_pod(POD, "shop")
    fresh = core.read_namespaced_pod(POD, "shop")
    fresh.metadata.labels["touched"] = "yes"
    core.replace_namespaced_pod(POD, "shop", fresh)
    stale.metadata.labels["touched"] = "no"
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_pod(POD, "shop", stale)
    assert e.value.status == 409
    body = status_of(e.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        f'Operation cannot be fulfilled on pods "{POD}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_create_existing_is_409_and_missing_is_404(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod("shop", new_pod(POD))
    assert (e.value.status, status_of(e.value)["reason"]) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("nope", "shop")
    assert status_of(e.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "nope" not found', "reason": "NotFound", "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }  # fmt: skip


def test_a_new_pod_gets_the_default_not_ready_and_unreachable_tolerations(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod("shop", new_pod("plain"))
    tolerations = core.read_namespaced_pod("plain", "shop").spec.tolerations
    assert sorted((t.key, t.operator, t.effect, t.toleration_seconds) for t in tolerations) == [
        ("node.kubernetes.io/not-ready", "Exists", "NoExecute", 300),
        ("node.kubernetes.io/unreachable", "Exists", "NoExecute", 300),
    ]


def test_a_pod_that_already_tolerates_the_default_taints_is_left_as_it_is(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    everything = new_pod("tolerates-everything")
    everything["spec"]["tolerations"] = [{"operator": "Exists"}]
    own = new_pod("own-seconds")
    own["spec"]["tolerations"] = [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 30,
        }
    ]
    core.create_namespaced_pod("shop", everything)
    core.create_namespaced_pod("shop", own)
    assert [
        t.operator for t in core.read_namespaced_pod("tolerates-everything", "shop").spec.tolerations
    ] == ["Exists"]
    kept = core.read_namespaced_pod("own-seconds", "shop").spec.tolerations
    assert [(t.key, t.toleration_seconds) for t in kept] == [
        ("node.kubernetes.io/not-ready", 30),
        ("node.kubernetes.io/unreachable", 300),
    ]


def eviction(name: str, namespace: str) -> client.V1Eviction:
    return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))


def test_eviction_honours_the_pdb(api_client: client.ApiClient, cluster: SandboxServer) -> None:
    core = client.CoreV1Api(api_client)
    policy = client.PolicyV1Api(api_client)
    pdb = policy.read_namespaced_pod_disruption_budget("web", "shop")
    assert (pdb.status.current_healthy, pdb.status.desired_healthy, pdb.status.disruptions_allowed) == (
        3,
        2,
        1,
    )
    assert pdb.status.expected_pods == 3
    core.create_namespaced_pod_eviction(POD, "shop", eviction(POD, "shop"))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod_eviction(
            "web-7f9c6d8b5-m8q7z", "shop", eviction("web-7f9c6d8b5-m8q7z", "shop")
        )
    assert e.value.status == 429
    body = status_of(e.value)
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
        }
    ]
    with pytest.raises(ApiException):
        core.read_namespaced_pod(POD, "shop")


def test_eviction_without_rbac_is_403_with_the_real_message(cluster: SandboxServer) -> None:
    token = cluster.token_for_service_account("shop", "reader")
    cluster.api.load(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "pod-reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "pod-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "shop"}],
            },
        ]
    )
    core = client.CoreV1Api(client_for(cluster, token))
    assert len(core.list_namespaced_pod("shop").items) == 3
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod_eviction(POD, "shop", eviction(POD, "shop"))
    assert e.value.status == 403
    body = status_of(e.value)
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        f'pods "{POD}" is forbidden: User "system:serviceaccount:shop:reader" cannot create resource '
        '"pods/eviction" in API group "" in the namespace "shop"'
    )
    log = cluster.api.log.since(0)[0]
    assert any(
        e["user"] == "system:serviceaccount:shop:reader"
        and e["subresource"] == "eviction"
        and e["code"] == 403
        for e in log
    )


def test_impersonation_needs_the_impersonate_verb(cluster: SandboxServer) -> None:
    token = cluster.token_for("alice")
    api = client_for(cluster, token)
    api.default_headers["Impersonate-User"] = "bob"
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(api).list_namespaced_pod("shop")
    assert e.value.status == 403
    assert status_of(e.value)["message"] == (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" '
        "at the cluster scope"
    )


def test_nodepool_with_a_malformed_node_class_ref_is_invalid(api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    pool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "broken"},
        "spec": {
            "template": {
                "spec": {"nodeClassRef": {"kind": "EC2NodeClass", "name": "al2"}, "requirements": []}
            }
        },
    }
    with pytest.raises(ApiException) as e:
        custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
    assert e.value.status == 422
    body = status_of(e.value)
    assert body["reason"] == "Invalid"
    assert (
        body["message"]
        == 'NodePool.karpenter.sh "broken" is invalid: spec.template.spec.nodeClassRef.group: Required value'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.template.spec.nodeClassRef.group",
        }
    ]
    pool["spec"]["template"]["spec"]["nodeClassRef"]["group"] = ""
    with pytest.raises(ApiException) as e:
        custom.create_cluster_custom_object("karpenter.sh", "v1", "nodepools", pool)
    assert status_of(e.value)["message"] == (
        'NodePool.karpenter.sh "broken" is invalid: spec.template.spec.nodeClassRef.group: '
        'Invalid value: "string": group may not be empty'
    )


def test_nodepool_node_class_group_is_immutable(api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as e:
        custom.patch_cluster_custom_object(
            "karpenter.sh", "v1", "nodepools", "default",
            {"spec": {"template": {"spec": {"nodeClassRef": {"group": "example.com"}}}}},
        )  # fmt: skip
    assert "nodeClassRef.group is immutable" in status_of(e.value)["message"]


def test_ec2nodeclass_with_a_malformed_alias_is_invalid(api_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    nodeclass = {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "bottlerocket"},
        "spec": {
            "role": "KarpenterNodeRole-sandbox",
            "amiSelectorTerms": [{"alias": "bottlerocket"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
        },
    }
    with pytest.raises(ApiException) as e:
        custom.create_cluster_custom_object("karpenter.k8s.aws", "v1", "ec2nodeclasses", nodeclass)
    assert e.value.status == 422
    assert status_of(e.value)["message"] == (
        'EC2NodeClass.karpenter.k8s.aws "bottlerocket" is invalid: spec.amiSelectorTerms[0].alias: '
        "Invalid value: \"string\": 'alias' is improperly formatted, must match the format 'family@version'"
    )
    nodeclass["spec"]["amiSelectorTerms"] = [{"alias": "bottlerocket@latest"}]
    created = custom.create_cluster_custom_object("karpenter.k8s.aws", "v1", "ec2nodeclasses", nodeclass)
    # Schema defaults are applied as the apiserver does (IMDSv2 required by default).
    assert created["spec"]["metadataOptions"]["httpTokens"] == "required"
    assert "status" not in created


def test_request_log_on_the_admin_endpoint(cluster: SandboxServer, api_client: client.ApiClient) -> None:
    client.CoreV1Api(api_client).read_namespace("shop")
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    r = requests.get(
        f"{cluster.url}/admin/requests", headers=headers, verify=str(cluster.ca_file), timeout=10
    )
    entries = r.json()["items"]
    assert any(
        e["verb"] == "get" and e["resource"] == "namespaces" and e["name"] == "shop" and e["code"] == 200
        and e["user"] == "kubernetes-admin"
        for e in entries
    )  # fmt: skip
    refused = requests.get(f"{cluster.url}/admin/requests", verify=str(cluster.ca_file), timeout=10)
    assert refused.status_code == 401
