"""What a scenario becomes: the AWS seed, the Slack workspace seed, and the Kubernetes objects.

The Kubernetes side is built from the instances the AWS emulator actually launched, so every Node's
name and providerID belong to a real emulated instance. Pods are placed the way the scheduler would
have left them (node selectors, taints, allocatable CPU/memory, max pods, round-robin across zones)
and loaded Running — the controllers, when present, take over from that observed state.
"""

from __future__ import annotations

import gc
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sandbox.aws import (
    AmiFamily,
    AwsSeed,
    FindingsPolicy,
    KarpenterPoolSeed,
    NodeGroupSeed,
    NodeInstance,
)
from sandbox.controllers.common import template_hash
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import rfc3339
from sandbox.scenarios.model import NodeGroupSpec, NodePoolSpec, PdbSpec, Scenario, Taint, WorkloadSpec
from sandbox.slack import SeedBot, SeedChannel, SeedUser, SeedUsergroup, WorkspaceSeed

SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}

# vCPU, memory GiB, max pods (the VPC CNI's ENI limit) per instance type.
INSTANCE_TYPES: dict[str, tuple[int, int, int]] = {
    "m5.large": (2, 8, 29),
    "m5.xlarge": (4, 16, 58),
    "m5.2xlarge": (8, 32, 58),
    "m5.4xlarge": (16, 64, 234),
    "c5.xlarge": (4, 8, 58),
    "c5.2xlarge": (8, 16, 58),
    "r5.large": (2, 16, 29),
    "r5.xlarge": (4, 32, 58),
    "r5.2xlarge": (8, 64, 58),
}
ZONE_IDS = {"a": "usw2-az1", "b": "usw2-az2", "c": "usw2-az3", "d": "usw2-az4"}
NEVER_READY_MESSAGE = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)


_READ = ["get", "list", "watch"]
_VIEW_RULES: list[JSON] = [
    {"apiGroups": [""], "resources": ["nodes", "pods", "namespaces", "events"], "verbs": _READ},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
     "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _READ},
    {"apiGroups": ["karpenter.sh"], "resources": ["nodepools", "nodeclaims"], "verbs": _READ},
    {"apiGroups": ["karpenter.k8s.aws"], "resources": ["ec2nodeclasses"], "verbs": _READ},
]  # fmt: skip
ROLE_RULES: dict[str, list[JSON]] = {
    "view": _VIEW_RULES,
    # What a migration operator does by hand: cordon and drain nodes, change Karpenter's intent, and
    # retire a drained Karpenter node (delete its NodeClaim) — what migratebot does in their name.
    "operator": [
        *_VIEW_RULES,
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch", "update"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": ["karpenter.sh"], "resources": ["nodepools"], "verbs": ["create", "patch", "update"]},
        {"apiGroups": ["karpenter.sh"], "resources": ["nodeclaims"], "verbs": ["delete"]},
        {"apiGroups": ["karpenter.k8s.aws"], "resources": ["ec2nodeclasses"],
         "verbs": ["create", "patch", "update"]},
    ],
}  # fmt: skip


def uid_for(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sandbox:" + "/".join(parts)))


def _suffix(*parts: str, n: int = 5) -> str:
    # Kubernetes' generated-name alphabet (no vowels, no confusable digits).
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:n])


def _template_hash(*parts: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256(("template/" + "/".join(parts)).encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def parse_cpu(text: str) -> int:
    """Millicores."""
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def parse_memory(text: str) -> int:
    """Bytes (binary and decimal suffixes)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


# ---- AWS and Slack seeds ---------------------------------------------------------------------------


def aws_seed(scenario: Scenario) -> AwsSeed:
    classes = {c.name: c for c in scenario.nodeclasses}
    return AwsSeed(
        cluster_name=scenario.cluster.name,
        region=scenario.cluster.region,
        kubernetes_version=scenario.cluster.kubernetes_version,
        zones=scenario.cluster.zones,
        node_groups=tuple(
            NodeGroupSeed(
                g.name,
                instance_type=g.instance_type,
                desired=g.desired,
                ami_family=AmiFamily(g.ami_family),
                imds_v1_fraction=g.imds_v1_fraction,
                ebs_encrypted=g.ebs_encrypted,
                ssh_open=g.ssh_open,
                max_size=max(g.desired * 2, 1),
            )
            for g in scenario.node_groups
        ),
        karpenter_pools=tuple(
            KarpenterPoolSeed(
                p.name,
                p.nodeclass,
                p.nodes,
                instance_type=p.instance_type,
                ami_family=(
                    AmiFamily.BOTTLEROCKET
                    if classes[p.nodeclass].ami_alias.startswith("bottlerocket")
                    else AmiFamily.AL2
                ),
                imds_v1_fraction=p.imds_v1_fraction,
                ebs_encrypted=p.ebs_encrypted,
            )
            for p in scenario.nodepools
            if p.nodes
        ),
        findings=FindingsPolicy(enabled=scenario.inspector_findings),
        extra_node_role_policies=scenario.extra_node_role_policies,
        node_role_inline_policies=tuple(
            (name, json.dumps(policy)) for name, policy in sorted(scenario.node_role_inline_policies.items())
        ),
        random_seed=scenario.random_seed,
    )


def slack_seed(scenario: Scenario) -> WorkspaceSeed:
    spec = scenario.slack
    bot = SeedBot(
        user_id=spec.bot_user_id,
        tokens=(spec.bot_token,),
        signing_secret=spec.signing_secret,
    )
    everyone = tuple(u.id for u in spec.users)
    channels = []
    for c in spec.channels:
        members = everyone if c.members == "everyone" else tuple(c.members)
        if c.bot_member:
            members = (*members, bot.user_id)
        channels.append(SeedChannel(c.id, c.name, members, purpose=c.purpose))
    return WorkspaceSeed(
        team_id=spec.team_id,
        team_name=spec.team_name,
        bot=bot,
        users=tuple(SeedUser(u.id, u.name, u.real_name, email=u.email) for u in spec.users),
        usergroups=tuple(SeedUsergroup(g.id, g.handle, g.name, g.members) for g in spec.usergroups),
        channels=tuple(channels),
    )


# ---- Kubernetes -----------------------------------------------------------------------------------


@dataclass
class _Slot:
    """A node as the placement sees it: what it offers and what is already placed on it."""

    node: JSON
    ip: str
    zone: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    cpu: int
    memory: int
    pods: int
    ready: bool
    used_cpu: int = 0
    used_memory: int = 0
    used_pods: int = 0
    next_ip: int = 10

    def fits(self, cpu: int, memory: int) -> bool:
        return (
            self.used_pods < self.pods
            and self.used_cpu + cpu <= self.cpu
            and self.used_memory + memory <= self.memory
        )

    def take(self, cpu: int, memory: int) -> str:
        self.used_cpu += cpu
        self.used_memory += memory
        self.used_pods += 1
        octets = self.ip.split(".")
        self.next_ip += 1
        third = (int(octets[2]) + self.next_ip // 250) % 256
        return f"{octets[0]}.{octets[1]}.{third}.{self.next_ip % 250 + 2}"


@dataclass
class KubeObjects:
    """Everything loaded into the API, in creation order, plus what placement decided."""

    objects: list[JSON] = field(default_factory=list)
    never_ready_nodes: list[str] = field(default_factory=list)
    unscheduled_pods: list[str] = field(default_factory=list)
    # (name, providerID, creationTimestamp) of every Node: what remains once `objects` is released.
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    pod_count: int = 0

    def release(self) -> None:
        """Drop the object list once loaded (the store holds its own copies; 100,000 pods are ~1 GB)."""
        self.objects = []


def kube_objects(scenario: Scenario, instances: Iterable[NodeInstance], now: float) -> KubeObjects:
    # Acyclic JSON only: the cyclic GC's full passes over 100,000 fresh pods would triple the time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Builder(scenario, list(instances), now).build()
    finally:
        if gc_was_enabled:
            gc.enable()


class _Builder:
    def __init__(self, scenario: Scenario, instances: list[NodeInstance], now: float) -> None:
        self.s = scenario
        self.instances = instances
        self.now = now
        self.out = KubeObjects()
        self.groups = {g.name: g for g in scenario.node_groups}
        self.pools = {p.name: p for p in scenario.nodepools}
        self.slots: list[_Slot] = []
        self._candidates: dict[str, list[_Slot]] = {}
        self._cursor: dict[str, int] = {}

    def ts(self, age_seconds: float) -> str:
        return rfc3339(self.now - age_seconds)

    def build(self) -> KubeObjects:
        add = self.out.objects.append
        for ns in self.s.namespaces:
            if ns.name not in SYSTEM_NAMESPACES:
                add(self._namespace(ns.name, ns.labels))
        if self.s.generated:
            for i in range(self.s.generated.namespaces):
                add(self._namespace(f"team-{i:03d}", {"team": f"team-{i:03d}"}))
        add(self._namespace("migratebot", {"app.kubernetes.io/name": "migratebot"}))
        self.out.objects += self._karpenter_classes_and_pools()
        self.out.objects += self._rbac()
        never_ready = set(self.s.faults.never_ready_node_groups)
        for inst in self.instances:
            broken = inst.node_group in never_ready
            if broken:
                never_ready.discard(inst.node_group or "")
                self.out.never_ready_nodes.append(inst.name)
            node = self._node(inst, ready=not broken)
            add(node)
            add(self._lease(inst.name, node["metadata"]["uid"]))
            if inst.nodeclaim:
                add(self._nodeclaim(inst))
        for ns in self.s.namespaces:
            for w in ns.workloads:
                self.out.objects += self._workload(ns.name, ns.labels, w)
        if self.s.generated:
            self._generated()
        self.out.pod_count = sum(1 for o in self.out.objects if o["kind"] == "Pod")
        self.out.nodes = [
            (o["metadata"]["name"], o["spec"]["providerID"], o["metadata"]["creationTimestamp"])
            for o in self.out.objects
            if o["kind"] == "Node"
        ]
        return self.out

    # ---- cluster-scoped -------------------------------------------------------------------------

    @staticmethod
    def _namespace(name: str, labels: dict[str, str]) -> JSON:
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}

    def _rbac(self) -> list[JSON]:
        rbac = "rbac.authorization.k8s.io"
        out: list[JSON] = []
        for role in sorted(set(self.s.rbac_groups.values()) - {"cluster-admin"}):
            out.append(
                {
                    "apiVersion": f"{rbac}/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": f"sandbox:{role}"},
                    "rules": ROLE_RULES[role],
                }
            )
        for group, role in sorted(self.s.rbac_groups.items()):
            out.append(
                {
                    "apiVersion": f"{rbac}/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": f"sandbox:{group}"},
                    "roleRef": {
                        "apiGroup": rbac,
                        "kind": "ClusterRole",
                        "name": role if role == "cluster-admin" else f"sandbox:{role}",
                    },
                    "subjects": [{"apiGroup": rbac, "kind": "Group", "name": group}],
                }
            )
        return out

    def _karpenter_classes_and_pools(self) -> list[JSON]:
        c = self.s.cluster
        ready = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "",
                "lastTransitionTime": self.ts(40 * 86400),
            }
        ]
        out: list[JSON] = []
        for nc in self.s.nodeclasses:
            discovery = {"tags": {"karpenter.sh/discovery": c.name}}
            out.append(
                {
                    "apiVersion": "karpenter.k8s.aws/v1",
                    "kind": "EC2NodeClass",
                    "metadata": {
                        "name": nc.name,
                        "uid": uid_for("ec2nodeclass", nc.name),
                        "creationTimestamp": self.ts(40 * 86400),
                    },
                    "spec": {
                        "role": nc.role or f"KarpenterNodeRole-{c.name}",
                        "amiSelectorTerms": [{"alias": nc.ami_alias}],
                        "subnetSelectorTerms": [discovery],
                        "securityGroupSelectorTerms": [discovery],
                    },
                    "status": {"conditions": ready},
                }
            )
        for p in self.s.nodepools:
            out.append(
                {
                    "apiVersion": "karpenter.sh/v1",
                    "kind": "NodePool",
                    "metadata": {
                        "name": p.name,
                        "uid": uid_for("nodepool", p.name),
                        "creationTimestamp": self.ts(40 * 86400),
                    },
                    "spec": {
                        "template": {
                            "metadata": {"labels": dict(p.labels)},
                            "spec": {
                                "nodeClassRef": {
                                    "group": "karpenter.k8s.aws",
                                    "kind": "EC2NodeClass",
                                    "name": p.nodeclass,
                                },
                                "requirements": [
                                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                                    {
                                        "key": "karpenter.sh/capacity-type",
                                        "operator": "In",
                                        "values": ["on-demand"],
                                    },
                                    {
                                        "key": "node.kubernetes.io/instance-type",
                                        "operator": "In",
                                        "values": [p.instance_type],
                                    },
                                    {
                                        "key": "topology.kubernetes.io/zone",
                                        "operator": "In",
                                        "values": list(c.zones),
                                    },
                                ],
                                "expireAfter": "720h",
                            },
                        },
                        "disruption": {
                            "consolidationPolicy": "WhenEmptyOrUnderutilized",
                            "consolidateAfter": "1m",
                            "budgets": [{"nodes": p.budget_nodes}],
                        },
                        "limits": {"cpu": "1000"},
                    },
                    "status": {"nodes": p.nodes, "conditions": ready},
                }
            )
        return out

    def _node(self, inst: NodeInstance, *, ready: bool) -> JSON:
        c = self.s.cluster
        cpu, mem_gi, max_pods = INSTANCE_TYPES.get(inst.instance_type, (2, 8, 29))
        group: NodeGroupSpec | None = self.groups.get(inst.node_group or "")
        pool: NodePoolSpec | None = self.pools.get(inst.nodepool or "")
        age = 30 * 86400 if group else 6 * 86400
        created = self.ts(age)
        zone = inst.zone
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/instance-type": inst.instance_type,
            "beta.kubernetes.io/os": "linux",
            "failure-domain.beta.kubernetes.io/region": c.region,
            "failure-domain.beta.kubernetes.io/zone": zone,
            "k8s.io/cloud-provider-aws": hashlib.sha256(c.name.encode()).hexdigest()[:32],
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": inst.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": inst.instance_type,
            "topology.k8s.aws/zone-id": ZONE_IDS.get(zone[-1], "usw2-az1"),
            "topology.kubernetes.io/region": c.region,
            "topology.kubernetes.io/zone": zone,
        }
        annotations = {
            "alpha.kubernetes.io/provided-node-ip": inst.private_ip,
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        }
        taints: list[JSON] = []
        owners: list[JSON] = []
        if group is not None:
            labels |= {
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "eks.amazonaws.com/nodegroup": group.name,
                "eks.amazonaws.com/nodegroup-image": inst.image_id,
                **group.labels,
            }
            taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in group.taints]
        if pool is not None:
            family = inst.instance_type.split(".")[0]
            labels |= {
                "karpenter.sh/nodepool": pool.name,
                "karpenter.k8s.aws/ec2nodeclass": pool.nodeclass,
                "karpenter.sh/capacity-type": "on-demand",
                "karpenter.sh/initialized": "true",
                "karpenter.sh/registered": "true",
                "karpenter.k8s.aws/instance-category": family[0],
                "karpenter.k8s.aws/instance-family": family,
                "karpenter.k8s.aws/instance-generation": "".join(ch for ch in family if ch.isdigit()),
                "karpenter.k8s.aws/instance-size": inst.instance_type.split(".")[1],
                "karpenter.k8s.aws/instance-cpu": str(cpu),
                "karpenter.k8s.aws/instance-memory": str(mem_gi * 1024),
                **pool.labels,
            }
            annotations |= {
                "karpenter.k8s.aws/ec2nodeclass-hash": hashlib.sha256(pool.nodeclass.encode()).hexdigest()[
                    :16
                ],
                "karpenter.sh/nodepool-hash": hashlib.sha256(pool.name.encode()).hexdigest()[:16],
                "karpenter.sh/nodepool-hash-version": "v3",
            }
            owners = [
                {
                    "apiVersion": "karpenter.sh/v1",
                    "kind": "NodeClaim",
                    "name": inst.nodeclaim,
                    "uid": uid_for("nodeclaim", inst.nodeclaim or ""),
                    "blockOwnerDeletion": True,
                }
            ]
        if not ready:
            taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
        allocatable_cpu = cpu * 1000 - (70 + 10 * cpu)
        allocatable_mem = mem_gi * 2**30 - (255 + 11 * max_pods) * 2**20 - 100 * 2**20
        ready_condition = (
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status")
            if ready
            else ("Ready", "False", "KubeletNotReady", NEVER_READY_MESSAGE)
        )
        conditions = [
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ready_condition,
        ]
        machine = "ec2" + inst.instance_id[2:].ljust(29, "0")
        node: JSON = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": inst.name,
                "uid": uid_for("node", inst.name),
                "creationTimestamp": created,
                "labels": labels,
                "annotations": annotations,
                **({"ownerReferences": owners} if owners else {}),
            },
            "spec": {"providerID": inst.provider_id, **({"taints": taints} if taints else {})},
            "status": {
                "capacity": {
                    "cpu": str(cpu),
                    "ephemeral-storage": "20959212Ki",
                    "memory": f"{mem_gi * 1024 * 1024 - 400000}Ki",
                    "pods": str(max_pods),
                },
                "allocatable": {
                    "cpu": f"{allocatable_cpu}m",
                    "ephemeral-storage": "18242267924",
                    "memory": f"{allocatable_mem // 1024}Ki",
                    "pods": str(max_pods),
                },
                "conditions": [
                    {
                        "type": t,
                        "status": st,
                        "reason": r,
                        "message": m,
                        "lastHeartbeatTime": self.ts(20),
                        "lastTransitionTime": created,
                    }
                    for t, st, r, m in conditions
                ],
                "addresses": [
                    {"type": "InternalIP", "address": inst.private_ip},
                    {"type": "InternalDNS", "address": inst.name},
                    {"type": "Hostname", "address": inst.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": uid_for("boot", inst.instance_id),
                    "containerRuntimeVersion": inst.os.container_runtime_version,
                    "kernelVersion": inst.os.kernel_version,
                    "kubeProxyVersion": inst.os.kubelet_version,
                    "kubeletVersion": inst.os.kubelet_version,
                    "machineID": machine,
                    "operatingSystem": "linux",
                    "osImage": inst.os.os_image,
                    "systemUUID": machine,
                },
            },
        }
        self.slots.append(
            _Slot(
                node=node,
                ip=inst.private_ip,
                zone=zone,
                labels=labels,
                taints=tuple(
                    Taint(key=t["key"], value=t.get("value", ""), effect=t["effect"]) for t in taints
                ),
                cpu=allocatable_cpu,
                memory=allocatable_mem,
                pods=max_pods,
                ready=ready,
            )
        )
        return node

    def _lease(self, name: str, node_uid: str) -> JSON:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": "kube-node-lease",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": 40,
                "renewTime": self.ts(5)[:-1] + ".000000Z",
            },
        }

    def _nodeclaim(self, inst: NodeInstance) -> JSON:
        pool = self.pools[inst.nodepool or ""]
        created = self.ts(6 * 86400 + 60)
        conditions = [
            {"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": created}
            for t in ("Launched", "Registered", "Initialized", "Ready")
        ]
        cpu, mem_gi, max_pods = INSTANCE_TYPES.get(inst.instance_type, (2, 8, 29))
        return {
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodeClaim",
            "metadata": {
                "name": inst.nodeclaim,
                "uid": uid_for("nodeclaim", inst.nodeclaim or ""),
                "creationTimestamp": created,
                "finalizers": ["karpenter.sh/termination"],
                "labels": {
                    "karpenter.sh/nodepool": pool.name,
                    "karpenter.k8s.aws/ec2nodeclass": pool.nodeclass,
                    "karpenter.sh/capacity-type": "on-demand",
                    "node.kubernetes.io/instance-type": inst.instance_type,
                    "topology.kubernetes.io/zone": inst.zone,
                    "kubernetes.io/arch": "amd64",
                    **pool.labels,
                },
                "annotations": {
                    "karpenter.k8s.aws/ec2nodeclass-hash": hashlib.sha256(
                        pool.nodeclass.encode()
                    ).hexdigest()[:16],
                    "karpenter.sh/nodepool-hash": hashlib.sha256(pool.name.encode()).hexdigest()[:16],
                },
                "ownerReferences": [
                    {
                        "apiVersion": "karpenter.sh/v1",
                        "kind": "NodePool",
                        "name": pool.name,
                        "uid": uid_for("nodepool", pool.name),
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": pool.nodeclass,
                },
                "requirements": [
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": [inst.instance_type],
                    },
                    {"key": "karpenter.sh/nodepool", "operator": "In", "values": [pool.name]},
                ],
                "expireAfter": "720h",
            },
            "status": {
                "providerID": inst.provider_id,
                "nodeName": inst.name,
                "imageID": inst.image_id,
                "capacity": {"cpu": str(cpu), "memory": f"{mem_gi}Gi", "pods": str(max_pods)},
                "conditions": conditions,
            },
        }

    # ---- workloads ------------------------------------------------------------------------------

    def _eligible(self, w: WorkloadSpec) -> list[_Slot]:
        key = repr((sorted(w.node_selector.items()), w.tolerations, w.tolerate_everything))
        if key not in self._candidates:
            self._candidates[key] = [
                slot
                for slot in self.slots
                if slot.ready
                and all(slot.labels.get(k) == v for k, v in w.node_selector.items())
                and (w.tolerate_everything or all(_tolerated(t, w.tolerations) for t in slot.taints))
            ]
            self._cursor[key] = 0
        return self._candidates[key]

    def _place(self, w: WorkloadSpec, cpu: int, memory: int) -> _Slot | None:
        """Round-robin over the eligible nodes (nodes alternate zones), skipping full ones."""
        candidates = self._eligible(w)
        key = repr((sorted(w.node_selector.items()), w.tolerations, w.tolerate_everything))
        start = self._cursor[key]
        for i in range(len(candidates)):
            slot = candidates[(start + i) % len(candidates)]
            if slot.fits(cpu, memory):
                self._cursor[key] = (start + i + 1) % len(candidates)
                return slot
        return None

    def _workload(self, namespace: str, ns_labels: dict[str, str], w: WorkloadSpec) -> list[JSON]:
        selector = dict(w.labels) or {"app": w.name}
        pod_labels = {**selector, "app.kubernetes.io/name": w.name}
        if "team" in ns_labels:
            pod_labels["team"] = ns_labels["team"]
        template: JSON = {
            "metadata": {
                "labels": pod_labels,
                **({"annotations": dict(w.pod_annotations)} if w.pod_annotations else {}),
            },
            "spec": self._pod_spec(w),
        }
        created = self.ts(20 * 86400)
        owner_uid = uid_for(w.kind, namespace, w.name)
        meta: JSON = {
            "name": w.name,
            "namespace": namespace,
            "uid": owner_uid,
            "creationTimestamp": created,
            "labels": {**selector, "app.kubernetes.io/name": w.name},
            "generation": 1,
        }
        out: list[JSON] = []
        spec: JSON
        cpu, memory = parse_cpu(w.cpu), parse_memory(w.memory)
        if w.kind == "Pod":
            out.append(self._pod(namespace, w.name, w, template, None, cpu, memory))
        elif w.kind == "DaemonSet":
            spec = {
                "selector": {"matchLabels": selector},
                "template": template,
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
                },
            }
            owner = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": w.name, "uid": owner_uid}
            placed = 0
            for slot in self._eligible(w):
                name = f"{w.name}-{_suffix(namespace, w.name, slot.node['metadata']['name'])}"
                out.append(self._pod(namespace, name, w, template, owner, cpu, memory, slot=slot))
                placed += 1
            ds: JSON = {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": meta,
                "spec": spec,
                "status": {
                    "currentNumberScheduled": placed,
                    "desiredNumberScheduled": placed,
                    "numberAvailable": placed,
                    "numberMisscheduled": 0,
                    "numberReady": placed,
                    "observedGeneration": 1,
                    "updatedNumberScheduled": placed,
                },
            }
            out.insert(0, ds)
        elif w.kind == "StatefulSet":
            spec = {
                "replicas": w.replicas,
                "selector": {"matchLabels": selector},
                "template": template,
                "serviceName": w.name,
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            }
            if w.volume_claim_gi:
                spec["volumeClaimTemplates"] = [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": "gp3",
                            "resources": {"requests": {"storage": f"{w.volume_claim_gi}Gi"}},
                        },
                    }
                ]
            owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": w.name, "uid": owner_uid}
            revision = f"{w.name}-{_template_hash(namespace, w.name)}"
            for i in range(w.replicas):
                labels = {
                    "apps.kubernetes.io/pod-index": str(i),
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": f"{w.name}-{i}",
                }
                out.append(
                    self._pod(
                        namespace,
                        f"{w.name}-{i}",
                        w,
                        template,
                        owner,
                        cpu,
                        memory,
                        extra_labels=labels,
                        claim=f"data-{w.name}-{i}" if w.volume_claim_gi else None,
                    )
                )
            out.insert(
                0,
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": meta,
                    "spec": spec,
                    "status": self._replica_status(w.replicas, sts=True, revision=revision),
                },
            )
        else:
            # The hash the Deployment controller computes, so it adopts the seeded ReplicaSet
            # instead of replacing every seeded pod at startup.
            h = template_hash(template)
            spec = {
                "replicas": w.replicas,
                "selector": {"matchLabels": selector},
                "template": template,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            }
            deploy = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {**meta, "annotations": {"deployment.kubernetes.io/revision": "1"}},
                "spec": spec,
                "status": self._replica_status(w.replicas),
            }
            rs_uid = uid_for("ReplicaSet", namespace, w.name, h)
            rs_template = {
                **template,
                "metadata": {**template["metadata"], "labels": {**pod_labels, "pod-template-hash": h}},
            }
            rs = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{w.name}-{h}",
                    "namespace": namespace,
                    "uid": rs_uid,
                    "creationTimestamp": created,
                    "generation": 1,
                    "labels": {**selector, "pod-template-hash": h},
                    "annotations": {
                        "deployment.kubernetes.io/desired-replicas": str(w.replicas),
                        "deployment.kubernetes.io/max-replicas": str(w.replicas + 1),
                        "deployment.kubernetes.io/revision": "1",
                    },
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": w.name,
                            "uid": owner_uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": w.replicas,
                    "selector": {"matchLabels": {**selector, "pod-template-hash": h}},
                    "template": rs_template,
                },
                "status": {
                    "replicas": w.replicas,
                    "readyReplicas": w.replicas,
                    "availableReplicas": w.replicas,
                    "fullyLabeledReplicas": w.replicas,
                    "observedGeneration": 1,
                },
            }
            out += [deploy, rs]
            owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{w.name}-{h}", "uid": rs_uid}
            for i in range(w.replicas):
                name = f"{w.name}-{h}-{_suffix(namespace, w.name, str(i))}"
                out.append(self._pod(namespace, name, w, rs_template, owner, cpu, memory))
        if w.pdb is not None:
            spec = {"selector": {"matchLabels": selector}}
            blocked = f"{namespace}/{w.name}" in self.s.faults.blocked_pdbs
            if blocked:
                # The misconfiguration seen in the wild: no voluntary disruption is ever allowed.
                spec["maxUnavailable"] = 0
            elif w.pdb.max_unavailable is not None:
                spec["maxUnavailable"] = w.pdb.max_unavailable
            else:
                spec["minAvailable"] = w.pdb.min_available
            out.append(
                {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {
                        "name": w.name,
                        "namespace": namespace,
                        "labels": {"app.kubernetes.io/name": w.name},
                    },
                    "spec": spec,
                }
            )
        return out

    @staticmethod
    def _replica_status(replicas: int, *, sts: bool = False, revision: str = "") -> JSON:
        status: JSON = {
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
            "observedGeneration": 1,
        }
        if sts:
            status |= {
                "currentReplicas": replicas,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            }
        else:
            status["conditions"] = [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": "ReplicaSet has successfully progressed.",
                },
            ]
        return status

    def _pod_spec(self, w: WorkloadSpec) -> JSON:
        resources: JSON = {"requests": {"cpu": w.cpu, "memory": w.memory}}
        limits = {k: v for k, v in (("cpu", w.cpu_limit), ("memory", w.memory_limit)) if v}
        if limits:
            resources["limits"] = limits
        container: JSON = {
            "name": w.name,
            "image": w.image,
            "imagePullPolicy": "IfNotPresent",
            "resources": resources,
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
        if w.command:
            container["command"] = list(w.command)
        if w.port:
            container["ports"] = [
                {"containerPort": w.port, "name": "http" if w.port != 5432 else "postgres", "protocol": "TCP"}
            ]
            if w.probe != "none":
                action: JSON = (
                    {"httpGet": {"path": "/healthz", "port": w.port, "scheme": "HTTP"}}
                    if w.probe == "http"
                    else {"tcpSocket": {"port": w.port}}
                )
                container["readinessProbe"] = {
                    **action,
                    "periodSeconds": 10,
                    "timeoutSeconds": 1,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                }
                container["livenessProbe"] = {
                    **action,
                    "initialDelaySeconds": 15,
                    "periodSeconds": 20,
                    "timeoutSeconds": 1,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                }
        if w.privileged:
            container["securityContext"] = {"privileged": True}
        volumes: list[JSON] = []
        mounts: list[JSON] = []
        for i, hp in enumerate(w.host_paths):
            volumes.append({"name": f"host-{i}", "hostPath": {"path": hp.path, "type": "DirectoryOrCreate"}})
            mounts.append({"name": f"host-{i}", "mountPath": hp.mount_path, "readOnly": hp.read_only})
        if w.empty_dir:
            volumes.append({"name": "cache", "emptyDir": {}})
            mounts.append({"name": "cache", "mountPath": "/var/cache/app"})
        if w.volume_claim_gi:
            mounts.append({"name": "data", "mountPath": "/var/lib/data"})
        if mounts:
            container["volumeMounts"] = mounts
        spec: JSON = {"containers": [container]}
        if volumes:
            spec["volumes"] = volumes
        if w.node_selector:
            spec["nodeSelector"] = dict(w.node_selector)
        if w.tolerate_everything:
            spec["tolerations"] = [{"operator": "Exists"}]
        elif w.tolerations:
            spec["tolerations"] = [
                {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
                for t in w.tolerations
            ]
        if w.priority_class:
            spec["priorityClassName"] = w.priority_class
            spec["priority"] = 2000001000 if w.priority_class == "system-node-critical" else 2000000000
        if w.host_network:
            spec["hostNetwork"] = True
        return spec

    def _pod(
        self,
        namespace: str,
        name: str,
        w: WorkloadSpec,
        template: JSON,
        owner: JSON | None,
        cpu: int,
        memory: int,
        *,
        slot: _Slot | None = None,
        extra_labels: dict[str, str] | None = None,
        claim: str | None = None,
    ) -> JSON:
        if slot is None:
            slot = self._place(w, cpu, memory)
        created = self.ts(3 * 86400)
        spec = dict(template["spec"])
        volumes = list(spec.get("volumes", []))
        if claim:
            volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
        volumes.append(
            {
                "name": "kube-api-access",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                    ],
                },
            }
        )
        spec["volumes"] = volumes
        container = dict(spec["containers"][0])
        container["volumeMounts"] = [
            *container.get("volumeMounts", []),
            {
                "name": "kube-api-access",
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            },
        ]
        spec["containers"] = [container]
        spec |= {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        }
        metadata: JSON = {
            "name": name,
            "namespace": namespace,
            "uid": uid_for("pod", namespace, name),
            "creationTimestamp": created,
            "labels": {**template["metadata"]["labels"], **(extra_labels or {})},
        }
        if "annotations" in template["metadata"]:
            metadata["annotations"] = dict(template["metadata"]["annotations"])
        if owner is not None:
            metadata["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
        qos = "Guaranteed" if w.cpu_limit == w.cpu and w.memory_limit == w.memory else "Burstable"
        if slot is None:
            self.out.unscheduled_pods.append(f"{namespace}/{name}")
            status: JSON = {
                "phase": "Pending",
                "qosClass": qos,
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "lastTransitionTime": created,
                        "message": f"0/{len(self.slots)} nodes are available: no node fits.",
                    }
                ],
            }
        else:
            ip = slot.ip if w.host_network else slot.take(cpu, memory)
            if w.host_network:
                slot.used_pods += 1
                slot.used_cpu += cpu
                slot.used_memory += memory
            spec["nodeName"] = slot.node["metadata"]["name"]
            status = {
                "phase": "Running",
                "hostIP": slot.ip,
                "hostIPs": [{"ip": slot.ip}],
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "qosClass": qos,
                "startTime": created,
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": created}
                    for t in (
                        "PodReadyToStartContainers",
                        "Initialized",
                        "Ready",
                        "ContainersReady",
                        "PodScheduled",
                    )
                ],
                "containerStatuses": [
                    {
                        "name": w.name,
                        "image": w.image,
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "imageID": w.image.split(":")[0]
                        + "@sha256:"
                        + hashlib.sha256(w.image.encode()).hexdigest(),
                        "containerID": "containerd://"
                        + hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest(),
                        "state": {"running": {"startedAt": created}},
                        "lastState": {},
                    }
                ],
            }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}

    def _generated(self) -> None:
        g = self.s.generated
        assert g is not None
        for n in range(g.namespaces):
            namespace = f"team-{n:03d}"
            for d in range(g.deployments_per_namespace):
                w = WorkloadSpec(
                    kind="Deployment",
                    name=f"svc-{d:02d}",
                    replicas=g.replicas,
                    image=g.image,
                    cpu=g.cpu,
                    memory=g.memory,
                    port=8080,
                    pdb=PdbSpec(max_unavailable="10%") if d % 4 == 0 else None,
                )
                self.out.objects += self._workload(namespace, {"team": namespace}, w)


def _tolerated(taint: Taint, tolerations: tuple[Taint, ...]) -> bool:
    return any(
        t.key == taint.key and t.value == taint.value and t.effect == taint.effect for t in tolerations
    )


def iter_kinds(objects: Iterable[JSON], kind: str) -> Iterator[JSON]:
    return (o for o in objects if o.get("kind") == kind)
