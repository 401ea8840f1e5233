"""Small API objects for the reports' pure tests: only the fields the reports read."""

from __future__ import annotations

import zlib
from typing import Any

JSON = dict[str, Any]

AL2_IMAGE = "Amazon Linux 2"
BOTTLEROCKET_IMAGE = "Bottlerocket OS 1.26.2 (aws-k8s-1.31)"


def node(name: str, *, group: str = "ng-web", pool: str = "", image: str = AL2_IMAGE, **labels: str) -> JSON:
    all_labels = {"kubernetes.io/hostname": name, "workload-class": "web", **labels}
    if pool:
        all_labels["karpenter.sh/nodepool"] = pool
    elif group:
        all_labels["eks.amazonaws.com/nodegroup"] = group
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": all_labels},
        "spec": {"providerID": f"aws:///us-west-2a/i-{zlib.crc32(name.encode()):012x}"},
        "status": {
            "nodeInfo": {
                "osImage": image,
                "kernelVersion": "5.10.226",
                "containerRuntimeVersion": "containerd://1.7",
            },
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def container(name: str = "app", **extra: Any) -> JSON:
    return {
        "name": name,
        "image": "example/app:1",
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        **extra,
    }


def pod(
    name: str,
    node_name: str,
    *,
    namespace: str = "shop",
    owner: tuple[str, str] | None = ("ReplicaSet", "web-5d78c9869d"),
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    containers: list[JSON] | None = None,
    volumes: list[JSON] | None = None,
    **spec: Any,
) -> JSON:
    meta: JSON = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{namespace}-{name}",
        "labels": labels or {"app": "web"},
        "annotations": annotations or {},
    }
    if owner is not None:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node_name,
            "containers": containers or [container()],
            "volumes": volumes or [],
            "topologySpreadConstraints": [{"topologyKey": "topology.kubernetes.io/zone"}],
            **spec,
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def replicaset(name: str, deployment: str, namespace: str = "shop", replicas: int = 2) -> JSON:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [{"kind": "Deployment", "name": deployment, "controller": True}],
        },
        "spec": {"replicas": replicas},
    }


def deployment(name: str, namespace: str = "shop", replicas: int = 2) -> JSON:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": replicas}}


def pdb(name: str, namespace: str = "shop", *, allowed: int, match: dict[str, str] | None = None) -> JSON:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": match or {"app": "web"}}},
        "status": {"disruptionsAllowed": allowed},
    }
