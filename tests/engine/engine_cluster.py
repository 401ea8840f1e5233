"""Hand-made clusters for the engine's tests: every class of pod kubectl drain tells apart, on nodes of
every OS family and owner."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.kube.fixtures import NODES, node, pod, tiny_cluster

JSON = dict[str, Any]

N1, N2, N3 = (n[0] for n in NODES)
BR_NODE = "ip-10-0-4-10.us-west-2.compute.internal"
AL2023_NODE = "ip-10-0-5-11.us-west-2.compute.internal"
KARPENTER_AL2_NODE = "ip-10-0-6-12.us-west-2.compute.internal"


def _uid(n: int) -> str:
    return f"00000000-0000-4000-9000-{n:012d}"


def owner(api_version: str, kind: str, name: str, namespace: str, uid: str, spec: JSON | None = None) -> JSON:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": spec or {},
    }


def bare(p: JSON) -> JSON:
    p["metadata"].pop("ownerReferences", None)
    return p


def extra_nodes() -> list[JSON]:
    br = node(BR_NODE, "10.0.4.10", "us-west-2a", "i-0b00000000000000a", nodegroup="unused")
    del br["metadata"]["labels"]["eks.amazonaws.com/nodegroup"]
    br["metadata"]["labels"]["karpenter.sh/nodepool"] = "bottlerocket"
    br["status"]["nodeInfo"]["osImage"] = "Bottlerocket OS 1.26.2 (aws-k8s-1.31)"
    al2023 = node(AL2023_NODE, "10.0.5.11", "us-west-2b", "i-0c00000000000000b")
    del al2023["metadata"]["labels"]["eks.amazonaws.com/nodegroup"]
    al2023["status"]["nodeInfo"]["osImage"] = "Amazon Linux 2023.6.20241111"
    al2023["spec"]["providerID"] = ""
    kal2 = node(KARPENTER_AL2_NODE, "10.0.6.12", "us-west-2c", "i-0d00000000000000c")
    del kal2["metadata"]["labels"]["eks.amazonaws.com/nodegroup"]
    kal2["metadata"]["labels"]["karpenter.sh/nodepool"] = "default"
    kal2["spec"]["unschedulable"] = True
    for c in kal2["status"]["conditions"]:
        if c["type"] == "Ready":
            c["status"] = "Unknown"
    return [br, al2023, kal2]


def drain_cluster(*, with_do_not_disrupt: bool = False, permissive_pdb: bool = True) -> list[JSON]:
    """tiny_cluster plus, on N1/N2/N3: a StatefulSet pod, a Job pod, a bare pod (N2 only), a finished
    bare pod, a mirror pod, a critical CoreDNS pod, a DaemonSet pod whose DaemonSet is gone (N3 only),
    and (optionally) a do-not-disrupt pod. The web PDB is made permissive unless asked otherwise so
    a drain of every node is never blocked."""
    objects = copy.deepcopy(tiny_cluster())
    if permissive_pdb:
        for o in objects:
            if o["kind"] == "PodDisruptionBudget":
                o["spec"] = {"maxUnavailable": "100%", "selector": o["spec"]["selector"]}
    objects += extra_nodes()
    sts = owner(
        "apps/v1",
        "StatefulSet",
        "db",
        "shop",
        _uid(1),
        {"replicas": 3, "selector": {"matchLabels": {"app": "db"}}},
    )
    job = owner("batch/v1", "Job", "report-29001", "shop", _uid(2))
    dns_rs = owner("apps/v1", "ReplicaSet", "coredns-5d78c9869d", "kube-system", _uid(3), {"replicas": 3})
    dns_rs["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "coredns", "uid": _uid(4), "controller": True}
    ]
    gone_ds = owner("apps/v1", "DaemonSet", "old-agent", "kube-system", _uid(5))  # never stored
    objects += [sts, dns_rs]
    for i, node_name in enumerate((N1, N2, N3), start=1):
        ip = f"10.0.{i}.2{{}}"
        objects.append(pod(f"db-{i - 1}", "shop", node_name, ip.format(1), sts, {"app": "db"}))
        objects.append(pod(f"report-29001-{i}x", "shop", node_name, ip.format(2), job, {"job": "report"}))
        done = bare(pod(f"done-{i}", "shop", node_name, ip.format(3), job, {"app": "done"}))
        done["status"]["phase"] = "Succeeded"
        objects.append(done)
        mirror = pod(
            f"kube-proxy-{node_name.split('.')[0]}",
            "kube-system",
            node_name,
            ip.format(4),
            job,
            {"k8s-app": "kube-proxy"},
        )
        mirror["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": f"node-{i}", "controller": True}
        ]
        mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": f"{i:032x}"}
        objects.append(mirror)
        dns = pod(f"coredns-5d78c9869d-{i}abc", "kube-system", node_name, ip.format(5), dns_rs,
                  {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"})  # fmt: skip
        dns["spec"]["priorityClassName"] = "system-cluster-critical"
        objects.append(dns)
        if with_do_not_disrupt:
            keep = pod(f"trainer-{i}", "shop", node_name, ip.format(6), job, {"app": "trainer"})
            keep["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
            objects.append(keep)
    objects.append(bare(pod("debug-shell", "shop", N2, "10.0.2.29", sts, {"app": "debug"})))
    objects.append(pod("old-agent-zz9", "kube-system", N3, "10.0.3.29", gone_ds, {"app": "old-agent"}))
    return objects
