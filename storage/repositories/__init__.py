"""Use-case operations over the database: each opens and commits its own transaction; views come out."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database
from storage.models import ApprovalDecision, MigrationStatus, StepStatus, utc_now
from storage.repositories.audit import AuditRepository, Clock
from storage.repositories.canary import BakeView, CanaryRepository, EpisodeView, RunView
from storage.repositories.engine import ExecutorLockRepository, TimingRepository
from storage.repositories.migrations import MigrationRepository
from storage.repositories.slack import MessageKind, SlackMessageView, SlackRepository
from storage.repositories.views import (
    ApprovalView,
    AuditEventView,
    AuditVerification,
    MigrationView,
    NodeRecord,
    StepView,
    WaveNodeView,
    WaveView,
)
from storage.repositories.work import ApprovalRepository, StepJournalRepository, WaveNodeRepository


@dataclass(frozen=True)
class Repositories:
    """Every repository over one Database and one clock (the composition root builds this once)."""

    migrations: MigrationRepository
    approvals: ApprovalRepository
    nodes: WaveNodeRepository
    journal: StepJournalRepository
    audit: AuditRepository
    slack: SlackRepository
    locks: ExecutorLockRepository
    timings: TimingRepository
    canary: CanaryRepository

    @classmethod
    def over(cls, database: Database, clock: Clock = utc_now) -> Repositories:
        return cls(
            migrations=MigrationRepository(database, clock),
            approvals=ApprovalRepository(database, clock),
            nodes=WaveNodeRepository(database, clock),
            journal=StepJournalRepository(database, clock),
            audit=AuditRepository(database, clock),
            slack=SlackRepository(database, clock),
            canary=CanaryRepository(database, clock),
            locks=ExecutorLockRepository(database, clock),
            timings=TimingRepository(database, clock),
        )


__all__ = [
    "ApprovalDecision",
    "ApprovalRepository",
    "ApprovalView",
    "AuditEventView",
    "AuditRepository",
    "AuditVerification",
    "BakeView",
    "CanaryRepository",
    "Clock",
    "EpisodeView",
    "MessageKind",
    "MigrationRepository",
    "MigrationStatus",
    "MigrationView",
    "NodeRecord",
    "Repositories",
    "RunView",
    "SlackMessageView",
    "SlackRepository",
    "StepJournalRepository",
    "StepStatus",
    "StepView",
    "WaveNodeRepository",
    "WaveNodeView",
    "WaveView",
]
