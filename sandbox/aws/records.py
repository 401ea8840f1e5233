"""What the emulator hands back: the instances it launched and the resources it seeded.

The Kubernetes side builds its Node objects from NodeInstance (name, providerID, zone, labels, node
info); tests and the admin endpoint's ground truth read the same records.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sandbox.aws.amis import AmiRecord, NodeOsInfo
from sandbox.aws.seed import AmiFamily

# EC2's MetadataOptions.HttpTokens: "optional" still answers IMDSv1, "required" is IMDSv2 only.
HttpTokens = Literal["optional", "required"]


@dataclass(frozen=True)
class NodeInstance:
    # The Kubernetes node name: EKS names nodes after the instance's private DNS name.
    name: str
    instance_id: str
    zone: str
    private_ip: str
    subnet_id: str
    instance_type: str
    image_id: str
    ami_name: str
    ami_family: AmiFamily
    ami_release: str
    http_tokens: HttpTokens
    ebs_encrypted: bool
    ssh_key_name: str | None
    launched_at: datetime.datetime
    os: NodeOsInfo
    node_group: str | None = None
    nodepool: str | None = None
    nodeclass: str | None = None
    nodeclaim: str | None = None

    @property
    def private_dns_name(self) -> str:
        return self.name

    @property
    def provider_id(self) -> str:
        return f"aws:///{self.zone}/{self.instance_id}"

    @property
    def imds_v1_allowed(self) -> bool:
        return self.http_tokens == "optional"


@dataclass(frozen=True)
class NodeGroupRecord:
    name: str
    arn: str
    asg_name: str
    launch_template_id: str
    security_group_id: str
    subnet_ids: tuple[str, ...]
    ami_family: AmiFamily
    ami_release: str


@dataclass(frozen=True)
class SeedResult:
    account_id: str
    region: str
    cluster_name: str
    cluster_arn: str
    cluster_endpoint: str
    kubernetes_version: str
    vpc_id: str
    subnets: Mapping[str, str]  # zone -> subnet id
    cluster_security_group_id: str
    karpenter_security_group_id: str
    node_role_arn: str
    instance_profile_arn: str
    ssh_key_name: str | None
    amis: tuple[AmiRecord, ...]
    node_groups: Mapping[str, NodeGroupRecord]
    nodes: tuple[NodeInstance, ...]

    def node(self, name: str) -> NodeInstance:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no seeded node is named {name}")

    def nodes_of_group(self, node_group: str) -> list[NodeInstance]:
        return [n for n in self.nodes if n.node_group == node_group]

    def nodes_of_pool(self, nodepool: str) -> list[NodeInstance]:
        return [n for n in self.nodes if n.nodepool == nodepool]

    def ami(self, family: AmiFamily, release: str | None = None) -> AmiRecord:
        """The seeded AMI of a release, or the family's latest when release is None."""
        candidates = [a for a in self.amis if a.family is family and release in (None, a.release)]
        if not candidates:
            raise KeyError(f"no {family} AMI {release or 'latest'} is seeded")
        return candidates[-1]


@dataclass(frozen=True)
class ScaleResult:
    """What a node group scaling did, so the Kubernetes side can register and remove Nodes."""

    node_group: str
    previous_desired: int
    desired: int
    launched: tuple[NodeInstance, ...]
    terminated: tuple[NodeInstance, ...]
