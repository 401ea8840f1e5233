"""A reason a report gives: which object, what is wrong, how to fix it, and how much it matters."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    BLOCKER = "blocker"  # the wave must not start until it is fixed
    WARNING = "warning"  # the wave can go; someone should look first
    INFO = "info"  # worth knowing; changes no verdict


SEVERITY_ORDER = {Severity.BLOCKER: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class Reason:
    severity: Severity
    check: str  # a short stable id: "hostpath-read-only", "pdb-no-headroom", …
    object: str  # "Deployment shop/image-resizer", "PodDisruptionBudget shop/cart", …
    reason: str
    fix: str

    @property
    def sentence(self) -> str:
        return f"{self.object}: {self.reason} — {self.fix}"


def ordered(reasons: list[Reason]) -> tuple[Reason, ...]:
    return tuple(sorted(reasons, key=lambda r: (SEVERITY_ORDER[r.severity], r.check, r.object)))
