"""Registering a plan: each cluster's migration and its waves exist in the database as the plan says."""

from __future__ import annotations

from bot.plan import Plan, plan_hash
from storage.repositories import MigrationRepository, MigrationView


def register_plan(plan: Plan, migrations: MigrationRepository, *, actor: str) -> list[MigrationView]:
    """Idempotent: registering the same plan again writes nothing (and no audit event)."""
    digest = plan_hash(plan)
    return [
        migrations.register_plan(
            cluster.name,
            digest,
            [(number, wave.name) for number, wave in enumerate(plan.waves_for(cluster.name), start=1)],
            actor,
        )
        for cluster in plan.clusters
    ]
