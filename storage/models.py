"""The tables, as typed SQLAlchemy 2 models. Datetimes are timezone-aware UTC going in and coming out."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Unicode,
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
    # One decision per person per request cycle: a wave requested again after a deny or an expiry
    # starts a new cycle (migration 0004; `cycle` is the wave's version once requested, NULL before).
    __table_args__ = (UniqueConstraint("wave_id", "cycle", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200))
    decision: Mapped[ApprovalDecision] = mapped_column(_enum(ApprovalDecision, "approval_decision"))
    plan_hash: Mapped[str] = mapped_column(String(64))
    snapshot_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    cycle: Mapped[int | None]


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


# ---- the canary (migration 0003) ----------------------------------------------------------------


class CanaryBake(Base):
    """A wave's bake: checks every `interval_seconds` until `until`. `analysis` counts the bakes of the
    wave (a resume after a failed canary starts a new analysis: Argo Rollouts' counters start again)."""

    __tablename__ = "canary_bakes"

    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(200))
    analysis: Mapped[int] = mapped_column(default=1)
    interval_seconds: Mapped[float]
    duration_seconds: Mapped[float]
    started_at: Mapped[dt.datetime]
    until: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    # "passed" | "failed" | "inconclusive" | "stopped"
    outcome: Mapped[str | None] = mapped_column(String(32))
    # Each pod's restart count when the analysis first saw it (pod uid → restarts).
    baseline: Mapped[dict[str, Any]]


class CanaryRun(Base):
    """One run of the checks. (wave, analysis, tick) is unique: a tick claimed once is never run again,
    whichever process or restart tries. `results` is what each check saw."""

    __tablename__ = "canary_runs"
    __table_args__ = (UniqueConstraint("wave_id", "analysis", "tick"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    analysis: Mapped[int]
    tick: Mapped[str] = mapped_column(String(64))  # "t<n>" for the n-th scheduled tick, "manual:<time>"
    runner: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    verdict: Mapped[str | None] = mapped_column(String(32))
    results: Mapped[dict[str, Any]]


class CanaryEpisode(Base):
    """One alert episode of a wave: opened by a failed canary or an engine alert, alerted once, reminded
    until acknowledged, resolved when the checks pass again or someone resumes or rolls back."""

    __tablename__ = "canary_episodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))  # "canary" or the EngineAlert kind
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    opened_at: Mapped[dt.datetime]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[dt.datetime | None]
    reminders: Mapped[int] = mapped_column(default=0)
    notified_at: Mapped[dt.datetime | None]
    channel: Mapped[str | None] = mapped_column(String(64))
    message_ts: Mapped[str | None] = mapped_column(String(64))
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)


class CanaryJob(Base):
    """APScheduler 3.x SQLAlchemyJobStore's table (its layout, created by Alembic): pickled jobs."""

    __tablename__ = "canary_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


# ---- Slack (migration 0004) ---------------------------------------------------------------------


class SlackDelivery(Base):
    """A Slack delivery (event_id or trigger_id) already acted on: a redelivery finds it by key."""

    __tablename__ = "slack_deliveries"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    claimed_at: Mapped[dt.datetime] = mapped_column(index=True)


class SlackMessage(Base):
    """A message the bot owns for a wave's request cycle: the request itself, the progress message in
    its thread, the results, the channel summary. `rev` counts what the message should say (text,
    blocks); `delivered_rev` what Slack has shown: anything behind is posted or updated again later."""

    __tablename__ = "slack_messages"
    __table_args__ = (UniqueConstraint("wave_id", "cycle", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("waves.id", ondelete="CASCADE"))
    cycle: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))  # "request" | "progress" | "result" | "summary" | …
    channel: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[dict[str, Any]]  # {"blocks": [...]}
    facts: Mapped[dict[str, Any]]  # the figures behind the text (App Home reads progress from here)
    rev: Mapped[int] = mapped_column(default=1)
    delivered_rev: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(index=True)
