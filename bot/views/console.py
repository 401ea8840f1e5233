"""The CLI's console output, rendered with rich. Pure functions of views: no I/O but the console."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from bot.engine.events import Event, StepFailed, WaveFinished, WavePaused, WaveProgress
from bot.plan.summary import PlanSummary
from storage.repositories import MigrationView, WaveView


def _when(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else "—"


def render_plan_summary(console: Console, summary: PlanSummary) -> None:
    clusters = ", ".join(f"{c.name} ({c.region}, context {c.kube_context})" for c in summary.clusters)
    console.print(f"clusters: {clusters}", markup=False)
    roles = ", ".join(f"{r.name}: {r.users} users, {r.usergroups} usergroups" for r in summary.roles)
    console.print(f"roles: {roles}", markup=False)
    console.print(f"approvals: {summary.approvals}", markup=False)
    for window in summary.change_windows:
        console.print(f"change window: {window}", markup=False)
    table = Table(title="waves", title_justify="left")
    for column in ("#", "wave", "cluster", "strategy", "nodes selected by", "parallel", "bake"):
        table.add_column(column, overflow="fold")
    for wave in summary.waves:
        table.add_row(
            str(wave.index),
            wave.name,
            wave.cluster,
            wave.strategy,
            wave.selector,
            str(wave.max_parallel_nodes),
            wave.bake,
        )
    console.print(table)


def render_waves(console: Console, migration: MigrationView, waves: Sequence[WaveView]) -> None:
    table = Table(
        title=f"{migration.cluster}: migration {migration.status.value}, plan {migration.plan_hash[:12]}",
        title_justify="left",
    )
    for column in ("#", "wave", "state", "version", "requested by", "since"):
        table.add_column(column, no_wrap=column == "since", overflow="fold")
    for wave in waves:
        table.add_row(
            str(wave.index),
            wave.name,
            wave.state.value,
            str(wave.version),
            wave.requested_by or "—",
            _when(wave.entered_at(wave.state) or wave.updated_at),
        )
    console.print(table)


def render_status(
    console: Console, migrations: Sequence[MigrationView], waves_of: Callable[[str], Sequence[WaveView]]
) -> None:
    if not migrations:
        console.print(
            "No migration yet: the database holds no plan. "
            "`migratebot demo` or `migratebot serve --plan FILE` "
            "registers one.",
            markup=False,
        )
        return
    for migration in migrations:
        render_waves(console, migration, waves_of(migration.cluster))


def engine_event_line(event: Event) -> str:
    """One line per engine event, for the CLI and the demo's live output."""
    w = event.wave.label
    if isinstance(event, WaveProgress):
        return (
            f"{w}: {event.phase} — nodes cordoned {event.nodes_cordoned}/{event.nodes_total}, "
            f"drained {event.nodes_drained}/{event.nodes_total}; pods evicted {event.pods_evicted}/"
            f"{event.pods_total}, Ready again {event.pods_ready}; new Bottlerocket nodes Ready "
            f"{event.new_nodes_ready}; AL2 nodes left {event.al2_nodes_left}"
        )
    if isinstance(event, StepFailed):
        again = "will retry" if event.will_retry else "gave up"
        return (
            f"{w}: step {event.step} {event.target} failed (attempt {event.attempt}, {again}): {event.error}"
        )
    if isinstance(event, WavePaused):
        return f"{w}: paused — {event.reason}"
    if isinstance(event, WaveFinished):
        return f"{w}: {event.outcome} — {event.summary}"
    return f"{w}: ALERT {event.kind}: {event.summary}"


def print_engine_event(console: Console, event: Event) -> None:
    console.print(engine_event_line(event), markup=False)
