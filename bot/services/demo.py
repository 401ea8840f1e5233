"""`migratebot demo`: the most complete end-to-end path that exists, on the embedded defaults.

Today that is: validate the plan, create or upgrade the embedded database, register the plan's waves
and show them with the audit chain's state. The sandbox, Slack, the engine and the canaries extend
this as they land.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bot.domain.policy import Actor
from bot.plan import load_plan
from bot.services.context import open_storage
from bot.services.plans import register_plan
from bot.settings import Settings
from bot.views.console import render_plan_summary, render_waves
from storage.db import redacted_url
from storage.schema import upgrade


def run_demo(settings: Settings, plan_file: Path, console: Console) -> None:
    plan = load_plan(plan_file)
    console.rule(f"plan {plan_file}")
    summary = plan.summary()
    render_plan_summary(console, summary)
    console.print(f"plan hash: {summary.plan_hash}", markup=False)

    url = settings.resolved_database_url
    upgrade(url)
    console.rule(f"database {redacted_url(url)}")
    with open_storage(settings) as storage:
        migrations = register_plan(plan, storage.migrations, actor=Actor.system().id)
        for migration in migrations:
            render_waves(console, migration, storage.migrations.waves(migration.cluster))
        verification = storage.audit.verify()
    chain = "chain intact" if verification.ok else f"CHAIN BROKEN at event {verification.first_broken_seq}"
    console.print(f"audit log: {verification.count} events, {chain}", markup=False)
    waves = len(summary.waves)
    console.print(
        f"demo: {waves} waves planned on {len(migrations)} cluster(s); 0 waves completed. "
        "The sandbox cluster, Slack approvals, drains and canaries join this demo as they land.",
        markup=False,
    )
