"""The engine's tables: the executor lock (one executor per migration) and the wave's measured timings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Written out in full (no imports from storage.models): a migration is frozen in time, the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "executor_locks",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        _at("acquired_at"),
        _at("renewed_at"),
        _at("expires_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_executor_locks")),
    )
    op.create_table(
        "node_timings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("node_name", sa.String(253), nullable=False),
        sa.Column("os_family", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(64), nullable=True),
        _at("launched_at", nullable=True),
        _at("registered_at", nullable=True),
        _at("ready_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["waves.id"], name=op.f("fk_node_timings_wave_id_waves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_timings")),
        sa.UniqueConstraint("wave_id", "node_name", name=op.f("uq_node_timings_wave_id_node_name")),
    )
    op.create_table(
        "pod_timings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("workload", sa.String(600), nullable=False),
        _at("evicted_at", nullable=True),
        sa.Column("replacement", sa.String(253), nullable=True),
        _at("scheduled_at", nullable=True),
        _at("ready_at", nullable=True),
        sa.Column("node", sa.String(253), nullable=True),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["waves.id"], name=op.f("fk_pod_timings_wave_id_waves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pod_timings")),
        sa.UniqueConstraint(
            "wave_id", "namespace", "name", name=op.f("uq_pod_timings_wave_id_namespace_name")
        ),
    )


def downgrade() -> None:
    op.drop_table("pod_timings")
    op.drop_table("node_timings")
    op.drop_table("executor_locks")
