"""A tiny AL2 cluster for tests: three managed-node-group nodes, a Karpenter NodePool, pods behind
ReplicaSets and DaemonSets, and a PodDisruptionBudget. The full scenarios come with issue 4's later
slices; this is only enough cluster for kubectl and the client to have something real to look at."""

from __future__ import annotations

import time
import zlib
from datetime import UTC, datetime

from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import rfc3339

AL2_OS_IMAGE = "Amazon Linux 2"
AL2_KERNEL = "5.10.234-225.910.amzn2.x86_64"
CONTAINERD = "containerd://1.7.27"
KUBELET = "v1.32.3-eks-473151a"
REGION = "us-west-2"
CNI_IMAGE = "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.19.2"


def _uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def node(
    name: str, ip: str, zone: str, instance_id: str, *, nodegroup: str = "general", age_days: float = 12
) -> JSON:
    created = rfc3339(time.time() - age_days * 86400)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": node_uid(name),
            "creationTimestamp": created,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": "m5.large",
                "beta.kubernetes.io/os": "linux",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": nodegroup,
                "eks.amazonaws.com/nodegroup-image": "ami-0c4b2d3e5f6a7b8c9",
                "eks.amazonaws.com/sourceLaunchTemplateId": "lt-0a1b2c3d4e5f60718",
                "failure-domain.beta.kubernetes.io/region": REGION,
                "failure-domain.beta.kubernetes.io/zone": zone,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.k8s.aws/zone-id": {"us-west-2a": "usw2-az1", "us-west-2b": "usw2-az2"}.get(
                    zone, "usw2-az3"
                ),
                "topology.kubernetes.io/region": REGION,
                "topology.kubernetes.io/zone": zone,
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/{instance_id}"},
        "status": {
            "capacity": {"cpu": "2", "ephemeral-storage": "83873772Ki", "memory": "7910348Ki", "pods": "29"},
            "allocatable": {
                "cpu": "1930m",
                "ephemeral-storage": "76224326324",
                "memory": "7220172Ki",
                "pods": "29",
            },
            "conditions": [
                _node_condition("MemoryPressure", "False", "KubeletHasSufficientMemory", created),
                _node_condition("DiskPressure", "False", "KubeletHasNoDiskPressure", created),
                _node_condition("PIDPressure", "False", "KubeletHasSufficientPID", created),
                _node_condition("Ready", "True", "KubeletReady", created),
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": _uid(zlib.crc32(name.encode())),
                "containerRuntimeVersion": CONTAINERD,
                "kernelVersion": AL2_KERNEL,
                "kubeProxyVersion": KUBELET,
                "kubeletVersion": KUBELET,
                "machineID": "ec2" + instance_id[2:].ljust(29, "0"),
                "operatingSystem": "linux",
                "osImage": AL2_OS_IMAGE,
                "systemUUID": "ec2" + instance_id[2:].ljust(29, "0"),
            },
        },
    }


def node_uid(name: str) -> str:
    return _uid(int(name.split(".")[0].replace("ip-", "").replace("-", "")) % 10**12)


def lease(node_name: str) -> JSON:
    """The kubelet's heartbeat Lease (kube-node-lease), which `kubectl describe node` shows."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": "kube-node-lease",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid(node_name)}
            ],
        },
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": 40,
            "renewTime": datetime.fromtimestamp(time.time() - 5, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def node_event(node_name: str, reason: str, message: str) -> JSON:
    now = rfc3339(time.time() - 60)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{node_name}.{zlib.crc32(reason.encode()):08x}00000000",
            "namespace": "default",
        },
        "involvedObject": {"kind": "Node", "name": node_name, "uid": node_uid(node_name), "apiVersion": "v1"},
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": node_name},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Normal",
        "reportingComponent": "kubelet",
        "reportingInstance": node_name,
    }


def _node_condition(kind: str, status: str, reason: str, since: str) -> JSON:
    messages = {
        "KubeletReady": "kubelet is posting ready status",
        "KubeletHasSufficientMemory": "kubelet has sufficient memory available",
        "KubeletHasNoDiskPressure": "kubelet has no disk pressure",
        "KubeletHasSufficientPID": "kubelet has sufficient PID available",
    }
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": messages.get(reason, ""),
        "lastHeartbeatTime": rfc3339(time.time() - 30),
        "lastTransitionTime": since,
    }


def pod(
    name: str,
    namespace: str,
    node_name: str,
    ip: str,
    owner: JSON,
    labels: dict[str, str],
    *,
    image: str = "public.ecr.aws/nginx/nginx:1.27",
    empty_dir: bool = False,
    ready: bool = True,
) -> JSON:
    created = rfc3339(time.time() - 3 * 86400)
    volumes: list[JSON] = [
        {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
    ]
    mounts: list[JSON] = [
        {
            "name": "kube-api-access",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        }
    ]
    if empty_dir:
        volumes.append({"name": "cache", "emptyDir": {}})
        mounts.append({"name": "cache", "mountPath": "/cache"})
    ready_text = "True" if ready else "False"
    container = name.split("-")[0]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": created,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [
                {
                    "name": container,
                    "image": image,
                    "volumeMounts": mounts,
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
            "volumes": volumes,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": "",
            "qosClass": "Burstable",
            "startTime": created,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": created},
                {"type": "Ready", "status": ready_text, "lastTransitionTime": created},
                {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": created},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
            ],
            "containerStatuses": [
                {
                    "name": container,
                    "image": image,
                    "imageID": image + "@sha256:" + "0" * 64,
                    "ready": ready,
                    "started": ready,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": created}},
                }
            ],
        },
    }


def _owner(api_version: str, kind: str, name: str, namespace: str, uid: str, spec: JSON) -> JSON:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": rfc3339(time.time() - 20 * 86400),
        },
        "spec": spec,
    }


NODES = (
    ("ip-10-0-1-23.us-west-2.compute.internal", "10.0.1.23", "us-west-2a", "i-0a1b2c3d4e5f60001"),
    ("ip-10-0-2-45.us-west-2.compute.internal", "10.0.2.45", "us-west-2b", "i-0a1b2c3d4e5f60002"),
    ("ip-10-0-3-67.us-west-2.compute.internal", "10.0.3.67", "us-west-2c", "i-0a1b2c3d4e5f60003"),
)


def tiny_cluster() -> list[JSON]:
    """Objects in creation order for `KubeApi.load` / `SandboxServer(objects=…)`."""
    objects: list[JSON] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}]
    objects += [node(*n) for n in NODES]
    objects += [lease(n[0]) for n in NODES]
    objects.append(node_event(NODES[0][0], "NodeReady", f"Node {NODES[0][0]} status is now: NodeReady"))
    match = {"matchLabels": {"app": "web"}}
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27"}]},
    }
    deploy = _owner(
        "apps/v1",
        "Deployment",
        "web",
        "shop",
        _uid(1),
        {"replicas": 3, "selector": match, "template": template},
    )
    rs = _owner(
        "apps/v1",
        "ReplicaSet",
        "web-7f9c6d8b5",
        "shop",
        _uid(2),
        {"replicas": 3, "selector": match, "template": template},
    )
    rs["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": _uid(1), "controller": True}
    ]
    rs["metadata"]["labels"] = {"app": "web", "pod-template-hash": "7f9c6d8b5"}
    ds_match = {"matchLabels": {"k8s-app": "aws-node"}}
    ds_template = {
        "metadata": {"labels": {"k8s-app": "aws-node"}},
        "spec": {"containers": [{"name": "aws-node", "image": CNI_IMAGE}]},
    }
    ds = _owner(
        "apps/v1",
        "DaemonSet",
        "aws-node",
        "kube-system",
        _uid(3),
        {"selector": ds_match, "template": ds_template},
    )
    objects += [deploy, rs, ds]
    suffixes = ("x2k4p", "m8q7z", "t5v9w")
    for i, (node_name, _ip, _zone, _iid) in enumerate(NODES):
        objects.append(
            pod(f"web-7f9c6d8b5-{suffixes[i]}", "shop", node_name, f"10.0.{i + 1}.{100 + i}", rs,
                {"app": "web", "pod-template-hash": "7f9c6d8b5"}, empty_dir=(i == 0))
        )  # fmt: skip
        objects.append(
            pod(f"aws-node-{suffixes[i][:5]}", "kube-system", node_name, f"10.0.{i + 1}.{10 + i}", ds,
                {"k8s-app": "aws-node"}, image=CNI_IMAGE)
        )  # fmt: skip
    objects.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"maxUnavailable": 1, "selector": match},
        }
    )
    objects += karpenter_objects()
    return objects


def karpenter_objects() -> list[JSON]:
    return [
        {
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": {"name": "al2"},
            "spec": {
                "role": "KarpenterNodeRole-sandbox",
                "amiSelectorTerms": [{"alias": "al2@latest"}],
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
                "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "sandbox"}}],
            },
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Ready",
                        "message": "",
                        "lastTransitionTime": rfc3339(time.time() - 86400),
                    }
                ]
            },
        },
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "default"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "al2"},
                        "requirements": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                        ],
                    }
                },
                "disruption": {
                    "consolidationPolicy": "WhenEmptyOrUnderutilized",
                    "consolidateAfter": "1m",
                    "budgets": [{"nodes": "10%"}],
                },
            },
            "status": {
                "nodes": 1,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Ready",
                        "message": "",
                        "lastTransitionTime": rfc3339(time.time() - 86400),
                    }
                ],
            },
        },
        {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodeClaim",
            "metadata": {
                "name": "default-8xk2q",
                "labels": {
                    "karpenter.sh/nodepool": "default",
                    "karpenter.sh/capacity-type": "on-demand",
                    "node.kubernetes.io/instance-type": "m5.large",
                    "topology.kubernetes.io/zone": "us-west-2a",
                },
            },
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "al2"},
                "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}],
            },
            "status": {
                "nodeName": "ip-10-0-1-23.us-west-2.compute.internal",
                "providerID": "aws:///us-west-2a/i-0a1b2c3d4e5f60001",
            },
        },
    ]
