"""Helpers for the controller tests (no tests here): a cluster with controllers on a fast clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sandbox.aws import AwsEmulator
from sandbox.clock import ScaledClock
from sandbox.controllers import Controllers, Timing
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import node
from sandbox.kube.jsontypes import JSON

T = TypeVar("T")
BOTTLEROCKET_OS = "Bottlerocket OS 1.26.2 (aws-k8s-1.31)"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def ready_node(
    name: str, ip: str, zone: str, instance_id: str, *, bottlerocket: bool = False, group: str = "ng"
) -> JSON:
    n = node(name, ip, zone, instance_id, nodegroup=group)
    if bottlerocket:
        n["status"]["nodeInfo"]["osImage"] = BOTTLEROCKET_OS
        n["status"]["nodeInfo"]["kernelVersion"] = "6.1.112"
        n["status"]["nodeInfo"]["containerRuntimeVersion"] = "containerd://1.7.22+bottlerocket"
    return n


def deployment(
    name: str,
    replicas: int,
    *,
    namespace: str = "default",
    node_selector: dict[str, str] | None = None,
    image: str = "public.ecr.aws/nginx/nginx:1.27",
    cpu: str = "100m",
    annotations: dict[str, str] | None = None,
) -> JSON:
    template: JSON = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [
                {"name": "app", "image": image, "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}
            ],
            "terminationGracePeriodSeconds": 30,
        },
    }
    if node_selector:
        template["spec"]["nodeSelector"] = node_selector
    if annotations:
        template["metadata"]["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template},
    }


def pdb(name: str, app: str, *, namespace: str = "default", **spec: Any) -> JSON:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


@contextmanager
def running(
    objects: list[JSON], *, scale: float = 100.0, aws: AwsEmulator | None = None, timing: Timing | None = None
) -> Iterator[tuple[SandboxServer, Controllers]]:
    clock = ScaledClock(scale)
    with SandboxServer(objects=objects, clock=clock) as sb, Controllers(sb.api, clock, aws, timing) as ctl:
        yield sb, ctl


def pods_of(sb: SandboxServer, app: str, namespace: str = "default") -> list[JSON]:
    items, _, _ = sb.api.store.list_objects(
        sb.api.rt("", "v1", "pods"),
        namespace,
        predicate=lambda p: (p["metadata"].get("labels") or {}).get("app") == app,
    )
    return items


def ready(pod: JSON) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )
