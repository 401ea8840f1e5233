"""The reports as plain text (CLI), JSON (machines, Slack file) and CSV (the full tables). Pure."""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.reports.readiness import Readiness
from bot.reports.reasons import Severity
from bot.reports.results import Results
from bot.reports.security import SecurityReport, SideCounts

Report = Readiness | SecurityReport | Results


def as_data(value: Any) -> Any:
    """Dataclasses, enums, mappings and datetimes as JSON-able data, keeping field order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: as_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Readiness):
            data["verdict"] = value.verdict.value
        return data
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [as_data(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_json(report: Report) -> str:
    return json.dumps(as_data(report), indent=2, ensure_ascii=False) + "\n"


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def to_csv(report: Report) -> str:
    """Readiness: one row per reason; security: one row per topic; results: one row per figure."""
    if isinstance(report, Readiness):
        return _csv(
            ["severity", "check", "object", "reason", "fix"],
            [[r.severity.value, r.check, r.object, r.reason, r.fix] for r in report.reasons],
        )
    if isinstance(report, SecurityReport):
        return _csv(
            [
                "topic",
                *("al2", "al2_source", "al2_detail"),
                *("bottlerocket", "bottlerocket_source", "bottlerocket_detail"),
            ],
            [
                [
                    row.topic,
                    row.al2.value,
                    row.al2.source.value,
                    row.al2.detail,
                    row.bottlerocket.value,
                    row.bottlerocket.source.value,
                    row.bottlerocket.detail,
                ]
                for row in report.rows
            ],
        )
    spreads = [
        ("bottlerocket node launch→ready", report.bottlerocket_ready),
        ("al2 node launch→ready", report.al2_ready),
        ("pod evicted→ready", report.reschedule),
        ("pod waited for node, evicted→ready", report.waited_for_node),
    ]
    return _csv(
        ["measure", "count", "p50_seconds", "p90_seconds"],
        [[name, s.count, _num(s.p50), _num(s.p90)] for name, s in spreads],
    )


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


# ---- text ----------------------------------------------------------------------------------------


def _mib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"


def readiness_text(r: Readiness) -> str:
    lines = [
        f"Wave {r.wave_number} ({r.wave_name}) readiness: {r.verdict.value}",
        f"cluster {r.cluster or '-'}; selector {r.selector}; strategy {r.strategy}",
        f"{len(r.nodes)} AL2 node(s), {r.pod_count} pod(s); "
        f"{r.count(Severity.BLOCKER)} blocker(s), {r.count(Severity.WARNING)} warning(s)",
        "",
    ]
    for severity in Severity:
        chosen = [x for x in r.reasons if x.severity is severity]
        if not chosen:
            continue
        lines.append(f"{severity.value.upper()}S ({len(chosen)})")
        lines.extend(f"  - {x.sentence}" for x in chosen)
        lines.append("")
    stateful = [w for w in r.workloads if w.stateful]
    lines.append(
        f"Workloads ({len(r.workloads)}: {len(r.workloads) - len(stateful)} stateless, {len(stateful)} "
        "stateful)"
    )
    for w in r.workloads:
        pdb = (
            f"PDB {', '.join(w.pdbs)} allows {w.disruptions_allowed}"
            if w.pdbs and w.disruptions_allowed is not None
            else "no PDB"
        )
        flags = [
            "stateful" if w.stateful else "stateless",
            pdb,
            *(["do-not-disrupt ×" + str(w.do_not_disrupt)] if w.do_not_disrupt else []),
            *([] if w.compatible else ["INCOMPATIBLE"]),
        ]
        replicas = "" if w.replicas is None else f"/{w.replicas}"
        lines.append(f"  {w.workload}: {w.pods}{replicas} pod(s); {'; '.join(flags)}")
    lines.append("")
    if r.daemonsets:
        lines.append(f"DaemonSets that must also run on Bottlerocket: {', '.join(r.daemonsets)}")
    c = r.capacity
    cpu_limit = "no limit" if c.limit_cpu_millis is None else f"{c.limit_cpu_millis / 1000:g}"
    mem_limit = "no limit" if c.limit_memory_bytes is None else _mib(c.limit_memory_bytes)
    lines.append(
        f"Capacity: NodePool {c.nodepool} ({c.source}): wave requests {c.needed_cpu_millis / 1000:g} CPU, "
        f"{_mib(c.needed_memory_bytes)}; in use {c.used_cpu_millis / 1000:g} CPU, "
        f"{_mib(c.used_memory_bytes)}; "
        f"limits {cpu_limit} CPU, {mem_limit}"
    )
    lines.append("")
    lines.append("Nodes")
    lines.extend(
        f"  {n.name}  {n.owner}  {n.zone}  {n.instance_type}  {n.pods} pod(s)"
        + ("" if n.ready else "  NotReady")
        for n in r.nodes
    )
    return "\n".join(lines) + "\n"


def counts_line(side: str, c: SideCounts) -> str:
    def shown(value: object) -> str:
        return "unknown" if value is None else str(value)

    groups = None if c.ssh_open_groups is None else len(c.ssh_open_groups)
    findings = (
        "unknown" if c.findings is None else ", ".join(f"{k.lower()} {v}" for k, v in c.findings.items())
    )
    return (
        f"{side}: {c.nodes} node(s), {c.instances} instance(s); IMDSv1 {shown(c.imds_v1)}; "
        f"unencrypted volumes {shown(c.unencrypted_volumes)}/{shown(c.volumes)}; port-22 groups "
        f"{shown(groups)}; "
        f"CVEs {findings}"
    )


def security_text(r: SecurityReport) -> str:
    lines = [
        f"Wave {r.wave_number} ({r.wave_name}) security: AL2 vs Bottlerocket",
        counts_line("AL2", r.al2),
        counts_line("Bottlerocket", r.bottlerocket),
        "",
    ]
    for row in r.rows:
        lines.append(row.topic)
        lines.append(f"  AL2:          {row.al2.text}")
        lines.append(f"  Bottlerocket: {row.bottlerocket.text}")
    if r.unknown:
        lines.append("")
        lines.append("Could not read:")
        lines.extend(f"  {what}: {why}" for what, why in r.unknown.items())
    return "\n".join(lines) + "\n"


def results_text(r: Results) -> str:
    lines = [
        f"Wave {r.wave_number} ({r.wave_name}) results",
        f"Bottlerocket node launch → Ready: {r.bottlerocket_ready.text()}",
        f"AL2 baseline launch → Ready:      {r.al2_ready.text()}",
        f"Pod evicted → Ready:              {r.reschedule.text()}",
        f"  of which waited for a new node: {r.waited_for_node.text()}",
        "Beside the case study:",
        *(f"  {c.text()}" for c in r.comparisons),
    ]
    if r.nodes_pending:
        lines.append(f"Nodes not Ready yet: {', '.join(r.nodes_pending)}")
    if r.pods_pending:
        lines.append(f"Pods not Ready again yet: {', '.join(r.pods_pending)}")
    return "\n".join(lines) + "\n"


def to_text(report: Report) -> str:
    if isinstance(report, Readiness):
        return readiness_text(report)
    if isinstance(report, SecurityReport):
        return security_text(report)
    return results_text(report)


def render(report: Report, fmt: str) -> str:
    """`fmt`: text, json or csv."""
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    return to_text(report)
