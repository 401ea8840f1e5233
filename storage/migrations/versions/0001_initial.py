"""The initial schema: migrations, waves, their nodes, approvals, the step journal and the audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written out in full (no imports from storage.models): a migration is frozen in time, the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def _at(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "migrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster", sa.String(200), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migrations")),
        sa.UniqueConstraint("cluster", name=op.f("uq_migrations_cluster")),
    )
    op.create_table(
        "waves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("migration_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("request_snapshot_hash", sa.String(64), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        *[
            _at(f"{state}_at", nullable=True)
            for state in (
                "requested", "approved", "denied", "expired", "executing", "paused", "verifying",
                "baking", "completed", "canary_failed", "failed", "rolling_back", "rolled_back", "aborted",
            )
        ],
        sa.ForeignKeyConstraint(
            ["migration_id"], ["migrations.id"], name=op.f("fk_waves_migration_id_migrations"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waves")),
        sa.UniqueConstraint("migration_id", "index", name=op.f("uq_waves_migration_id_index")),
        sa.UniqueConstraint("migration_id", "name", name=op.f("uq_waves_migration_id_name")),
    )
    op.create_table(
        "wave_nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("node_name", sa.String(253), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=True),
        sa.Column("os_family", sa.String(64), nullable=True),
        sa.Column("owner", sa.String(300), nullable=True),
        sa.Column("zone", sa.String(64), nullable=True),
        sa.Column("step_status", sa.String(64), nullable=False),
        _at("updated_at"),
        sa.ForeignKeyConstraint(["wave_id"], ["waves.id"], name=op.f("fk_wave_nodes_wave_id_waves"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wave_nodes")),
        sa.UniqueConstraint("wave_id", "node_name", name=op.f("uq_wave_nodes_wave_id_node_name")),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("snapshot_hash", sa.String(64), nullable=True),
        _at("created_at"),
        _at("expires_at", nullable=True),
        sa.ForeignKeyConstraint(["wave_id"], ["waves.id"], name=op.f("fk_approvals_wave_id_waves"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
        sa.UniqueConstraint("wave_id", "user_id", name=op.f("uq_approvals_wave_id_user_id")),
    )
    op.create_table(
        "step_journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        _at("started_at"),
        _at("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["waves.id"], name=op.f("fk_step_journal_wave_id_waves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_journal")),
        sa.UniqueConstraint("wave_id", "step_key", name=op.f("uq_step_journal_wave_id_step_key")),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _at("at"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])
    op.create_index(op.f("ix_audit_events_subject"), "audit_events", ["subject"])
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    for table in ("audit_head", "audit_events", "step_journal", "approvals", "wave_nodes", "waves", "migrations"):
        op.drop_table(table)
