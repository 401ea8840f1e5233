"""What happens inside a wave: approvals, the nodes it moves, and the engine's step journal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import Database
from storage.errors import AlreadyDecided, NotFound
from storage.models import Approval, ApprovalDecision, StepJournal, StepStatus, WaveNode, utc_now
from storage.repositories.audit import Clock, append_event
from storage.repositories.migrations import _wave, wave_label, wave_subject
from storage.repositories.views import ApprovalView, NodeRecord, StepView, WaveNodeView


class ApprovalRepository:
    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    def record_approval(
        self,
        wave_id: int,
        *,
        user_id: str,
        decision: ApprovalDecision,
        plan_hash: str,
        snapshot_hash: str | None = None,
        expires_at: dt.datetime | None = None,
        cycle: int | None = None,
    ) -> ApprovalView:
        """Record one person's decision on the wave, with its audit event (approval.recorded).

        The same decision again returns the first one and writes nothing (a double click, a Slack
        retry); a different decision from the same person is refused with AlreadyDecided. `cycle`
        (the wave's version once requested) keeps each request's decisions apart.
        """
        with self._db.transaction() as session:
            wave, cluster = _wave(session, wave_id)
            existing = session.scalars(
                select(Approval).where(
                    Approval.wave_id == wave_id,
                    Approval.user_id == user_id,
                    Approval.cycle.is_(None) if cycle is None else Approval.cycle == cycle,
                )
            ).one_or_none()
            if existing is not None:
                if existing.decision is decision:
                    return ApprovalView.of(existing)
                raise AlreadyDecided(
                    f"{user_id} already chose {existing.decision.value} on {wave_label(wave)} at "
                    f"{existing.created_at:%Y-%m-%d %H:%M} UTC; a decision can't be changed — ask another "
                    "approver, or deny and request the wave again"
                )
            row = Approval(
                wave_id=wave_id, user_id=user_id, decision=decision, plan_hash=plan_hash,
                snapshot_hash=snapshot_hash, created_at=self._clock(), expires_at=expires_at, cycle=cycle,
            )  # fmt: skip
            session.add(row)
            session.flush()
            append_event(
                session,
                self._clock,
                actor=user_id,
                action="approval.recorded",
                subject=wave_subject(cluster, wave.name),
                payload={
                    "decision": decision.value,
                    "plan_hash": plan_hash,
                    "snapshot_hash": snapshot_hash,
                    "expires_at": expires_at,
                    "wave_version": wave.version,
                },
            )
            return ApprovalView.of(row)

    def approvals(self, wave_id: int, cycle: int | None = None) -> list[ApprovalView]:
        """The wave's decisions; only those of request cycle `cycle` when it is given."""
        with self._db.transaction(write=False) as session:
            query = select(Approval).where(Approval.wave_id == wave_id)
            if cycle is not None:
                query = query.where(Approval.cycle == cycle)
            rows = session.scalars(query.order_by(Approval.created_at, Approval.id))
            return [ApprovalView.of(row) for row in rows]


class WaveNodeRepository:
    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    def upsert_wave_nodes(self, wave_id: int, nodes: Sequence[NodeRecord]) -> list[WaveNodeView]:
        """Attach the nodes to the wave, or refresh what is known of them; their step status is kept."""
        now = self._clock()
        with self._db.transaction() as session:
            _wave(session, wave_id)
            if nodes:
                insert = (
                    postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
                )
                statement = insert(WaveNode).values(
                    [
                        {
                            "wave_id": wave_id,
                            "node_name": node.node_name,
                            "instance_id": node.instance_id,
                            "os_family": node.os_family,
                            "owner": node.owner,
                            "zone": node.zone,
                            "step_status": "pending",
                            "updated_at": now,
                        }
                        for node in {node.node_name: node for node in nodes}.values()
                    ]
                )
                statement = statement.on_conflict_do_update(
                    index_elements=["wave_id", "node_name"],
                    set_={
                        column: statement.excluded[column]
                        for column in ("instance_id", "os_family", "owner", "zone", "updated_at")
                    },
                )
                session.execute(statement)
            return _nodes(session, wave_id)

    def set_node_step(self, wave_id: int, node_name: str, step_status: str) -> WaveNodeView:
        with self._db.transaction() as session:
            row = session.scalars(
                select(WaveNode).where(WaveNode.wave_id == wave_id, WaveNode.node_name == node_name)
            ).one_or_none()
            if row is None:
                raise NotFound(
                    f"node {node_name} is not part of wave id {wave_id} — refresh the wave's nodes first"
                )
            row.step_status = step_status
            row.updated_at = self._clock()
            return WaveNodeView.of(row)

    def nodes(self, wave_id: int) -> list[WaveNodeView]:
        with self._db.transaction(write=False) as session:
            return _nodes(session, wave_id)


def _nodes(session: Session, wave_id: int) -> list[WaveNodeView]:
    rows = session.scalars(
        select(WaveNode)
        .where(WaveNode.wave_id == wave_id)
        .order_by(WaveNode.node_name)
        .execution_options(populate_existing=True)
    )
    return [WaveNodeView.of(row) for row in rows]


class StepJournalRepository:
    """The engine's idempotency ledger: one row per (wave, step key), attempts counted."""

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    def journal_start(
        self, wave_id: int, key: str, kind: str, target: str, detail: dict[str, Any] | None = None
    ) -> StepView:
        """Mark the step started and return it — or, when it already succeeded, return it as it is
        (`.done` is True: skip it). A step that failed or was interrupted starts its next attempt."""
        try:
            return self._start(wave_id, key, kind, target, detail)
        except IntegrityError:
            # Two starters raced on a new key (PostgreSQL): the loser sees the winner's row.
            return self._start(wave_id, key, kind, target, detail)

    def _start(
        self, wave_id: int, key: str, kind: str, target: str, detail: dict[str, Any] | None
    ) -> StepView:
        with self._db.transaction() as session:
            _wave(session, wave_id)
            row = session.scalars(
                select(StepJournal)
                .where(StepJournal.wave_id == wave_id, StepJournal.step_key == key)
                .with_for_update()
            ).one_or_none()
            now = self._clock()
            if row is None:
                row = StepJournal(
                    wave_id=wave_id, step_key=key, kind=kind, target=target, status=StepStatus.STARTED,
                    attempt=1, detail=dict(detail or {}), started_at=now, finished_at=None,
                )  # fmt: skip
                session.add(row)
                session.flush()
            elif row.status is not StepStatus.SUCCEEDED:
                row.status = StepStatus.STARTED
                row.attempt += 1
                row.kind, row.target = kind, target
                if detail is not None:
                    row.detail = dict(detail)
                row.started_at, row.finished_at = now, None
            return StepView.of(row)

    def journal_finish(
        self, wave_id: int, key: str, status: StepStatus, detail: dict[str, Any] | None = None
    ) -> StepView:
        """Record how the step ended (succeeded or failed); `detail` is merged into what was there."""
        if status is StepStatus.STARTED:
            raise ValueError("journal_finish takes succeeded or failed; use journal_start to start a step")
        with self._db.transaction() as session:
            row = session.scalars(
                select(StepJournal)
                .where(StepJournal.wave_id == wave_id, StepJournal.step_key == key)
                .with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(
                    f"step {key} of wave id {wave_id} was never started — call journal_start first"
                )
            row.status = status
            row.finished_at = self._clock()
            if detail:
                row.detail = {**row.detail, **detail}
            return StepView.of(row)

    def journal(self, wave_id: int) -> list[StepView]:
        with self._db.transaction(write=False) as session:
            rows = session.scalars(
                select(StepJournal).where(StepJournal.wave_id == wave_id).order_by(StepJournal.id)
            )
            return [StepView.of(row) for row in rows]
