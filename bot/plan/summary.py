"""A plan in a few lines, for the CLI and Slack: what will move, where, when, and who decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.plan.durations import format_duration
from bot.plan.hashing import plan_hash

if TYPE_CHECKING:
    from bot.plan.models import Plan


@dataclass(frozen=True)
class ClusterSummary:
    name: str
    region: str
    kube_context: str


@dataclass(frozen=True)
class WaveSummary:
    index: int
    """1-based, the number people use (`report readiness --wave 2`)."""
    name: str
    cluster: str
    strategy: str
    selector: str
    max_parallel_nodes: int
    bake: str


@dataclass(frozen=True)
class RoleSummary:
    name: str
    users: int
    usergroups: int


@dataclass(frozen=True)
class PlanSummary:
    clusters: tuple[ClusterSummary, ...]
    waves: tuple[WaveSummary, ...]
    roles: tuple[RoleSummary, ...]
    approvals: str
    """e.g. "1 team lead approval, request expires after 30m"."""
    change_windows: tuple[str, ...]
    """e.g. '"0 9 * * 1-4" (Europe/Berlin) for 6h, finishes a running wave'."""
    plan_hash: str


def summarize(plan: Plan) -> PlanSummary:
    only_cluster = plan.clusters[0].name
    roles = plan.roles
    required = plan.approvals.required
    return PlanSummary(
        clusters=tuple(ClusterSummary(c.name, c.region, c.kube_context) for c in plan.clusters),
        waves=tuple(
            WaveSummary(
                index=number,
                name=wave.name,
                cluster=wave.cluster or only_cluster,
                strategy=wave.strategy.value,
                selector=wave.selector.text(),
                max_parallel_nodes=wave.max_parallel_nodes,
                bake=format_duration(wave.bake),
            )
            for number, wave in enumerate(plan.waves, start=1)
        ),
        roles=tuple(
            RoleSummary(name, len(members.users), len(members.usergroups))
            for name, members in (
                ("sre", roles.sre),
                ("team_leads", roles.team_leads),
                ("oncall", roles.oncall),
            )
        ),
        approvals=(
            f"{required} team lead approval{'s' if required != 1 else ''}, "
            f"request expires after {format_duration(plan.approvals.expires_after)}"
        ),
        change_windows=tuple(
            f'"{w.schedule}" ({w.timezone}) for {format_duration(w.duration)}, '
            + ("finishes a running wave" if w.finish_running_wave else "pauses a running wave at its end")
            for w in plan.change_windows
        ),
        plan_hash=plan_hash(plan),
    )
