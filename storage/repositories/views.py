"""What repositories hand out: frozen snapshots of rows, safe to keep after the transaction ended."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bot.domain.waves import WaveState
from storage.models import (
    STATE_TIMESTAMP_COLUMNS,
    Approval,
    ApprovalDecision,
    AuditEvent,
    Migration,
    MigrationStatus,
    StepJournal,
    StepStatus,
    Wave,
    WaveNode,
)


@dataclass(frozen=True, slots=True)
class MigrationView:
    id: int
    cluster: str
    plan_hash: str
    status: MigrationStatus
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: Migration) -> MigrationView:
        return cls(row.id, row.cluster, row.plan_hash, row.status, row.created_at, row.updated_at)


@dataclass(frozen=True, slots=True)
class WaveView:
    id: int
    migration_id: int
    cluster: str
    index: int
    name: str
    state: WaveState
    version: int
    requested_by: str | None
    request_snapshot_hash: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    # When the wave (first) entered each state it has been in; `planned` is created_at.
    entered: dict[WaveState, dt.datetime] = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        return f"wave {self.index} ({self.name})"

    @property
    def subject(self) -> str:
        return f"wave:{self.cluster}/{self.name}"

    def entered_at(self, state: WaveState) -> dt.datetime | None:
        if state is WaveState.PLANNED:
            return self.created_at
        return self.entered.get(state)

    @classmethod
    def of(cls, row: Wave, cluster: str) -> WaveView:
        entered = {
            state: at
            for state, column in STATE_TIMESTAMP_COLUMNS.items()
            if (at := getattr(row, column)) is not None
        }
        return cls(
            id=row.id,
            migration_id=row.migration_id,
            cluster=cluster,
            index=row.index,
            name=row.name,
            state=row.state,
            version=row.version,
            requested_by=row.requested_by,
            request_snapshot_hash=row.request_snapshot_hash,
            created_at=row.created_at,
            updated_at=row.updated_at,
            entered=entered,
        )


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as the inventory sees it, to attach to a wave."""

    node_name: str
    instance_id: str | None = None
    os_family: str | None = None
    owner: str | None = None  # "nodegroup/<name>" or "nodepool/<name>"
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class WaveNodeView:
    wave_id: int
    node_name: str
    instance_id: str | None
    os_family: str | None
    owner: str | None
    zone: str | None
    step_status: str
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: WaveNode) -> WaveNodeView:
        return cls(
            row.wave_id, row.node_name, row.instance_id, row.os_family, row.owner, row.zone,
            row.step_status, row.updated_at,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ApprovalView:
    wave_id: int
    user_id: str
    decision: ApprovalDecision
    plan_hash: str
    snapshot_hash: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None

    def is_expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @classmethod
    def of(cls, row: Approval) -> ApprovalView:
        return cls(
            row.wave_id,
            row.user_id,
            row.decision,
            row.plan_hash,
            row.snapshot_hash,
            row.created_at,
            row.expires_at,
        )


@dataclass(frozen=True, slots=True)
class StepView:
    wave_id: int
    key: str
    kind: str
    target: str
    status: StepStatus
    attempt: int
    detail: dict[str, Any] = field(hash=False)
    started_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def done(self) -> bool:
        """The step succeeded before: the engine skips it."""
        return self.status is StepStatus.SUCCEEDED

    @classmethod
    def of(cls, row: StepJournal) -> StepView:
        return cls(
            row.wave_id, row.step_key, row.kind, row.target, row.status, row.attempt, dict(row.detail),
            row.started_at, row.finished_at,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditEventView:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any] = field(hash=False)
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the time as ISO 8601 UTC with Z), the form `migratebot audit export` writes."""
        return {
            "seq": self.seq,
            "at": self.at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def of(cls, row: AuditEvent) -> AuditEventView:
        return cls(row.seq, row.at, row.actor, row.action, row.subject, row.payload, row.prev_hash, row.hash)


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The chain checked end to end: ok, or the first event that breaks it and why."""

    count: int
    ok: bool
    first_broken_seq: int | None = None
    reason: str | None = None
