"""A wave's reports at a glance: the readiness verdict and the security headline, as a wave request
shows them — or why they could not be computed. Pure.

Kept as plain JSON facts beside the report message in the request's thread (storage's
slack_messages), so a request redrawn later (a click, an expiry) still shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.reports.readiness import Readiness
from bot.reports.reasons import Severity
from bot.reports.security import SecurityReport, SideCounts

_SHOWN_SEVERITIES = ("CRITICAL", "HIGH")


@dataclass(frozen=True)
class ReportGlance:
    """`verdict` None with `problem` set: the reports could not be computed, and `problem` says why."""

    verdict: str | None = None  # bot.reports.readiness.Verdict's value
    blockers: int = 0
    warnings: int = 0
    security: str | None = None  # one sentence: AL2's figures against Bottlerocket's
    problem: str | None = None
    computing: bool = False  # being read now (shown, never kept)

    def facts(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "blockers": self.blockers,
            "warnings": self.warnings,
            "security": self.security,
            "problem": self.problem,
        }

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any]) -> ReportGlance | None:
        """The glance kept in `facts`, or None when they hold none."""
        verdict, problem = facts.get("verdict"), facts.get("problem")
        if not isinstance(verdict, str) and not isinstance(problem, str):
            return None
        security = facts.get("security")
        return cls(
            verdict=verdict if isinstance(verdict, str) else None,
            blockers=int(facts.get("blockers") or 0),
            warnings=int(facts.get("warnings") or 0),
            security=security if isinstance(security, str) else None,
            problem=problem if isinstance(problem, str) else None,
        )


def glance(readiness: Readiness, security: SecurityReport) -> ReportGlance:
    return ReportGlance(
        verdict=readiness.verdict.value,
        blockers=readiness.count(Severity.BLOCKER),
        warnings=readiness.count(Severity.WARNING),
        security=security_headline(security),
    )


def failed(problem: str) -> ReportGlance:
    return ReportGlance(problem=problem)


COMPUTING = ReportGlance(computing=True)


def security_headline(report: SecurityReport) -> str:
    """`AL2 (10 nodes): 3 answer IMDSv1, … · Bottlerocket: no node runs yet …` in one sentence."""
    if report.al2.nodes == 0:
        al2 = "AL2: no AL2 node in this wave"
    else:
        al2 = f"AL2 ({report.al2.nodes} node(s)): {_figures(report.al2)}"
    if report.bottlerocket.nodes == 0:
        return (
            f"{al2} · Bottlerocket: no node runs yet — read-only root, SELinux enforcing, no SSH or shell "
            "on the host by design; its figures come after the wave"
        )
    return f"{al2} · Bottlerocket ({report.bottlerocket.nodes} node(s)): {_figures(report.bottlerocket)}"


def _figures(side: SideCounts) -> str:
    def count(value: int | None, what: str) -> str:
        return f"{what} unknown" if value is None else f"{value} {what}"

    groups = None if side.ssh_open_groups is None else len(side.ssh_open_groups)
    if side.findings is None:
        cves = "CVEs unknown"
    else:
        cves = "CVEs " + ", ".join(f"{s.lower()} {side.findings.get(s, 0)}" for s in _SHOWN_SEVERITIES)
    return ", ".join(
        [
            count(side.imds_v1, "answer IMDSv1"),
            count(side.unencrypted_volumes, "unencrypted volume(s)"),
            count(groups, "group(s) open on port 22"),
            cves,
        ]
    )
