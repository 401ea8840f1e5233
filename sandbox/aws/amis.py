"""The AL2 and Bottlerocket AMIs the sandbox publishes: names, SSM paths and Karpenter aliases.

Names and parameter paths are the ones AWS publishes, so code that filters DescribeImages by name
or resolves an EC2NodeClass alias through SSM works unchanged against the sandbox.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sandbox.aws.seed import AmiFamily

# The accounts that publish the EKS-optimized AL2 AMIs and the Bottlerocket AMIs (owner-id filters
# in Terraform modules and eksctl use these); both show owner alias "amazon".
EKS_AMI_OWNER_ID = "602401143452"
BOTTLEROCKET_AMI_OWNER_ID = "092701018921"

_ALIAS = re.compile(r"^(?P<family>[a-z0-9]+)@(?P<version>latest|v[0-9][0-9.]*)$")


@dataclass(frozen=True)
class NodeOsInfo:
    """Node.status.nodeInfo fields the AMI decides, as the real AMIs report them."""

    os_image: str
    kernel_version: str
    container_runtime_version: str
    kubelet_version: str


@dataclass(frozen=True)
class AmiRecord:
    image_id: str
    name: str
    family: AmiFamily
    # "v20241024" for AL2, "1.26.2" for Bottlerocket: the string their SSM paths use.
    release: str
    owner_id: str
    description: str


def ami_name(family: AmiFamily, kubernetes_version: str, release: str) -> str:
    if family is AmiFamily.AL2:
        return f"amazon-eks-node-{kubernetes_version}-{release}"
    return f"bottlerocket-aws-k8s-{kubernetes_version}-x86_64-v{release}-{bottlerocket_commit(release)}"


def bottlerocket_commit(version: str) -> str:
    # Real Bottlerocket image names end in the build's short commit; a stable stand-in keeps the
    # names deterministic across runs.
    return hashlib.sha256(f"bottlerocket-{version}".encode()).hexdigest()[:8]


def ami_description(family: AmiFamily, kubernetes_version: str, release: str) -> str:
    if family is AmiFamily.AL2:
        return (
            "EKS Kubernetes Worker AMI with AmazonLinux2 image, "
            f"(k8s: {kubernetes_version}, containerd: 1.7.*)"
        )
    return f"bottlerocket-aws-k8s-{kubernetes_version}-x86_64-v{release}-{bottlerocket_commit(release)}"


def owner_of(family: AmiFamily) -> str:
    return EKS_AMI_OWNER_ID if family is AmiFamily.AL2 else BOTTLEROCKET_AMI_OWNER_ID


def release_version(family: AmiFamily, kubernetes_version: str, release: str) -> str:
    """What EKS reports as a node group's releaseVersion for this AMI."""
    if family is AmiFamily.AL2:
        return f"{kubernetes_version}.0-{release.removeprefix('v')}"
    return f"{release}-{bottlerocket_commit(release)}"


def image_id_parameter(family: AmiFamily, kubernetes_version: str, release: str | None) -> str:
    """The public SSM parameter holding the AMI id; release None means the latest one.

    These are the paths Karpenter resolves an EC2NodeClass alias through (al2@v20241024,
    bottlerocket@v1.26.2, …@latest).
    """
    if family is AmiFamily.AL2:
        base = f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2"
        leaf = "recommended" if release is None else f"amazon-eks-node-{kubernetes_version}-{release}"
        return f"{base}/{leaf}/image_id"
    base = f"/aws/service/bottlerocket/aws-k8s-{kubernetes_version}/x86_64"
    return f"{base}/{'latest' if release is None else release}/image_id"


def public_parameters(record: AmiRecord, kubernetes_version: str, *, latest: bool) -> dict[str, str]:
    """Every SSM public parameter AWS publishes for this AMI (and the "latest" set if it is)."""
    releases: list[str | None] = [record.release, None] if latest else [record.release]
    parameters: dict[str, str] = {}
    for release in releases:
        image_id_path = image_id_parameter(record.family, kubernetes_version, release)
        folder = image_id_path.removesuffix("/image_id")
        parameters[image_id_path] = record.image_id
        if record.family is AmiFamily.AL2:
            parameters[f"{folder}/image_name"] = record.name
            parameters[f"{folder}/release_version"] = release_version(
                record.family, kubernetes_version, record.release
            )
        else:
            parameters[f"{folder}/image_version"] = release_version(
                record.family, kubernetes_version, record.release
            )
    return parameters


@dataclass(frozen=True)
class AmiAlias:
    family: AmiFamily
    # None: latest.
    release: str | None


def parse_alias(alias: str) -> AmiAlias:
    """Parse a Karpenter amiSelectorTerms alias ("bottlerocket@v1.26.2", "al2@latest")."""
    match = _ALIAS.match(alias)
    if match is None:
        raise ValueError(f"AMI alias {alias!r} is not FAMILY@VERSION (e.g. bottlerocket@v1.26.2, al2@latest)")
    families = {"al2": AmiFamily.AL2, "bottlerocket": AmiFamily.BOTTLEROCKET}
    family = families.get(match["family"])
    if family is None:
        raise ValueError(f"AMI alias {alias!r}: the sandbox publishes only {sorted(families)} AMIs")
    version = match["version"]
    if version == "latest":
        return AmiAlias(family, None)
    # Bottlerocket's SSM paths drop the "v" (…/x86_64/1.26.2/image_id); AL2's keep it (…-v20241024).
    return AmiAlias(family, version.removeprefix("v") if family is AmiFamily.BOTTLEROCKET else version)


def node_os_info(family: AmiFamily, kubernetes_version: str, release: str) -> NodeOsInfo:
    """What a node booted from this AMI reports in Node.status.nodeInfo.

    AL2 EKS AMIs of late 2024 ship kernel 5.10 and containerd 1.7; Bottlerocket's aws-k8s-1.31
    variant ships kernel 6.1 and names itself "Bottlerocket OS <version> (aws-k8s-<k8s>)".
    """
    if family is AmiFamily.AL2:
        return NodeOsInfo(
            os_image="Amazon Linux 2",
            kernel_version="5.10.226-214.880.amzn2.x86_64",
            container_runtime_version="containerd://1.7.22",
            kubelet_version=f"v{kubernetes_version}.0-eks-a737599",
        )
    return NodeOsInfo(
        os_image=f"Bottlerocket OS {release} (aws-k8s-{kubernetes_version})",
        kernel_version="6.1.112",
        container_runtime_version="containerd://1.7.22+bottlerocket",
        kubelet_version=f"v{kubernetes_version}.0-eks-bottlerocket",
    )
