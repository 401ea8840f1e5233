"""A cluster's migration and its waves: registering the plan, reading waves, and moving them.

Every state change is one transaction holding the wave's new state and its audit event, guarded by
the wave's version: of two people acting on the same version, one wins and the other is told why.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.domain.errors import ConcurrentTransition
from bot.domain.waves import Trigger, WaveState, next_state
from storage.db import Database
from storage.errors import NotFound, PlanConflict
from storage.models import STATE_TIMESTAMP_COLUMNS, Migration, MigrationStatus, Wave, utc_now
from storage.repositories.audit import Clock, append_event
from storage.repositories.views import MigrationView, WaveView

# The audit action of a request's readiness snapshot (bind_snapshot); its payload holds the snapshot.
READINESS_BOUND = "wave.readiness_bound"

_RACE_RETRIES = 3

# Entering `planned` again (a replan after a denial or expiry) starts a new request cycle.
_REQUEST_CYCLE = (
    "requested_at",
    "approved_at",
    "denied_at",
    "expired_at",
    "requested_by",
    "request_snapshot_hash",
)


def migration_subject(cluster: str) -> str:
    return f"migration:{cluster}"


def wave_subject(cluster: str, name: str) -> str:
    return f"wave:{cluster}/{name}"


def wave_label(wave: Wave) -> str:
    return f"wave {wave.index} ({wave.name})"


class MigrationRepository:
    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    # ---- the plan ---------------------------------------------------------------------------

    def register_plan(
        self, cluster: str, plan_hash: str, waves: Sequence[tuple[int, str]], actor: str
    ) -> MigrationView:
        """Get or create the cluster's migration, bind it to `plan_hash` and create the waves it lacks.

        Idempotent: registering the same plan again writes nothing. Each change writes one audit event
        (migration.created, migration.plan_changed, wave.planned). Waves already registered keep their
        number and name: a plan that moves or renames one is refused with PlanConflict, nothing written.
        """
        _refuse_duplicates(cluster, waves)
        for _ in range(_RACE_RETRIES):
            try:
                return self._register_plan(cluster, plan_hash, waves, actor)
            except IntegrityError:
                # Another replica registered the same cluster or wave between our read and our insert
                # (PostgreSQL): run again against what it wrote.
                continue
        return self._register_plan(cluster, plan_hash, waves, actor)

    def _register_plan(
        self, cluster: str, plan_hash: str, waves: Sequence[tuple[int, str]], actor: str
    ) -> MigrationView:
        with self._db.transaction() as session:
            now = self._clock()
            migration = session.scalars(select(Migration).where(Migration.cluster == cluster)).one_or_none()
            if migration is None:
                migration = Migration(
                    cluster=cluster,
                    plan_hash=plan_hash,
                    status=MigrationStatus.ACTIVE,
                    created_at=now,
                    updated_at=now,
                )
                session.add(migration)
                session.flush()
                self._audit(
                    session, actor, "migration.created", migration_subject(cluster),
                    {"plan_hash": plan_hash, "waves": len(waves)},
                )  # fmt: skip
            elif migration.plan_hash != plan_hash:
                self._audit(
                    session, actor, "migration.plan_changed", migration_subject(cluster),
                    {"from": migration.plan_hash, "to": plan_hash},
                )  # fmt: skip
                migration.plan_hash = plan_hash
                migration.updated_at = now
            existing = list(session.scalars(select(Wave).where(Wave.migration_id == migration.id)))
            by_index = {wave.index: wave for wave in existing}
            by_name = {wave.name: wave for wave in existing}
            for index, name in sorted(waves):
                same = by_index.get(index)
                if same is not None and same.name == name:
                    continue
                clash = same or by_name.get(name)
                if clash is not None:
                    raise PlanConflict(
                        f"the plan for cluster {cluster} has wave {index} ({name}), but {wave_label(clash)} "
                        "is already registered: registered waves keep their number and name — restore "
                        "them in the plan and add new waves after the last one"
                    )
                session.add(
                    Wave(
                        migration_id=migration.id, index=index, name=name, state=WaveState.PLANNED, version=1,
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
                session.flush()
                self._audit(
                    session, actor, "wave.planned", wave_subject(cluster, name),
                    {"index": index, "name": name, "plan_hash": plan_hash},
                )  # fmt: skip
            return MigrationView.of(migration)

    def set_status(
        self, cluster: str, status: MigrationStatus, *, actor: str, reason: str | None = None
    ) -> MigrationView:
        """Pause, resume (active), complete or abort the whole migration; audited, idempotent."""
        with self._db.transaction() as session:
            migration = _migration(session, cluster)
            if migration.status is not status:
                self._audit(
                    session, actor, "migration.status_changed", migration_subject(cluster),
                    {"from": migration.status.value, "to": status.value, "reason": reason},
                )  # fmt: skip
                migration.status = status
                migration.updated_at = self._clock()
            return MigrationView.of(migration)

    # ---- reading ----------------------------------------------------------------------------

    def get(self, cluster: str) -> MigrationView | None:
        with self._db.transaction(write=False) as session:
            row = session.scalars(select(Migration).where(Migration.cluster == cluster)).one_or_none()
            return MigrationView.of(row) if row else None

    def list(self) -> list[MigrationView]:
        with self._db.transaction(write=False) as session:
            return [
                MigrationView.of(row)
                for row in session.scalars(select(Migration).order_by(Migration.cluster))
            ]

    def waves(self, cluster: str) -> builtins.list[WaveView]:
        """The cluster's waves in plan order (NotFound when the cluster has no migration)."""
        with self._db.transaction(write=False) as session:
            migration = _migration(session, cluster)
            rows = session.scalars(select(Wave).where(Wave.migration_id == migration.id).order_by(Wave.index))
            return [WaveView.of(row, cluster) for row in rows]

    def state_counts(self) -> dict[tuple[str, str], int]:
        """How many waves each cluster has in each state, in one query: {(cluster, state): n} (/metrics)."""
        with self._db.transaction(write=False) as session:
            rows = session.execute(
                select(Migration.cluster, Wave.state, func.count())
                .join(Wave, Wave.migration_id == Migration.id)
                .group_by(Migration.cluster, Wave.state)
            )
            return {(cluster, WaveState(state).value): int(n) for cluster, state, n in rows}

    def wave(self, wave_id: int) -> WaveView:
        with self._db.transaction(write=False) as session:
            wave, cluster = _wave(session, wave_id)
            return WaveView.of(wave, cluster)

    def wave_by_name(self, cluster: str, name: str) -> WaveView:
        with self._db.transaction(write=False) as session:
            migration = _migration(session, cluster)
            rows = list(
                session.scalars(select(Wave).where(Wave.migration_id == migration.id).order_by(Wave.index))
            )
            for row in rows:
                if row.name == name:
                    return WaveView.of(row, cluster)
            names = ", ".join(row.name for row in rows) or "none"
            raise NotFound(
                f"cluster {cluster} has no wave named {name!r}; its waves are: {names} — "
                "check /migrate status"
            )

    # ---- moving a wave ----------------------------------------------------------------------

    def transition(
        self,
        wave_id: int,
        trigger: Trigger,
        *,
        actor: str,
        expected_version: int,
        payload: dict[str, Any] | None = None,
        snapshot_hash: str | None = None,
    ) -> WaveView:
        """Fire `trigger` on the wave as it was at `expected_version`, with its audit event, atomically.

        IllegalTransition when the state does not allow the trigger; ConcurrentTransition when the wave
        changed since the caller read it. Either way nothing is written. Authorization is the caller's.
        `snapshot_hash` (the readiness snapshot a request was made on) is kept with a request.
        """
        with self._db.transaction() as session:
            wave, cluster = _wave(session, wave_id)
            label = wave_label(wave)
            if wave.version != expected_version:
                raise _changed(wave)
            move = next_state(wave.state, trigger, wave=label)
            now = self._clock()
            values: dict[str, Any] = {
                "state": move.target,
                "version": expected_version + 1,
                "updated_at": now,
            }
            if move.target is WaveState.PLANNED:
                values.update(dict.fromkeys(_REQUEST_CYCLE))
            else:
                column = STATE_TIMESTAMP_COLUMNS[move.target]
                if getattr(wave, column) is None:
                    values[column] = now
            if trigger is Trigger.REQUEST:
                values.update(requested_by=actor, request_snapshot_hash=snapshot_hash)
            result = session.execute(
                update(Wave)
                .where(Wave.id == wave_id, Wave.version == expected_version)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], result).rowcount != 1:
                # Someone committed a change between our read and our write (PostgreSQL re-checks the
                # version after waiting for their row lock).
                now_wave, _ = _wave(session, wave_id, fresh=True)
                raise _changed(now_wave)
            self._audit(
                session, actor, f"wave.{trigger.value}", wave_subject(cluster, wave.name),
                {**(payload or {}), "from": move.source.value, "to": move.target.value,
                 "version": expected_version + 1},
            )  # fmt: skip
            fresh, _ = _wave(session, wave_id, fresh=True)
            return WaveView.of(fresh, cluster)

    def bind_snapshot(
        self, wave_id: int, version: int, snapshot_hash: str, *, actor: str, payload: dict[str, Any]
    ) -> bool:
        """Keep the readiness snapshot request `version` of the wave was shown with (read after the
        request was posted), with its audit event. Not a transition: the version stays, so the
        request's buttons stay valid. False, writing nothing, when the wave has moved on since or the
        request is bound already (the first reading is the one people saw)."""
        with self._db.transaction() as session:
            result = session.execute(
                update(Wave)
                .where(
                    Wave.id == wave_id,
                    Wave.version == version,
                    Wave.state == WaveState.REQUESTED,
                    Wave.request_snapshot_hash.is_(None),
                )
                .values(request_snapshot_hash=snapshot_hash)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], result).rowcount != 1:
                return False
            wave, cluster = _wave(session, wave_id, fresh=True)
            self._audit(
                session,
                actor,
                READINESS_BOUND,
                wave_subject(cluster, wave.name),
                {**payload, "version": version, "snapshot_hash": snapshot_hash},
            )
            return True

    def _audit(
        self, session: Session, actor: str, action: str, subject: str, payload: dict[str, Any]
    ) -> None:
        append_event(session, self._clock, actor=actor, action=action, subject=subject, payload=payload)


def _refuse_duplicates(cluster: str, waves: Sequence[tuple[int, str]]) -> None:
    seen_index: dict[int, str] = {}
    seen_name: dict[str, int] = {}
    for index, name in waves:
        if seen_index.get(index, name) != name or seen_name.get(name, index) != index:
            raise PlanConflict(
                f"the plan for cluster {cluster} names wave {index} ({name}) twice or numbers two waves "
                "alike — give each wave its own number and name"
            )
        seen_index[index], seen_name[name] = name, index


def _changed(wave: Wave) -> ConcurrentTransition:
    return ConcurrentTransition(
        f"{wave_label(wave)} changed while you acted: it is now {wave.state.value} "
        f"(version {wave.version}) — check /migrate status and try again"
    )


def _migration(session: Session, cluster: str) -> Migration:
    row = session.scalars(select(Migration).where(Migration.cluster == cluster)).one_or_none()
    if row is None:
        raise NotFound(
            f"cluster {cluster} has no migration — register its plan first (migratebot serve --plan FILE)"
        )
    return row


def _wave(session: Session, wave_id: int, *, fresh: bool = False) -> tuple[Wave, str]:
    query = (
        select(Wave, Migration.cluster)
        .join(Migration, Wave.migration_id == Migration.id)
        .where(Wave.id == wave_id)
    )
    if fresh:
        query = query.execution_options(populate_existing=True)
    row = session.execute(query).one_or_none()
    if row is None:
        raise NotFound(f"there is no wave with id {wave_id} — check /migrate status")
    return row[0], row[1]
