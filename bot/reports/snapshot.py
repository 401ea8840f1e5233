"""What an approval of a wave is bound to besides the plan: the wave's readiness as its request showed
it. Pure.

A snapshot keeps what a team lead judges a wave by: the verdict, each blocker and warning (which
check, on which object) and the wave's nodes. It leaves out what moves by the minute without changing
that judgement — pod counts, the exact disruptions a PDB allows while it allows some, INFO notes — so
an approval is refused when the wave's readiness changed, not whenever a pod restarted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.canonical import canonical_hash
from bot.reports.readiness import Readiness
from bot.reports.reasons import Severity

_JUDGED = (Severity.BLOCKER, Severity.WARNING)
_SHOWN = 3  # changed reasons named in a sentence; the rest are counted


@dataclass(frozen=True)
class ReadinessSnapshot:
    verdict: str
    reasons: tuple[str, ...]  # "blocker pdb-no-headroom PodDisruptionBudget shop/cart", sorted
    nodes: tuple[str, ...]  # the wave's AL2 node names, sorted

    @property
    def digest(self) -> str:
        return canonical_hash({"verdict": self.verdict, "reasons": self.reasons, "nodes": self.nodes})

    def facts(self) -> dict[str, Any]:
        """What the audit keeps of it: enough to say later what changed (node names are counted only,
        a wave may have hundreds)."""
        return {"verdict": self.verdict, "reasons": list(self.reasons), "nodes": len(self.nodes)}

    def changes_since(self, before: Mapping[str, Any]) -> str:
        """What differs from an earlier snapshot's facts, as a clause: `verdict READY → BLOCKED; new:
        blocker pdb-no-headroom PodDisruptionBudget shop/cart`."""
        parts: list[str] = []
        verdict = before.get("verdict")
        if isinstance(verdict, str) and verdict != self.verdict:
            parts.append(f"verdict {verdict} → {self.verdict}")
        earlier = before.get("reasons")
        if isinstance(earlier, list):
            was = {str(r) for r in earlier}
            parts += _listed("new", [r for r in self.reasons if r not in was])
            parts += _listed("gone", sorted(was - set(self.reasons)))
        count = before.get("nodes")
        if isinstance(count, int) and count != len(self.nodes):
            parts.append(f"nodes {count} → {len(self.nodes)}")
        return "; ".join(parts) or "the wave's nodes changed"


def _listed(what: str, reasons: list[str]) -> list[str]:
    if not reasons:
        return []
    shown = ", ".join(reasons[:_SHOWN])
    more = len(reasons) - _SHOWN
    return [f"{what}: {shown}" + (f" and {more} more" if more > 0 else "")]


def snapshot(report: Readiness) -> ReadinessSnapshot:
    judged = [r for r in report.reasons if r.severity in _JUDGED]
    return ReadinessSnapshot(
        verdict=report.verdict.value,
        reasons=tuple(sorted(f"{r.severity.value} {r.check} {r.object}" for r in judged)),
        nodes=tuple(sorted(n.name for n in report.nodes)),
    )
