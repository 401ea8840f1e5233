"""The engine's own records: who holds a migration's executor lock, and what a wave measured."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.domain.timings import NodeTiming, PodTiming
from storage.db import Database
from storage.models import ExecutorLock, NodeTimingRow, PodTimingRow, utc_now
from storage.repositories.audit import Clock


class ExecutorLockRepository:
    """A lease in the database: one holder per name; a holder that stops renewing loses it at expiry.

    Works the same on SQLite (BEGIN IMMEDIATE serializes writers) and PostgreSQL (row lock)."""

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    def acquire(self, name: str, holder: str, ttl: dt.timedelta) -> bool:
        """Take or renew the lock for `ttl`; False while someone else holds an unexpired one."""
        try:
            return self._acquire(name, holder, ttl)
        except IntegrityError:
            return False  # another holder inserted the row first

    def _acquire(self, name: str, holder: str, ttl: dt.timedelta) -> bool:
        with self._db.transaction() as session:
            now = self._clock()
            row = session.scalars(
                select(ExecutorLock).where(ExecutorLock.name == name).with_for_update()
            ).one_or_none()
            if row is None:
                session.add(
                    ExecutorLock(
                        name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl
                    )
                )
                session.flush()
                return True
            if row.holder != holder and row.expires_at > now:
                return False
            if row.holder != holder:
                row.holder, row.acquired_at = holder, now
            row.renewed_at, row.expires_at = now, now + ttl
            return True

    def release(self, name: str, holder: str) -> None:
        with self._db.transaction() as session:
            session.execute(
                delete(ExecutorLock).where(ExecutorLock.name == name, ExecutorLock.holder == holder)
            )

    def holder(self, name: str) -> tuple[str, dt.datetime] | None:
        """Who holds the lock and until when, or None when nobody holds an unexpired one."""
        with self._db.transaction(write=False) as session:
            row = session.get(ExecutorLock, name)
            if row is None or row.expires_at <= self._clock():
                return None
            return row.holder, row.expires_at


class TimingRepository:
    """Per-wave node and pod timings; recording the same node or pod again replaces its row."""

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    def record_nodes(self, wave_id: int, timings: Sequence[NodeTiming]) -> None:
        with self._db.transaction() as session:
            names = [t.name for t in timings]
            if names:
                session.execute(
                    delete(NodeTimingRow).where(
                        NodeTimingRow.wave_id == wave_id, NodeTimingRow.node_name.in_(names)
                    )
                )
            for t in timings:
                session.add(
                    NodeTimingRow(
                        wave_id=wave_id, node_name=t.name, os_family=t.os_family,
                        instance_type=t.instance_type, launched_at=t.launched_at,
                        registered_at=t.registered_at, ready_at=t.ready_at,
                    )
                )  # fmt: skip

    def record_pods(self, wave_id: int, timings: Sequence[PodTiming]) -> None:
        with self._db.transaction() as session:
            for t in timings:
                session.execute(
                    delete(PodTimingRow).where(
                        PodTimingRow.wave_id == wave_id,
                        PodTimingRow.namespace == t.namespace,
                        PodTimingRow.name == t.name,
                    )
                )
                session.add(
                    PodTimingRow(
                        wave_id=wave_id, namespace=t.namespace, name=t.name, workload=t.workload,
                        evicted_at=t.evicted_at, replacement=t.replacement, scheduled_at=t.scheduled_at,
                        ready_at=t.ready_at, node=t.node,
                    )
                )  # fmt: skip

    def nodes(self, wave_id: int) -> list[NodeTiming]:
        with self._db.transaction(write=False) as session:
            rows = session.scalars(
                select(NodeTimingRow)
                .where(NodeTimingRow.wave_id == wave_id)
                .order_by(NodeTimingRow.node_name)
            )
            return [
                NodeTiming(
                    r.node_name, r.os_family, r.instance_type, r.launched_at, r.registered_at, r.ready_at
                )
                for r in rows
            ]

    def pods(self, wave_id: int) -> list[PodTiming]:
        with self._db.transaction(write=False) as session:
            rows = session.scalars(
                select(PodTimingRow)
                .where(PodTimingRow.wave_id == wave_id)
                .order_by(PodTimingRow.namespace, PodTimingRow.name)
            )
            return [
                PodTiming(
                    r.namespace,
                    r.name,
                    r.workload,
                    r.evicted_at,
                    r.replacement,
                    r.scheduled_at,
                    r.ready_at,
                    r.node,
                )
                for r in rows
            ]
