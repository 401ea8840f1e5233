"""The controllers' single door to the in-process store: typed resource handles and safe writes.

Controllers write as the real ones do through the API (status through the status subresource), but
in-process and unconditionally (`force`): every reconcile re-reads current state, so a lost race
is corrected by the next pass instead of a 409 retry.
"""

from __future__ import annotations

import logging

from sandbox.clock import ScaledClock
from sandbox.controllers.common import random_suffix
from sandbox.kube import errors
from sandbox.kube.app import KubeApi
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import deep_copy, rfc3339

log = logging.getLogger("sandbox.controllers")


class Kube:
    def __init__(self, api: KubeApi, clock: ScaledClock) -> None:
        self.api = api
        self.store = api.store
        self.clock = clock
        self.lock = api.store.lock
        rt = api.rt
        self.pods = rt("", "v1", "pods")
        self.nodes = rt("", "v1", "nodes")
        self.events = rt("", "v1", "events")
        self.deployments = rt("apps", "v1", "deployments")
        self.replicasets = rt("apps", "v1", "replicasets")
        self.statefulsets = rt("apps", "v1", "statefulsets")
        self.daemonsets = rt("apps", "v1", "daemonsets")
        self.pdbs = rt("policy", "v1", "poddisruptionbudgets")
        self.nodepools = rt("karpenter.sh", "v1", "nodepools")
        self.nodeclaims = rt("karpenter.sh", "v1", "nodeclaims")
        self.nodeclasses = rt("karpenter.k8s.aws", "v1", "ec2nodeclasses")

    def now(self) -> float:
        return self.clock.now()

    def objects(self, rt_name: str, namespace: str | None = None) -> list[JSON]:
        rt = getattr(self, rt_name)
        items, _, _ = self.store.list_objects(rt, namespace)
        return items

    def pods_on(self, node: str) -> list[JSON]:
        items, _, _ = self.store.list_objects(
            self.pods,
            None,
            predicate=lambda p: p.get("spec", {}).get("nodeName") == node,
            indexed=("spec.nodeName", node),
        )
        return items

    def create(self, rt_name: str, obj: JSON, *, keep_status: bool = False) -> JSON | None:
        try:
            return self.store.create(getattr(self, rt_name), obj, keep_status=keep_status)
        except errors.ApiError as e:
            log.debug("create %s failed: %s", rt_name, e)
            return None

    def update(self, rt_name: str, obj: JSON) -> JSON | None:
        """Replace spec/metadata of `obj` (a copy the caller owns)."""
        rt = getattr(self, rt_name)
        obj["metadata"].pop("resourceVersion", None)
        try:
            with self.lock:
                return self.store.update(rt, obj, force=True)
        except errors.ApiError as e:
            log.debug("update %s failed: %s", rt_name, e)
            return None

    def update_status(self, rt_name: str, obj: JSON, status: JSON) -> JSON | None:
        rt = getattr(self, rt_name)
        try:
            with self.lock:
                current = self.store.get(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                if current is None or current["metadata"]["uid"] != obj["metadata"]["uid"]:
                    return None
                if current.get("status") == status:
                    return current
                return self.store.update(rt, dict(current, status=status), subresource="status", force=True)
        except errors.ApiError as e:
            log.debug("status of %s failed: %s", rt_name, e)
            return None

    def delete(self, rt_name: str, obj: JSON, *, grace_period: int | None = None) -> bool:
        rt = getattr(self, rt_name)
        meta = obj["metadata"]
        try:
            self.store.delete(
                rt, meta.get("namespace", ""), meta["name"], uid=meta["uid"], grace_period=grace_period
            )
            return True
        except errors.ApiError:
            return False

    def copy(self, obj: JSON) -> JSON:
        return deep_copy(obj)

    def event(
        self, obj: JSON, reason: str, message: str, *, component: str, host: str = "", warning: bool = False
    ) -> None:
        """A core/v1 Event about `obj`, as the component that emits it would write it."""
        meta = obj["metadata"]
        now = rfc3339(self.now())
        source: JSON = {"component": component}
        if host:
            source["host"] = host
        event: JSON = {
            "metadata": {
                "name": f"{meta['name']}.{random_suffix(8)}{random_suffix(8)}",
                "namespace": meta.get("namespace") or "default",
            },
            "involvedObject": {
                "kind": obj.get("kind", ""),
                "apiVersion": obj.get("apiVersion", ""),
                "namespace": meta.get("namespace", ""),
                "name": meta["name"],
                "uid": meta.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "source": source,
            "reportingComponent": component,
            "reportingInstance": host,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": "Warning" if warning else "Normal",
        }
        self.create("events", event)
