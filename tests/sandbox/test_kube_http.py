"""The API's HTTP surface: status codes and bodies as a real apiserver sends them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from sandbox.kube import SandboxServer


class Http:
    def __init__(self, cluster: SandboxServer, token: str | None = None) -> None:
        self.cluster = cluster
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> requests.Response:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        return self.session.request(
            method,
            self.cluster.url + path,
            data=data,
            headers=headers,
            timeout=10,
            verify=str(self.cluster.ca_file),
        )


@pytest.fixture
def http(cluster: SandboxServer) -> Http:
    return Http(cluster, cluster.admin_token)


def test_unauthenticated_requests_are_401(cluster: SandboxServer) -> None:
    r = Http(cluster)("GET", "/api/v1/pods")
    assert r.status_code == 401
    assert r.json()["reason"] == "Unauthorized"


def test_discovery_lists_subresources_and_karpenter_groups(http: Http) -> None:
    core = http("GET", "/api/v1").json()
    eviction = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"], eviction["kind"], eviction["verbs"]) == (
        "policy", "v1", "Eviction", ["create"],
    )  # fmt: skip
    nodes = next(r for r in core["resources"] if r["name"] == "nodes")
    assert (nodes["namespaced"], nodes["shortNames"]) == (False, ["no"])
    groups = {g["name"] for g in http("GET", "/apis").json()["groups"]}
    assert {"apps", "policy", "karpenter.sh", "karpenter.k8s.aws", "events.k8s.io"} <= groups
    assert http("GET", "/version").json()["gitVersion"].startswith("v1.32")
    assert http("GET", "/openapi/v2").status_code == 404


def test_strategic_merge_on_a_custom_resource_is_415(http: Http) -> None:
    r = http(
        "PATCH",
        "/apis/karpenter.sh/v1/nodepools/default",
        {"spec": {}},
        "application/strategic-merge-patch+json",
    )
    assert r.status_code == 415
    assert r.json()["reason"] == "UnsupportedMediaType"


def test_unsupported_field_selector_is_400(http: Http) -> None:
    r = http("GET", "/api/v1/nodes?fieldSelector=spec.providerID%3Dx")
    assert r.status_code == 400
    assert r.json()["message"] == "field label not supported: spec.providerID"


def test_update_on_a_create_only_resource_is_405(http: Http) -> None:
    r = http("PUT", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/x", {"spec": {}})
    assert r.status_code == 405
    assert r.json()["reason"] == "MethodNotAllowed"


def test_watch_from_a_compacted_resource_version_is_410(cluster: SandboxServer, http: Http) -> None:
    cluster.api.store._compacted_rv = cluster.api.store.resource_version  # as if etcd had compacted
    r = http("GET", "/api/v1/pods?watch=1&resourceVersion=2")
    assert r.status_code == 410
    assert r.json()["reason"] == "Expired"
    assert r.json()["message"].startswith("too old resource version: 2")


def test_watch_with_a_selector_reports_objects_leaving_it(cluster: SandboxServer, http: Http) -> None:
    rv = http("GET", "/api/v1/namespaces/shop/pods").json()["metadata"]["resourceVersion"]
    name = "web-7f9c6d8b5-x2k4p"
    http(
        "PATCH",
        f"/api/v1/namespaces/shop/pods/{name}",
        {"metadata": {"labels": {"app": "moved"}}},
        "application/merge-patch+json",
    )
    url = (
        f"/api/v1/namespaces/shop/pods?watch=1&labelSelector=app%3Dweb&resourceVersion={rv}&timeoutSeconds=1"
    )
    lines = [json.loads(line) for line in http("GET", url).text.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("DELETED", name)]


def test_deletecollection_and_foreground_deletion(cluster: SandboxServer, http: Http) -> None:
    r = http("DELETE", "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Daws-node")
    assert len(r.json()["items"]) == 3
    assert http("GET", "/api/v1/namespaces/kube-system/pods").json()["items"] == []
    r = http("DELETE", "/apis/apps/v1/namespaces/shop/deployments/web", {"propagationPolicy": "Foreground"})
    assert r.status_code == 200
    assert http("GET", "/apis/apps/v1/namespaces/shop/replicasets").json()["items"] == []
    assert http("GET", "/api/v1/namespaces/shop/pods").json()["items"] == []


def test_deleting_a_namespace_deletes_its_contents(http: Http) -> None:
    assert http("DELETE", "/api/v1/namespaces/shop").status_code == 200
    assert http("GET", "/api/v1/pods?fieldSelector=metadata.namespace%3Dshop").json()["items"] == []
    assert http("GET", "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/web").status_code == 404


def test_events_are_one_storage_under_two_apis(http: Http) -> None:
    v1 = http("GET", "/apis/events.k8s.io/v1/events?fieldSelector=regarding.kind%3DNode").json()
    assert len(v1["items"]) == 1
    event = v1["items"][0]
    assert (event["apiVersion"], event["reason"], event["regarding"]["kind"]) == (
        "events.k8s.io/v1",
        "NodeReady",
        "Node",
    )
    assert event["note"].startswith("Node ip-10-0-1-23")
    created = http(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/shop/events",
        {
            "metadata": {"name": "web.drain"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "migratebot",
            "reportingInstance": "migratebot-0",
            "action": "Drain",
            "reason": "Evicted",
            "regarding": {"kind": "Pod", "namespace": "shop", "name": "web-7f9c6d8b5-x2k4p"},
            "note": "evicted for wave 1",
            "type": "Normal",
        },
    )
    assert created.status_code == 201
    core = http("GET", "/api/v1/namespaces/shop/events/web.drain").json()
    assert (core["message"], core["reportingComponent"], core["involvedObject"]["name"]) == (
        "evicted for wave 1", "migratebot", "web-7f9c6d8b5-x2k4p",
    )  # fmt: skip


def test_admin_loads_objects_and_issues_tokens(cluster: SandboxServer, http: Http) -> None:
    node = http("GET", "/api/v1/nodes/ip-10-0-1-23.us-west-2.compute.internal").json()
    node["status"]["conditions"][-1]["status"] = "False"
    loaded = http("POST", "/admin/objects", {"items": [node]})
    assert loaded.json() == {"loaded": 1}
    again = http("GET", "/api/v1/nodes/ip-10-0-1-23.us-west-2.compute.internal").json()
    assert again["status"]["conditions"][-1]["status"] == "False"
    token = http("POST", "/admin/tokens", {"serviceAccount": {"namespace": "shop", "name": "bot"}}).json()
    assert token["user"] == "system:serviceaccount:shop:bot"
    denied = Http(cluster, token["token"])("GET", "/api/v1/namespaces/shop/pods")
    assert denied.status_code == 403
    assert denied.json()["message"] == (
        'pods is forbidden: User "system:serviceaccount:shop:bot" cannot list resource "pods" '
        'in API group "" in the namespace "shop"'
    )
    assert Http(cluster, token["token"])("GET", "/admin/requests").status_code == 401


def test_a_continue_token_older_than_the_history_is_410(cluster: SandboxServer, http: Http) -> None:
    first = http("GET", "/api/v1/pods?limit=2").json()
    token = first["metadata"]["continue"]
    assert http("GET", f"/api/v1/pods?limit=2&continue={token}").status_code == 200
    cluster.api.store._compacted_rv = cluster.api.store.resource_version + 1  # as if etcd had compacted
    r = http("GET", f"/api/v1/pods?limit=2&continue={token}")
    assert r.status_code == 410
    assert r.json()["message"].startswith("The provided continue parameter is too old")
