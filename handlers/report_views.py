"""Block Kit for the wave reports: readiness, security comparison, results. Pure.

Within Slack's limits by construction: at most 50 blocks per message, section text at most 3,000
characters, a field at most 2,000, a header at most 150. Long lists are cut with "… and N more"; the
full table goes to the thread as a file (`report_file`: CSV or JSON content).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.reports.readiness import Readiness, Verdict
from bot.reports.reasons import Reason, Severity
from bot.reports.render import to_csv, to_json
from bot.reports.results import Results
from bot.reports.security import Cell, SecurityReport, Source

JSON = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_LISTED = 15  # reasons shown per severity before "… and N more"


class ReportBlock(enum.StrEnum):
    HEADER = "report.header"
    SUMMARY = "report.summary"
    BLOCKERS = "report.blockers"
    WARNINGS = "report.warnings"
    INFOS = "report.infos"
    WORKLOADS = "report.workloads"
    CAPACITY = "report.capacity"
    COUNTS = "report.counts"
    ROW = "report.row"
    FIGURES = "report.figures"
    FOOTER = "report.footer"


_VERDICT_ICON = {
    Verdict.READY: ":large_green_circle:",
    Verdict.READY_WITH_WARNINGS: ":large_yellow_circle:",
    Verdict.BLOCKED: ":red_circle:",
}
_SEVERITY_BLOCK = {
    Severity.BLOCKER: ReportBlock.BLOCKERS,
    Severity.WARNING: ReportBlock.WARNINGS,
    Severity.INFO: ReportBlock.INFOS,
}
_SOURCE_MARK = {Source.OBSERVED: "_observed_", Source.KNOWN: "_known_", Source.UNKNOWN: "_unknown_"}


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut_list(lines: Sequence[str], limit: int = MAX_SECTION_TEXT, max_items: int = MAX_LISTED) -> str:
    """As many whole lines as fit in `limit` characters (and `max_items`), then "… and N more"."""
    shown: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index
        tail = f"\n… and {rest - 1} more" if rest > 1 else ""
        candidate = "\n".join([*shown, _clip(line, limit - 40)])
        if index >= max_items or len(candidate) + len(tail) > limit:
            return "\n".join(shown) + f"\n… and {rest} more"
        shown.append(_clip(line, limit - 40))
    return "\n".join(shown)


def _blocks(blocks: Sequence[Block]) -> list[JSON]:
    out = [block.to_dict() for block in blocks]
    assert len(out) <= MAX_BLOCKS, f"{len(out)} blocks: Slack takes {MAX_BLOCKS}"
    return out


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(block_id=ReportBlock.HEADER, text=PlainTextObject(text=_clip(text, MAX_HEADER_TEXT)))


def _reason_line(reason: Reason) -> str:
    return f"• *{_escape(reason.object)}*: {_escape(reason.reason)} — _{_escape(reason.fix)}_"


def _footer(sentence: str) -> ContextBlock:
    return ContextBlock(block_id=ReportBlock.FOOTER, elements=[_md(sentence)])


# ---- readiness -----------------------------------------------------------------------------------


IN_THREAD = "The full table is attached in this thread as CSV and JSON."
ON_REQUEST = (
    "The full table is in the wave request's thread (CSV and JSON), and `migratebot report` prints it."
)


def readiness_blocks(report: Readiness, *, footer: str | None = None) -> list[JSON]:
    verdict = report.verdict
    stateful = sum(1 for w in report.workloads if w.stateful)
    blocks: list[Block] = [
        _header(f"Wave {report.wave_number} ({report.wave_name}) readiness: {verdict.value}"),
        SectionBlock(
            block_id=ReportBlock.SUMMARY,
            text=_md(
                _clip(
                    f"{_VERDICT_ICON[verdict]} *{verdict.value}* — {len(report.nodes)} AL2 node(s), "
                    f"{report.pod_count} pod(s) in {len(report.workloads)} workload(s) "
                    f"({len(report.workloads) - stateful} stateless, {stateful} stateful)\n"
                    f"{report.count(Severity.BLOCKER)} blocker(s), {report.count(Severity.WARNING)} "
                    "warning(s); "
                    f"selector `{_escape(report.selector)}`, strategy {report.strategy}",
                    MAX_SECTION_TEXT,
                )
            ),
        ),
    ]
    titles = {Severity.BLOCKER: "Blockers", Severity.WARNING: "Warnings", Severity.INFO: "Worth knowing"}
    for severity in Severity:
        chosen = [r for r in report.reasons if r.severity is severity]
        if not chosen:
            continue
        heading = f"*{titles[severity]} ({len(chosen)})*\n"
        body = cut_list([_reason_line(r) for r in chosen], MAX_SECTION_TEXT - len(heading))
        blocks.append(SectionBlock(block_id=_SEVERITY_BLOCK[severity], text=_md(heading + body)))
    c = report.capacity
    limit = "no limit" if c.limit_cpu_millis is None else f"{c.limit_cpu_millis / 1000:g} CPU"
    details = [
        f"*Capacity:* NodePool `{c.nodepool}` ({c.source}) — wave requests {c.needed_cpu_millis / 1000:g} "
        "CPU "
        f"and {c.needed_memory_bytes / 2**30:.1f} GiB; in use {c.used_cpu_millis / 1000:g} CPU; limit "
        f"{limit}",
    ]
    if report.daemonsets:
        details.append(
            "*DaemonSets that must also run on Bottlerocket:* "
            + cut_list([", ".join(report.daemonsets)], MAX_SECTION_TEXT - 200, 1)
        )
    blocks.append(
        SectionBlock(block_id=ReportBlock.CAPACITY, text=_md(_clip("\n".join(details), MAX_SECTION_TEXT)))
    )
    blocks.append(_footer(footer or "The full list of reasons is attached in this thread as CSV and JSON."))
    return _blocks(blocks)


# ---- security --------------------------------------------------------------------------------------


def _cell(side: str, cell: Cell) -> MarkdownTextObject:
    detail = f" ({_escape(cell.detail)})" if cell.detail else ""
    return _md(_clip(f"*{side}:* {_escape(cell.value)} {_SOURCE_MARK[cell.source]}{detail}", MAX_FIELD_TEXT))


def security_blocks(report: SecurityReport, *, footer: str | None = None) -> list[JSON]:
    def counts(side: str, figures: Any) -> str:
        def shown(value: object) -> str:
            return "unknown" if value is None else str(value)

        if figures.nodes == 0:
            if side == "AL2":
                return "*AL2* — no AL2 node in this wave"
            return f"*{side}* — no node runs yet: its figures come after the wave"
        groups = None if figures.ssh_open_groups is None else len(figures.ssh_open_groups)
        cves = (
            "unknown"
            if figures.findings is None
            else ", ".join(f"{k.lower()} {v}" for k, v in figures.findings.items())
        )
        return (
            f"*{side}* — {figures.nodes} node(s): IMDSv1 {shown(figures.imds_v1)}, unencrypted volumes "
            f"{shown(figures.unencrypted_volumes)}, port-22 groups {shown(groups)}, CVEs {cves}"
        )

    blocks: list[Block] = [
        _header(f"Wave {report.wave_number} ({report.wave_name}) security: AL2 vs Bottlerocket"),
        SectionBlock(
            block_id=ReportBlock.COUNTS,
            text=_md(
                _clip(
                    counts("AL2", report.al2) + "\n" + counts("Bottlerocket", report.bottlerocket),
                    MAX_SECTION_TEXT,
                )
            ),
        ),
        DividerBlock(),
    ]
    room = MAX_BLOCKS - len(blocks) - 2
    for index, row in enumerate(report.rows[:room]):
        blocks.append(
            SectionBlock(
                block_id=f"{ReportBlock.ROW}.{index}",
                text=_md(f"*{_escape(row.topic)}*"),
                fields=[_cell("AL2", row.al2), _cell("Bottlerocket", row.bottlerocket)],
            )
        )
    if len(report.rows) > room:
        blocks.append(
            ContextBlock(elements=[_md(f"… and {len(report.rows) - room} more rows in the attached table")])
        )
    blocks.append(_footer(footer or IN_THREAD))
    return _blocks(blocks)


# ---- results -----------------------------------------------------------------------------------------


def results_blocks(results: Results) -> list[JSON]:
    figures = [
        f"*Bottlerocket node launch → Ready:* {results.bottlerocket_ready.text()}",
        f"*AL2 baseline launch → Ready:* {results.al2_ready.text()}",
        f"*Pod evicted → Ready:* {results.reschedule.text()}",
        f"*Pods that waited for a new node:* {results.waited_for_node.text()}",
    ]
    blocks: list[Block] = [
        _header(f"Wave {results.wave_number} ({results.wave_name}) results"),
        SectionBlock(block_id=ReportBlock.FIGURES, text=_md("\n".join(figures))),
        SectionBlock(
            block_id=ReportBlock.SUMMARY,
            text=_md(
                _clip(
                    "*Beside the case study*\n"
                    + "\n".join(f"• {_escape(c.text())}" for c in results.comparisons),
                    MAX_SECTION_TEXT,
                )
            ),
        ),
    ]
    pending = [f"node {n}" for n in results.nodes_pending] + [f"pod {p}" for p in results.pods_pending]
    if pending:
        heading = f"*Still pending ({len(pending)})*\n"
        blocks.append(
            SectionBlock(
                block_id=ReportBlock.WARNINGS,
                text=_md(heading + cut_list(pending, MAX_SECTION_TEXT - len(heading))),
            )
        )
    blocks.append(_footer("The figures (CSV, JSON) and the chart (PNG) are attached in this thread."))
    return _blocks(blocks)


def report_file(report: Readiness | SecurityReport | Results, fmt: str = "csv") -> tuple[str, str]:
    """(file name, content) of the full table for the thread: `fmt` csv or json."""
    if isinstance(report, Readiness):
        stem = f"wave-{report.wave_number}-readiness"
    elif isinstance(report, SecurityReport):
        stem = f"wave-{report.wave_number}-security"
    else:
        stem = f"wave-{report.wave_number}-results"
    content = to_json(report) if fmt == "json" else to_csv(report)
    return f"{stem}.{fmt}", content
