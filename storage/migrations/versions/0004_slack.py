"""Slack: deliveries already acted on, the messages the bot owns per request cycle, and approvals keyed
by request cycle.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Written out in full (no imports from storage.models): a migration is frozen in time, the models move on.
Approvals recorded before this revision keep a NULL cycle: they belong to requests decided already,
and NULLs never collide in a unique constraint, so a wave requested again starts clean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = False) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "slack_deliveries",
        sa.Column("key", sa.String(200), nullable=False),
        _at("claimed_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_deliveries")),
    )
    op.create_index(op.f("ix_slack_deliveries_claimed_at"), "slack_deliveries", ["claimed_at"])
    op.create_table(
        "slack_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("ts", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("rev", sa.Integer(), nullable=False),
        sa.Column("delivered_rev", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["waves.id"], name=op.f("fk_slack_messages_wave_id_waves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_messages")),
        sa.UniqueConstraint("wave_id", "cycle", "kind", name=op.f("uq_slack_messages_wave_id_cycle_kind")),
    )
    op.create_index(op.f("ix_slack_messages_updated_at"), "slack_messages", ["updated_at"])
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("cycle", sa.Integer(), nullable=True))
        batch.drop_constraint(op.f("uq_approvals_wave_id_user_id"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_approvals_wave_id_cycle_user_id"), ["wave_id", "cycle", "user_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_constraint(op.f("uq_approvals_wave_id_cycle_user_id"), type_="unique")
        batch.create_unique_constraint(op.f("uq_approvals_wave_id_user_id"), ["wave_id", "user_id"])
        batch.drop_column("cycle")
    op.drop_index(op.f("ix_slack_messages_updated_at"), table_name="slack_messages")
    op.drop_table("slack_messages")
    op.drop_index(op.f("ix_slack_deliveries_claimed_at"), table_name="slack_deliveries")
    op.drop_table("slack_deliveries")
