"""AL2 vs Bottlerocket, per wave, from the APIs: the AL2 nodes the wave removes against the
Bottlerocket nodes that replace them. Pure over gathered facts.

Every cell says where its value comes from: `observed` (read from EC2, Inspector2, IAM, the nodes or
the EC2NodeClass just now), `known` (a documented property of the OS, not something this cluster
could show), or `unknown` with the reason it could not be read — never a silent default.
"""

from __future__ import annotations

import statistics
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.engine.inventory import Inventory
from bot.engine.pods import NodeInfo, OsFamily
from bot.engine.selection import wave_nodes
from bot.plan.models import Strategy, Target, Wave
from bot.reports.facts import AwsFacts, ClusterFacts, InstanceFacts

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED")


class Source(StrEnum):
    OBSERVED = "observed"
    KNOWN = "known"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Cell:
    value: str
    source: Source
    detail: str = ""  # the evidence, or why it is unknown

    @property
    def text(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.value} [{self.source.value}]{tail}"


@dataclass(frozen=True, slots=True)
class Row:
    topic: str
    al2: Cell
    bottlerocket: Cell


@dataclass(frozen=True, slots=True)
class SideCounts:
    """The figures one side's instances show; None where the data could not be read."""

    nodes: int
    instances: int
    imds_v1: int | None  # instances that still answer IMDSv1 (HttpTokens optional)
    volumes: int | None
    unencrypted_volumes: int | None
    ssh_open_groups: tuple[str, ...] | None  # security groups open on 22 to the world
    ssh_keys: int | None  # instances launched with an EC2 key pair
    findings: Mapping[str, int] | None  # ACTIVE Inspector2 findings by severity


@dataclass(frozen=True)
class SecurityReport:
    cluster: str
    wave_number: int
    wave_name: str
    al2_nodes: tuple[str, ...]
    bottlerocket_nodes: tuple[str, ...]
    al2: SideCounts
    bottlerocket: SideCounts
    rows: tuple[Row, ...]
    unknown: Mapping[str, str] = field(default_factory=dict)


# ---- known properties of the two OSes ----------------------------------------------------------

AL2_SUPPORT = (
    "EKS AL2 AMIs ended 2025-11-26; Amazon Linux 2 support ends 2026-06-30; Kubernetes 1.32 is the last "
    "version with EKS AL2 AMIs"
)
BOTTLEROCKET_SUPPORT = "supported: a Bottlerocket variant ships for every EKS Kubernetes version"


def _known(value: str, detail: str = "") -> Cell:
    return Cell(value, Source.KNOWN, detail)


def _unknown(why: str) -> Cell:
    return Cell("unknown", Source.UNKNOWN, why)


# ---- Bottlerocket settings from the EC2NodeClass user data ------------------------------------


def bottlerocket_settings(user_data: str) -> Mapping[str, Any] | None:
    """The TOML user data's `settings` table; None when it is not TOML (a shell script, empty)."""
    if not user_data.strip():
        return {}
    try:
        parsed = tomllib.loads(user_data)
    except tomllib.TOMLDecodeError:
        return None
    settings = parsed.get("settings")
    return settings if isinstance(settings, dict) else {}


def _setting(settings: Mapping[str, Any], *path: str) -> Any:
    node: Any = settings
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


# ---- counting ------------------------------------------------------------------------------------


def _side(nodes: Sequence[NodeInfo], aws: AwsFacts) -> SideCounts:
    instances = [aws.instances[n.instance_id] for n in nodes if n.instance_id in aws.instances]
    read = "instances" not in aws.unknown
    volumes_read = read and "volumes" not in aws.unknown
    groups_read = read and "security groups" not in aws.unknown
    volume_ids = [v for i in instances for v in i.volume_ids]
    volumes = [aws.volumes[v] for v in volume_ids if v in aws.volumes]
    open_groups = sorted(
        {g for i in instances for g in i.security_groups if g in aws.groups and aws.groups[g].ssh_open_to}
    )
    findings: dict[str, int] | None = None
    if aws.findings is not None:
        total: Counter[str] = Counter()
        for i in instances:
            total.update(aws.findings.get(i.instance_id, {}))
        findings = {s: total.get(s, 0) for s in SEVERITIES if s in total or s in SEVERITIES[:4]}
    return SideCounts(
        nodes=len(nodes),
        instances=len(instances),
        imds_v1=sum(1 for i in instances if i.http_tokens == "optional") if read else None,
        volumes=len(volumes) if volumes_read else None,
        unencrypted_volumes=sum(1 for v in volumes if not v.encrypted) if volumes_read else None,
        ssh_open_groups=tuple(open_groups) if groups_read else None,
        ssh_keys=sum(1 for i in instances if i.key_name) if read else None,
        findings=findings,
    )


def _no_nodes(side: str) -> str:
    return (
        f"no {side} node to read"
        if side == "AL2"
        else "no Bottlerocket node runs yet; read again after the wave"
    )


def _observed_or(counts: SideCounts, side: str, why: str | None, value: str, detail: str = "") -> Cell:
    if counts.nodes == 0:
        return _unknown(_no_nodes(side))
    if why is not None:
        return _unknown(why)
    return Cell(value, Source.OBSERVED, detail)


def _imds_cell(counts: SideCounts, instances: Iterable[InstanceFacts], aws: AwsFacts, side: str) -> Cell:
    hops = sorted({i.hop_limit for i in instances if i.hop_limit is not None})
    if counts.imds_v1 is None:
        return _observed_or(counts, side, aws.unknown.get("instances", "instances not described"), "")
    required = counts.instances - counts.imds_v1
    return _observed_or(
        counts,
        side,
        None,
        f"IMDSv2 required on {required} of {counts.instances}; {counts.imds_v1} still answer IMDSv1",
        f"HttpTokens; hop limit {', '.join(str(h) for h in hops) or 'unset'}",
    )


def _findings_text(findings: Mapping[str, int]) -> str:
    return ", ".join(f"{k.lower()} {v}" for k, v in findings.items())


def _age_cell(nodes: Sequence[NodeInfo], now: datetime | None, side: str) -> Cell:
    if not nodes:
        return _unknown(_no_nodes(side))
    if now is None:
        return _unknown("no observation time given to measure node age against")
    ages = [(now - n.created).total_seconds() / 86400 for n in nodes if n.created is not None]
    if not ages:
        return _unknown("the nodes carry no creationTimestamp")
    return Cell(
        f"oldest {max(ages):.1f} d, median {statistics.median(ages):.1f} d",
        Source.OBSERVED,
        "node creationTimestamp; older nodes have drifted further from their image",
    )


def _distinct(values: Iterable[str], limit: int = 3) -> str:
    counts = Counter(v for v in values if v)
    if not counts:
        return ""
    shown = [f"{v} ×{c}" if len(counts) > 1 else v for v, c in counts.most_common(limit)]
    more = len(counts) - limit
    return "; ".join(shown) + (f"; … and {more} more" if more > 0 else "")


def _runtime_cell(nodes: Sequence[NodeInfo], facts: ClusterFacts, side: str) -> Cell:
    if not nodes:
        return _unknown(_no_nodes(side))
    runtimes = [facts.runtimes[n.name] for n in nodes if n.name in facts.runtimes]
    text = " | ".join(
        part
        for part in (
            _distinct(r.os_image for r in runtimes),
            "kernel " + _distinct(r.kernel for r in runtimes),
            _distinct(r.container_runtime for r in runtimes),
        )
        if part.strip() and part.strip() != "kernel"
    )
    return Cell(text or "not reported", Source.OBSERVED, "node status.nodeInfo")


def _iam_cell(instances: Sequence[InstanceFacts], aws: AwsFacts, side: str, nodes: int) -> Cell:
    if nodes == 0:
        return _unknown(_no_nodes(side))
    profiles = sorted({i.instance_profile_arn for i in instances if i.instance_profile_arn})
    if not profiles:
        why = aws.unknown.get("instances")
        return _unknown(why or "the instances carry no instance profile")
    roles = sorted({r for p in profiles for r in aws.profile_roles.get(p, ())})
    missing = [p for p in profiles if p not in aws.profile_roles] + [r for r in roles if r not in aws.roles]
    if missing:
        reasons = [
            aws.unknown.get(f"instance profile {m}") or aws.unknown.get(f"IAM role {m}") or ""
            for m in missing
        ]
        return _unknown(f"{', '.join(missing)}: {'; '.join(r for r in reasons if r) or 'not read'}")
    policies = [p for r in roles for p in aws.roles[r]]
    admin = [p.name for p in policies if p.admin]
    wildcards = sorted({a for p in policies for a in p.wildcard_actions})
    if admin:
        value = f"admin: {', '.join(admin)} allow * on *"
    elif wildcards:
        shown = ", ".join(wildcards[:5]) + (f" and {len(wildcards) - 5} more" if len(wildcards) > 5 else "")
        value = f"{len(wildcards)} wildcard action(s): {shown}"
    else:
        value = "no wildcard actions"
    return Cell(value, Source.OBSERVED, f"role(s) {', '.join(roles)}: {len(policies)} polic(ies)")


def bottlerocket_nodes(wave: Wave, target: Target, inventory: Inventory) -> list[NodeInfo]:
    """The Bottlerocket nodes that replace the wave's: those of the target NodePool (and, for a drift
    wave, of the drifted pools); when none runs there yet, every Bottlerocket node of the cluster."""
    pools = {target.nodepool.name, *(wave.selector.nodepools if wave.strategy is Strategy.DRIFT else ())}
    every = inventory.nodes_of(OsFamily.BOTTLEROCKET)
    chosen = [n for n in every if n.labels.get("karpenter.sh/nodepool") in pools] or every
    return sorted(chosen, key=lambda n: n.name)


def security(
    wave: Wave,
    wave_number: int,
    target: Target,
    facts: ClusterFacts,
    aws: AwsFacts,
    *,
    cluster: str = "",
) -> SecurityReport:
    inv = facts.inventory
    al2_nodes = wave_nodes(wave, inv.nodes.values(), inv.pods_by_node)
    br_nodes = bottlerocket_nodes(wave, target, inv)
    al2 = _side(al2_nodes, aws)
    br = _side(br_nodes, aws)
    al2_instances = [aws.instances[n.instance_id] for n in al2_nodes if n.instance_id in aws.instances]
    br_instances = [aws.instances[n.instance_id] for n in br_nodes if n.instance_id in aws.instances]

    nodeclass = facts.nodeclasses.get(target.ec2nodeclass.name)
    settings = bottlerocket_settings(nodeclass.user_data) if nodeclass else None
    where = f"EC2NodeClass {target.ec2nodeclass.name} userData"

    def br_setting(path: tuple[str, ...], default: str, describe: Any) -> Cell:
        if nodeclass is None:
            return _known(
                f"{default} (Bottlerocket default)",
                f"EC2NodeClass {target.ec2nodeclass.name} does not exist yet",
            )
        if settings is None:
            return _unknown(f"{where} is not TOML, so Bottlerocket would ignore it")
        value = _setting(settings, *path)
        if value is None:
            return _known(
                f"{default} (Bottlerocket default)", f"{where} does not set settings.{'.'.join(path)}"
            )
        return Cell(describe(value), Source.OBSERVED, f"{where}: settings.{'.'.join(path)} = {value!r}")

    def enabled(value: Any) -> str:
        return "enabled" if value is True or str(value).lower() == "true" else "disabled"

    admin = br_setting(("host-containers", "admin", "enabled"), "disabled", enabled)
    control = br_setting(("host-containers", "control", "enabled"), "enabled", enabled)
    containers = Cell(
        f"admin container {admin.value}; control container {control.value}",
        Source.OBSERVED if Source.OBSERVED in (admin.source, control.source) else admin.source,
        "; ".join(dict.fromkeys(d for d in (admin.detail, control.detail) if d)),
    )

    def ssh_cell(counts: SideCounts, side: str) -> Cell:
        if counts.ssh_open_groups is None or counts.ssh_keys is None:
            why = aws.unknown.get("security groups") or aws.unknown.get("instances") or "not read"
            return _observed_or(counts, side, why, "")
        groups = counts.ssh_open_groups
        return _observed_or(
            counts,
            side,
            None,
            f"{counts.ssh_keys} of {counts.instances} instances carry an SSH key pair; "
            f"{len(groups)} security group(s) open port 22 to the world",
            ", ".join(groups),
        )

    def ebs_cell(counts: SideCounts, side: str) -> Cell:
        if counts.volumes is None or counts.unencrypted_volumes is None:
            return _observed_or(counts, side, aws.unknown.get("volumes") or "volumes not described", "")
        return _observed_or(
            counts,
            side,
            None,
            f"{counts.unencrypted_volumes} of {counts.volumes} volumes unencrypted",
            "DescribeVolumes Encrypted",
        )

    def cve_cell(counts: SideCounts, side: str) -> Cell:
        if counts.findings is None:
            return _observed_or(counts, side, aws.unknown.get("inspector2") or "Inspector2 not read", "")
        return _observed_or(
            counts,
            side,
            None,
            _findings_text(counts.findings),
            f"Inspector2 ACTIVE findings on {counts.instances} instance(s)",
        )

    def images_cell(nodes: Sequence[InstanceFacts], counts: SideCounts, side: str) -> Cell:
        names = [aws.images.get(i.image_id) or i.image_id for i in nodes]
        why = aws.unknown.get("images")
        return _observed_or(counts, side, None, _distinct(names) or "none", why or "DescribeImages")

    br_imds: Cell
    if br.nodes == 0 and nodeclass is not None:
        tokens = nodeclass.http_tokens or "required"
        hop = nodeclass.hop_limit or 1
        source = Source.OBSERVED if nodeclass.http_tokens else Source.KNOWN
        br_imds = Cell(
            f"IMDSv2 {tokens} for new nodes, hop limit {hop}",
            source,
            f"{where.replace(' userData', '')} metadataOptions"
            + ("" if nodeclass.http_tokens else " (unset: Karpenter's default)"),
        )
    else:
        br_imds = _imds_cell(br, br_instances, aws, "Bottlerocket")

    rows = (
        Row(
            "Host attack surface (shell, SSH, package manager)",
            _known("bash, sshd and yum/rpm on the host"),
            _known("no shell, no SSH daemon, no package manager on the host; opt-in admin container"),
        ),
        Row(
            "Admin / control host containers",
            _known("not applicable: SSH and the SSM agent run on the host itself"),
            containers,
        ),
        Row(
            "SSH exposure (key pairs, port 22 open to the world)",
            ssh_cell(al2, "AL2"),
            ssh_cell(br, "Bottlerocket"),
        ),
        Row(
            "Root filesystem",
            _known("read-write; packages and people change it in place"),
            _known("read-only, verified by dm-verity; /etc is a tmpfs rebuilt from settings at boot"),
        ),
        Row(
            "SELinux",
            _known("not enforcing by default"),
            _known("enforcing, always (no setting turns it off)"),
        ),
        Row(
            "Kernel lockdown",
            _known("none by default"),
            br_setting(("kernel", "lockdown"), "integrity", lambda v: str(v)),
        ),
        Row("IMDSv2", _imds_cell(al2, al2_instances, aws, "AL2"), br_imds),
        Row("EBS encryption", ebs_cell(al2, "AL2"), ebs_cell(br, "Bottlerocket")),
        Row("CVEs by severity", cve_cell(al2, "AL2"), cve_cell(br, "Bottlerocket")),
        Row(
            "IAM least privilege (node role)",
            _iam_cell(al2_instances, aws, "AL2", al2.nodes),
            _iam_cell(br_instances, aws, "Bottlerocket", br.nodes),
        ),
        Row(
            "Update model",
            _known("in place: yum update node by node, so nodes drift apart"),
            _known("atomic image update to the inactive partition, rollback by reboot"),
        ),
        Row(
            "Configuration drift (node age)",
            _age_cell(al2_nodes, facts.observed_at, "AL2"),
            _age_cell(br_nodes, facts.observed_at, "Bottlerocket"),
        ),
        Row("AMI", images_cell(al2_instances, al2, "AL2"), images_cell(br_instances, br, "Bottlerocket")),
        Row(
            "Node OS, kernel, runtime",
            _runtime_cell(al2_nodes, facts, "AL2"),
            _runtime_cell(br_nodes, facts, "Bottlerocket"),
        ),
        Row("OS support status", _known(AL2_SUPPORT), _known(BOTTLEROCKET_SUPPORT)),
    )
    return SecurityReport(
        cluster=cluster,
        wave_number=wave_number,
        wave_name=wave.name,
        al2_nodes=tuple(n.name for n in al2_nodes),
        bottlerocket_nodes=tuple(n.name for n in br_nodes),
        al2=al2,
        bottlerocket=br,
        rows=rows,
        unknown=dict(aws.unknown),
    )
