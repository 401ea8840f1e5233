"""Node objects as EKS registers them for an EC2 instance (managed node group or Karpenter)."""

from __future__ import annotations

from sandbox.aws.records import NodeInstance
from sandbox.aws.seed import AmiFamily
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import rfc3339

# vCPU, memory GiB, max pods (the VPC CNI's ENI limit) of the instance types the sandbox launches.
INSTANCE_TYPES: dict[str, tuple[int, int, int]] = {
    "t3.medium": (2, 4, 17),
    "t3.large": (2, 8, 35),
    "m5.large": (2, 8, 29),
    "m5.xlarge": (4, 16, 58),
    "m5.2xlarge": (8, 32, 58),
    "m5.4xlarge": (16, 64, 234),
    "c5.large": (2, 4, 29),
    "c5.xlarge": (4, 8, 58),
    "c5.2xlarge": (8, 16, 58),
    "r5.large": (2, 16, 29),
    "r5.xlarge": (4, 32, 58),
    "m6i.large": (2, 8, 29),
    "m6i.xlarge": (4, 16, 58),
    "m6i.2xlarge": (8, 32, 58),
}
DEFAULT_TYPE = "m5.large"


def capacity(instance_type: str) -> tuple[int, int, int]:
    return INSTANCE_TYPES.get(instance_type, INSTANCE_TYPES[DEFAULT_TYPE])


def allocatable(instance_type: str) -> tuple[str, str, str]:
    """kubelet's allocatable after EKS's kube-reserved: cpu 70m on 2 vCPU (more on bigger types),
    memory 255 MiB + 11 MiB per pod, and a 100 MiB eviction threshold."""
    vcpu, gib, pods = capacity(instance_type)
    cpu_m = vcpu * 1000 - (70 if vcpu <= 2 else 80 + 5 * (vcpu - 2))
    mem_ki = gib * 1024 * 1024 - (255 + 11 * pods) * 1024 - 100 * 1024
    return f"{cpu_m}m", f"{mem_ki}Ki", str(pods)


def node_for(
    instance: NodeInstance,
    *,
    region: str,
    labels: dict[str, str],
    taints: list[JSON],
    now: float,
) -> JSON:
    """A just-registered Node: Ready=False until its kubelet reports, tainted not-ready."""
    vcpu, gib, pods = capacity(instance.instance_type)
    cpu, mem, max_pods = allocatable(instance.instance_type)
    bottlerocket = instance.ami_family is AmiFamily.BOTTLEROCKET
    all_labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": instance.instance_type,
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": instance.zone,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": instance.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": instance.instance_type,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": instance.zone,
        "k8s.io/cloud-provider-aws": "sandbox",
        **labels,
    }
    created = rfc3339(now)
    machine = "ec2" + instance.instance_id[2:].ljust(29, "0")
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": instance.name,
            "labels": all_labels,
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": instance.private_ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "providerID": instance.provider_id,
            "taints": [
                *taints,
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule", "timeAdded": created},
            ],
        },
        "status": {
            "capacity": {
                "cpu": str(vcpu),
                "memory": f"{gib * 1024 * 1024}Ki",
                "pods": str(pods),
                "ephemeral-storage": "20959212Ki" if bottlerocket else "83873772Ki",
            },
            "allocatable": {"cpu": cpu, "memory": mem, "pods": max_pods, "ephemeral-storage": "18242267924"},
            "conditions": [
                _cond("MemoryPressure", "False", "KubeletHasSufficientMemory", created),
                _cond("DiskPressure", "False", "KubeletHasNoDiskPressure", created),
                _cond("PIDPressure", "False", "KubeletHasSufficientPID", created),
                _cond(
                    "Ready",
                    "False",
                    "KubeletNotReady",
                    created,
                    "container runtime network not ready: NetworkReady=false",
                ),
            ],
            "addresses": [
                {"type": "InternalIP", "address": instance.private_ip},
                {"type": "InternalDNS", "address": instance.name},
                {"type": "Hostname", "address": instance.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": instance.instance_id,
                "containerRuntimeVersion": instance.os.container_runtime_version,
                "kernelVersion": instance.os.kernel_version,
                "kubeProxyVersion": instance.os.kubelet_version,
                "kubeletVersion": instance.os.kubelet_version,
                "machineID": machine,
                "operatingSystem": "linux",
                "osImage": instance.os.os_image,
                "systemUUID": machine,
            },
        },
    }


def _cond(kind: str, status: str, reason: str, ts: str, message: str = "") -> JSON:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": ts,
        "lastTransitionTime": ts,
    }


def instance_id_of(node: JSON) -> str:
    return str(node.get("spec", {}).get("providerID", "")).rsplit("/", 1)[-1]
