"""The tables, as typed SQLAlchemy 2 models. Datetimes are timezone-aware UTC going in and coming out."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.domain.waves import WaveState


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in and out. SQLite drops tzinfo, so naive values are refused on the way in
    (they would be ambiguous forever) and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the database: pass an aware UTC datetime"
            )
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class MigrationStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


class ApprovalDecision(enum.StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class StepStatus(enum.StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Stored as its value in a plain string column: a new member needs no schema migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Migration(Base):
    """One cluster's migration from AL2 to Bottlerocket, bound to the plan it was registered with."""

    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster: Mapped[str] = mapped_column(String(200), unique=True)
    plan_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[MigrationStatus] = mapped_column(
        _enum(MigrationStatus, "migration_status"), default=MigrationStatus.ACTIVE
    )
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Wave(Base):
    """A group of nodes that moves together. `version` guards every transition (optimistic lock)."""

    __tablename__ = "waves"
    __table_args__ = (
        UniqueConstraint("migration_id", "index"),
        UniqueConstraint("migration_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("migrations.id", ondelete="CASCADE"))
    index: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[WaveState] = mapped_column(_enum(WaveState, "wave_state"), default=WaveState.PLANNED)
    version: Mapped[int] = mapped_column(default=1)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    request_snapshot_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    # When the wave first entered each state (see transition() for the request cycle after a replan).
    requested_at: Mapped[dt.datetime | None]
    approved_at: Mapped[dt.datetime | None]
    denied_at: Mapped[dt.datetime | None]
    expired_at: Mapped[dt.datetime | None]
    executing_at: Mapped[dt.datetime | None]
    paused_at: Mapped[dt.datetime | None]
    verifying_at: Mapped[dt.datetime | None]
    baking_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    canary_failed_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None]
    rolling_back_at: Mapped[dt.datetime | None]
    rolled_back_at: Mapped[dt.datetime | None]
    aborted_at: Mapped[dt.datetime | None]


# Every state but `planned` (that is created_at) has its own column.
STATE_TIMESTAMP_COLUMNS: dict[WaveState, str] = {
    state: f"{state.value}_at" for state in WaveState if state is not WaveState.PLANNED
}


class WaveNode(Base):
    """A node a wave moves, and how far its own steps have got."""

    __tablename__ = "wave_nodes"
    __table_args__ = (UniqueConstraint("wave_id", "node_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    node_name: Mapped[str] = mapped_column(String(253))
    instance_id: Mapped[str | None] = mapped_column(String(64))
    os_family: Mapped[str | None] = mapped_column(String(64))
    # "nodegroup/<name>" for a managed node group, "nodepool/<name>" for Karpenter.
    owner: Mapped[str | None] = mapped_column(String(300))
    zone: Mapped[str | None] = mapped_column(String(64))
    step_status: Mapped[str] = mapped_column(String(64), default="pending")
    updated_at: Mapped[dt.datetime]


class Approval(Base):
    """One person's decision on one wave request, bound to the plan and the snapshot they saw."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("wave_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200))
    decision: Mapped[ApprovalDecision] = mapped_column(_enum(ApprovalDecision, "approval_decision"))
    plan_hash: Mapped[str] = mapped_column(String(64))
    snapshot_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]


class AuditEvent(Base):
    """One link of the append-only chain. Nothing in migratebot updates or deletes these rows."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(500), index=True)
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's single head row (id=1): locking it is what serializes appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))


class StepJournal(Base):
    """The engine's record of each idempotent step: a step that succeeded is never run again."""

    __tablename__ = "step_journal"
    __table_args__ = (UniqueConstraint("wave_id", "step_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    status: Mapped[StepStatus] = mapped_column(_enum(StepStatus, "step_status"))
    attempt: Mapped[int] = mapped_column(default=1)
    detail: Mapped[dict[str, Any]]
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]


class ExecutorLock(Base):
    """Who runs a migration's engine now. A holder renews before `expires_at`; after it, anyone may take
    over (the previous holder died). One row per lock name ("engine:<cluster>")."""

    __tablename__ = "executor_locks"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[dt.datetime]
    renewed_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class NodeTimingRow(Base):
    """A new (or baseline) node's launch → registered → Ready, measured during a wave."""

    __tablename__ = "node_timings"
    __table_args__ = (UniqueConstraint("wave_id", "node_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    node_name: Mapped[str] = mapped_column(String(253))
    os_family: Mapped[str] = mapped_column(String(64))
    instance_type: Mapped[str | None] = mapped_column(String(64))
    launched_at: Mapped[dt.datetime | None]
    registered_at: Mapped[dt.datetime | None]
    ready_at: Mapped[dt.datetime | None]


class PodTimingRow(Base):
    """A displaced pod's evicted → replacement scheduled → Ready, measured during a wave."""

    __tablename__ = "pod_timings"
    __table_args__ = (UniqueConstraint("wave_id", "namespace", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    workload: Mapped[str] = mapped_column(String(600))
    evicted_at: Mapped[dt.datetime | None]
    replacement: Mapped[str | None] = mapped_column(String(253))
    scheduled_at: Mapped[dt.datetime | None]
    ready_at: Mapped[dt.datetime | None]
    node: Mapped[str | None] = mapped_column(String(253))
