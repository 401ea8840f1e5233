"""What the AWS side of a sandbox scenario holds, as plain typed data.

The scenario loader (YAML, validated elsewhere) builds these; the emulator turns them into AWS
resources through boto3. Frozen so a seed can be shared between emulators and tests without anyone
changing it underneath them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class AmiFamily(StrEnum):
    AL2 = "AL2"
    BOTTLEROCKET = "BOTTLEROCKET"


class Severity(StrEnum):
    # Inspector2's own spelling, so a finding's severity can be compared with the API's.
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


@dataclass(frozen=True)
class SeverityCounts:
    """Inspector2 package-vulnerability findings one instance carries, by severity."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0

    def of(self, severity: Severity) -> int:
        return {
            Severity.CRITICAL: self.critical,
            Severity.HIGH: self.high,
            Severity.MEDIUM: self.medium,
            Severity.LOW: self.low,
        }[severity]

    @property
    def total(self) -> int:
        return self.critical + self.high + self.medium + self.low


@dataclass(frozen=True)
class FindingsPolicy:
    """How many Inspector2 findings each instance gets, by the OS it runs.

    Defaults follow the reason the migration exists: an AL2 node carries a handful of kernel, glibc
    and OpenSSL CVEs, a Bottlerocket node (minimal image, no package manager) one or two.
    """

    al2: SeverityCounts = SeverityCounts(critical=1, high=3, medium=3, low=1)
    bottlerocket: SeverityCounts = SeverityCounts(critical=0, high=0, medium=1, low=1)
    enabled: bool = True

    def counts_for(self, family: AmiFamily) -> SeverityCounts:
        if not self.enabled:
            return SeverityCounts()
        return self.al2 if family is AmiFamily.AL2 else self.bottlerocket


@dataclass(frozen=True)
class NodeGroupSeed:
    """An EKS managed node group: its Auto Scaling group launches `desired` instances."""

    name: str
    instance_type: str = "m5.large"
    desired: int = 3
    ami_family: AmiFamily = AmiFamily.AL2
    # None: the newest release of the family seeded in AwsSeed.
    ami_release: str | None = None
    # Share of instances that still answer IMDSv1 (HttpTokens=optional), rounded to whole instances.
    imds_v1_fraction: float = 0.0
    ebs_encrypted: bool = True
    # The group's security group lets 0.0.0.0/0 in on port 22 and its instances carry an SSH key.
    ssh_open: bool = False
    # Empty: every zone of the cluster, instances spread round-robin like an ASG balances them.
    zones: tuple[str, ...] = ()
    min_size: int = 0
    max_size: int | None = None


@dataclass(frozen=True)
class KarpenterPoolSeed:
    """Nodes a Karpenter NodePool already runs when the scenario starts (no Auto Scaling group)."""

    nodepool: str
    nodeclass: str
    count: int
    instance_type: str = "m5.large"
    ami_family: AmiFamily = AmiFamily.AL2
    ami_release: str | None = None
    imds_v1_fraction: float = 0.0
    ebs_encrypted: bool = True
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class AwsSeed:
    cluster_name: str
    region: str = "us-west-2"
    kubernetes_version: str = "1.31"
    vpc_cidr: str = "10.0.0.0/16"
    zones: tuple[str, ...] = ("us-west-2a", "us-west-2b")
    node_groups: tuple[NodeGroupSeed, ...] = ()
    karpenter_pools: tuple[KarpenterPoolSeed, ...] = ()
    # Releases registered as AMIs and published through SSM, oldest first; the last one is "latest".
    al2_releases: tuple[str, ...] = ("v20241011", "v20241024")
    bottlerocket_versions: tuple[str, ...] = ("1.26.1", "1.26.2")
    findings: FindingsPolicy = field(default_factory=FindingsPolicy)
    # AWS-managed policies attached to the node role beyond the four every EKS node needs — a
    # scenario shows an over-privileged role this way (e.g. "AmazonS3FullAccess").
    extra_node_role_policies: tuple[str, ...] = ()
    # Inline policies put on the node role, as operators add them: (name, policy document as JSON).
    # "{account}", "{region}" and "{cluster}" in the document are replaced when it is put (a seed
    # does not know the emulator's account).
    node_role_inline_policies: tuple[tuple[str, str], ...] = ()
    # Drives every random choice (which instances keep IMDSv1, which CVEs an instance gets).
    random_seed: int = 0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.zones:
            problems.append("at least one zone is needed")
        for zone in self.zones:
            if not zone.startswith(self.region):
                problems.append(f"zone {zone} is not in region {self.region}")
        if not self.al2_releases or not self.bottlerocket_versions:
            problems.append("al2_releases and bottlerocket_versions need at least one release each")
        names = [g.name for g in self.node_groups]
        if len(names) != len(set(names)):
            problems.append(f"node group names repeat: {sorted(names)}")
        for group in self.node_groups:
            problems.extend(_placement_problems(f"node group {group.name}", group.zones, self))
            problems.extend(_fraction_problems(f"node group {group.name}", group.imds_v1_fraction))
            problems.extend(_release_problems(f"node group {group.name}", group, self))
            if group.desired < group.min_size or (
                group.max_size is not None and group.desired > group.max_size
            ):
                problems.append(
                    f"node group {group.name}: desired {group.desired} is outside "
                    f"[{group.min_size}, {group.max_size}]"
                )
        for pool in self.karpenter_pools:
            problems.extend(_placement_problems(f"nodepool {pool.nodepool}", pool.zones, self))
            problems.extend(_fraction_problems(f"nodepool {pool.nodepool}", pool.imds_v1_fraction))
            problems.extend(_release_problems(f"nodepool {pool.nodepool}", pool, self))
        if problems:
            raise ValueError("invalid AWS seed: " + "; ".join(problems))

    def releases_of(self, family: AmiFamily) -> tuple[str, ...]:
        return self.al2_releases if family is AmiFamily.AL2 else self.bottlerocket_versions


def _placement_problems(what: str, zones: tuple[str, ...], seed: AwsSeed) -> list[str]:
    unknown = [z for z in zones if z not in seed.zones]
    return [f"{what}: zones {unknown} are not among the cluster's {list(seed.zones)}"] if unknown else []


def _fraction_problems(what: str, fraction: float) -> list[str]:
    return [] if 0.0 <= fraction <= 1.0 else [f"{what}: imds_v1_fraction {fraction} is not within 0..1"]


def _release_problems(what: str, group: NodeGroupSeed | KarpenterPoolSeed, seed: AwsSeed) -> list[str]:
    known = seed.releases_of(group.ami_family)
    if group.ami_release is None or group.ami_release in known:
        return []
    return [f"{what}: {group.ami_family} release {group.ami_release} is not seeded (known: {list(known)})"]
