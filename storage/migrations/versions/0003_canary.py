"""The canary's tables: each wave's bake, every check run with what it saw, alert episodes, and the
APScheduler job store.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Written out in full (no imports from storage.models): a migration is frozen in time, the models move on.
`canary_jobs` has APScheduler 3.x SQLAlchemyJobStore's own layout; creating it here keeps Alembic the
owner of every table (the job store's create_all then finds it and creates nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _wave_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["wave_id"], ["waves.id"], name=op.f(f"fk_{table}_wave_id_waves"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "canary_bakes",
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("cluster", sa.String(200), nullable=False),
        sa.Column("analysis", sa.Integer(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        _at("started_at"),
        _at("until"),
        _at("ended_at", nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("baseline", sa.JSON(), nullable=False),
        _wave_fk("canary_bakes"),
        sa.PrimaryKeyConstraint("wave_id", name=op.f("pk_canary_bakes")),
    )
    op.create_table(
        "canary_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("analysis", sa.Integer(), nullable=False),
        sa.Column("tick", sa.String(64), nullable=False),
        sa.Column("runner", sa.String(200), nullable=False),
        _at("started_at"),
        _at("finished_at", nullable=True),
        sa.Column("verdict", sa.String(32), nullable=True),
        sa.Column("results", sa.JSON(), nullable=False),
        _wave_fk("canary_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_runs")),
        sa.UniqueConstraint(
            "wave_id", "analysis", "tick", name=op.f("uq_canary_runs_wave_id_analysis_tick")
        ),
    )
    op.create_table(
        "canary_episodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        _at("opened_at"),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        _at("acknowledged_at", nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        _at("resolved_at", nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        _at("notified_at", nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("message_ts", sa.String(64), nullable=True),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        _wave_fk("canary_episodes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_episodes")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_canary_episodes_dedup_key")),
    )
    op.create_index(op.f("ix_canary_episodes_wave_id"), "canary_episodes", ["wave_id"])
    op.create_table(
        "canary_jobs",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_jobs")),
    )
    op.create_index(op.f("ix_canary_jobs_next_run_time"), "canary_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index(op.f("ix_canary_jobs_next_run_time"), table_name="canary_jobs")
    op.drop_table("canary_jobs")
    op.drop_index(op.f("ix_canary_episodes_wave_id"), table_name="canary_episodes")
    op.drop_table("canary_episodes")
    op.drop_table("canary_runs")
    op.drop_table("canary_bakes")
