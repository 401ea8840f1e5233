"""EKS managed node groups: the AWS side's instances become Nodes and back.

Every `Timing.nodegroup_poll` emulated seconds the controller reads each node group's desired size
through the EKS API (what `aws eks update-nodegroup-config` changed), lets the emulator's Auto
Scaling group launch or terminate instances to match, registers a Node per new instance (Ready after
the AMI's boot latency) and, for a terminated instance, cordons its Node, evicts its pods (through
the eviction API, honouring PDBs) and deletes the Node once only DaemonSet pods remain.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3

from sandbox.aws.emulator import AwsEmulator, UnknownInstanceError
from sandbox.aws.seed import AmiFamily
from sandbox.controllers.common import is_daemonset_pod, terminal
from sandbox.controllers.groundtruth import GroundTruth
from sandbox.controllers.kube import Kube
from sandbox.controllers.kubelet import Kubelet
from sandbox.controllers.nodes import instance_id_of, node_for
from sandbox.controllers.timing import Timing
from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON

log = logging.getLogger("sandbox.controllers.nodegroups")
NODEGROUP = "eks.amazonaws.com/nodegroup"


class NodeGroups:
    def __init__(
        self, kube: Kube, aws: AwsEmulator, timing: Timing, kubelet: Kubelet, truth: GroundTruth
    ) -> None:
        self.kube = kube
        self.aws = aws
        self.timing = timing
        self.kubelet = kubelet
        self.truth = truth
        self._eks: Any = None
        self._next = 0.0
        self._retry: dict[str, float] = {}  # pod uid -> next eviction attempt
        self._deleted: set[str] = set()  # groups the EKS API no longer knows

    def reconcile(self, now: float) -> float | None:
        try:
            seeded = self.aws.seeded
        except Exception:
            return now + self.timing.nodegroup_poll
        if now >= self._next:
            self._next = now + self.timing.nodegroup_poll
            self._sync_desired(seeded.cluster_name, list(seeded.node_groups))
        # Scaling through the AWS API takes real (hence many emulated) seconds: register at the time
        # the nodes really appear.
        now = self.kube.now()
        self._sync_nodes(seeded.region, list(seeded.node_groups), now)
        self._retry = {uid: t for uid, t in self._retry.items() if t > now}
        return min([self._next, *self._retry.values()])

    def _sync_desired(self, cluster: str, groups: list[str]) -> None:
        if self._eks is None:
            kw = self.aws.client_kwargs()
            self._eks = boto3.client(
                "eks",
                endpoint_url=kw["endpoint_url"],
                region_name=kw["region_name"],
                aws_access_key_id=kw["aws_access_key_id"],
                aws_secret_access_key=kw["aws_secret_access_key"],
            )
        for group in groups:
            try:
                desired = int(
                    self._eks.describe_nodegroup(clusterName=cluster, nodegroupName=group)["nodegroup"][
                        "scalingConfig"
                    ]["desiredSize"]
                )
                if desired != len(self.aws.node_group_instances(group)):
                    self.aws.scale_node_group(group, desired)
                self._deleted.discard(group)
            except Exception as e:
                if _not_found(e):
                    self._gone(group)
                else:
                    log.warning("node group %s: %s", group, e)

    def _gone(self, group: str) -> None:
        """A node group deleted through the EKS API (delete_nodegroup): EKS terminates whatever
        instances it still had; their Nodes are then drained and removed like any terminated one."""
        if group not in self._deleted:
            self._deleted.add(group)
            log.info("node group %s was deleted", group)
        for instance in self.aws.node_group_instances(group):
            self.aws.terminate_instance(instance.instance_id)

    def _sync_nodes(self, region: str, groups: list[str], now: float) -> None:
        kube = self.kube
        live = {i.instance_id: i for g in groups for i in self.aws.node_group_instances(g)}
        with kube.lock:
            nodes = [n for n in kube.objects("nodes") if (n["metadata"].get("labels") or {}).get(NODEGROUP)]
            known = {instance_id_of(n): n for n in nodes}
        for instance_id, instance in live.items():
            if instance_id in known:
                continue
            labels = {
                NODEGROUP: instance.node_group or "",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup-image": instance.image_id,
            }
            node = node_for(instance, region=region, labels=labels, taints=[], now=now)
            bottlerocket = instance.ami_family is AmiFamily.BOTTLEROCKET
            if kube.create("nodes", node, keep_status=True) is not None:
                self.kubelet.boot(instance.name, self.timing.node_ready(bottlerocket))
                self.truth.node(
                    instance.name,
                    os="Bottlerocket" if bottlerocket else "AL2",
                    instanceId=instance_id,
                    nodeGroup=instance.node_group,
                    launched=instance.launched_at.timestamp() if instance.launched_at else now,
                    registered=now,
                )
        for instance_id, node in known.items():
            if instance_id in live:
                continue
            try:
                gone = self.aws.is_terminated(instance_id)
            except UnknownInstanceError:
                gone = False  # a node the emulator never launched (a fixture): not ours to judge
            if gone:
                self._drain_and_remove(node, now)

    def _drain_and_remove(self, node: JSON, now: float) -> None:
        kube = self.kube
        name = node["metadata"]["name"]
        if not node.get("spec", {}).get("unschedulable"):
            new = kube.copy(node)
            new["spec"]["unschedulable"] = True
            kube.update("nodes", new)
        remaining = 0
        for pod in kube.pods_on(name):
            if terminal(pod) or is_daemonset_pod(pod):
                continue
            remaining += 1
            if pod["metadata"].get("deletionTimestamp"):
                continue
            uid = pod["metadata"]["uid"]
            if self._retry.get(uid, 0.0) > now:
                continue
            try:
                kube.api.disruption.evict(
                    pod["metadata"]["namespace"], pod["metadata"]["name"], None, by="eks-nodegroup"
                )
                self._retry.pop(uid, None)
            except errors.ApiError:
                self._retry[uid] = now + self.timing.eviction_retry
        if remaining == 0:
            with kube.lock:
                current = kube.store.get(kube.nodes, "", name)
                if current is not None and kube.delete("nodes", current):
                    self.truth.node(name, deleted=now)


def _not_found(e: Exception) -> bool:
    response = getattr(e, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "ResourceNotFoundException"
