"""The canary's records: each wave's bake, the runs of its checks, and its alert episodes.

Runs are claimed before they run: (wave, analysis, tick) is unique, so of two processes (or a process
and its own restart) that try the same tick, exactly one runs it. Episode changes are audited.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import Database
from storage.errors import NotFound
from storage.models import CanaryBake, CanaryEpisode, CanaryRun, utc_now
from storage.repositories.audit import Clock, append_event
from storage.repositories.migrations import _wave, wave_subject


@dataclass(frozen=True, slots=True)
class BakeView:
    wave_id: int
    cluster: str
    analysis: int
    interval: dt.timedelta
    duration: dt.timedelta
    started_at: dt.datetime
    until: dt.datetime
    ended_at: dt.datetime | None
    outcome: str | None
    baseline: dict[str, int] = field(hash=False)

    @property
    def running(self) -> bool:
        return self.ended_at is None

    def tick_at(self, now: dt.datetime) -> int:
        """The scheduled tick `now` belongs to: the last one at or before it (tick 0 is the start)."""
        return max(0, int((now - self.started_at) / self.interval))

    @classmethod
    def of(cls, row: CanaryBake) -> BakeView:
        return cls(
            row.wave_id, row.cluster, row.analysis, dt.timedelta(seconds=row.interval_seconds),
            dt.timedelta(seconds=row.duration_seconds), row.started_at, row.until, row.ended_at,
            row.outcome, {str(k): int(v) for k, v in (row.baseline or {}).items()},
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    wave_id: int
    analysis: int
    tick: str
    runner: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    verdict: str | None
    results: dict[str, Any] = field(hash=False)

    @property
    def failing_checks(self) -> list[str]:
        """The checks of this run that did not pass, in the order they ran."""
        return [str(c.get("check")) for c in self.results.get("checks") or () if c.get("verdict") != "pass"]

    @classmethod
    def of(cls, row: CanaryRun) -> RunView:
        return cls(
            row.id, row.wave_id, row.analysis, row.tick, row.runner, row.started_at, row.finished_at,
            row.verdict, dict(row.results or {}),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class EpisodeView:
    id: int
    wave_id: int
    kind: str
    summary: str
    details: dict[str, Any] = field(hash=False)
    opened_at: dt.datetime
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    resolved_by: str | None
    resolved_at: dt.datetime | None
    reminders: int
    notified_at: dt.datetime | None
    channel: str | None
    message_ts: str | None
    dedup_key: str

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    @classmethod
    def of(cls, row: CanaryEpisode) -> EpisodeView:
        return cls(
            row.id, row.wave_id, row.kind, row.summary, dict(row.details or {}), row.opened_at,
            row.acknowledged_by, row.acknowledged_at, row.resolved_by, row.resolved_at, row.reminders,
            row.notified_at, row.channel, row.message_ts, row.dedup_key,
        )  # fmt: skip


class CanaryRepository:
    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    # ---- bakes ------------------------------------------------------------------------------

    def start_bake(
        self,
        wave_id: int,
        *,
        interval: dt.timedelta,
        until: dt.datetime,
        started_at: dt.datetime | None = None,
    ) -> BakeView:
        """Start (or restart, as a new analysis) the wave's bake. A bake already running is kept as it
        is: scheduling the same bake twice changes nothing."""
        with self._db.transaction() as session:
            wave, cluster = _wave(session, wave_id)
            start = started_at or self._clock()
            row = session.get(CanaryBake, wave_id, populate_existing=True)
            if row is not None and row.ended_at is None:
                return BakeView.of(row)
            if row is None:
                row = CanaryBake(wave_id=wave_id, cluster=cluster, analysis=1)
                session.add(row)
            else:
                row.analysis += 1
            row.interval_seconds = interval.total_seconds()
            row.duration_seconds = (until - start).total_seconds()
            row.started_at, row.until = start, until
            row.ended_at, row.outcome, row.baseline = None, None, {}
            session.flush()
            self._audit(
                session, "canary.bake_started", wave_subject(cluster, wave.name),
                {"analysis": row.analysis, "interval_s": row.interval_seconds, "until": until.isoformat()},
            )  # fmt: skip
            return BakeView.of(row)

    def bake(self, wave_id: int) -> BakeView | None:
        with self._db.transaction(write=False) as session:
            row = session.get(CanaryBake, wave_id)
            return BakeView.of(row) if row else None

    def end_bake(self, wave_id: int, outcome: str) -> BakeView:
        """End the running analysis with `outcome`; ending one already ended changes nothing."""
        with self._db.transaction() as session:
            row = _bake(session, wave_id)
            if row.ended_at is None:
                row.ended_at, row.outcome = self._clock(), outcome
                wave, cluster = _wave(session, wave_id)
                self._audit(
                    session, "canary.bake_ended", wave_subject(cluster, wave.name),
                    {"analysis": row.analysis, "outcome": outcome},
                )  # fmt: skip
            return BakeView.of(row)

    def remember_restarts(self, wave_id: int, restarts: dict[str, int]) -> BakeView:
        """Keep the first restart count seen of each pod: restart deltas are counted from there."""
        with self._db.transaction() as session:
            row = _bake(session, wave_id)
            new = {uid: count for uid, count in restarts.items() if uid not in (row.baseline or {})}
            if new:
                row.baseline = {**(row.baseline or {}), **new}
            return BakeView.of(row)

    # ---- runs -------------------------------------------------------------------------------

    def claim_run(self, wave_id: int, analysis: int, tick: str, *, runner: str) -> RunView | None:
        """Claim the tick for this runner; None when someone already claimed it (it ran, or runs)."""
        try:
            with self._db.transaction() as session:
                row = CanaryRun(
                    wave_id=wave_id, analysis=analysis, tick=tick, runner=runner,
                    started_at=self._clock(), results={},
                )  # fmt: skip
                session.add(row)
                session.flush()
                return RunView.of(row)
        except IntegrityError:
            return None

    def finish_run(self, run_id: int, verdict: str, results: dict[str, Any]) -> RunView:
        with self._db.transaction() as session:
            row = session.get(CanaryRun, run_id)
            if row is None:
                raise NotFound(f"there is no canary run {run_id}")
            row.verdict, row.results, row.finished_at = verdict, results, self._clock()
            return RunView.of(row)

    def runs(self, wave_id: int, analysis: int | None = None) -> list[RunView]:
        """The wave's runs, oldest first (of one analysis when given)."""
        with self._db.transaction(write=False) as session:
            query = select(CanaryRun).where(CanaryRun.wave_id == wave_id)
            if analysis is not None:
                query = query.where(CanaryRun.analysis == analysis)
            return [RunView.of(r) for r in session.scalars(query.order_by(CanaryRun.id))]

    # ---- episodes ---------------------------------------------------------------------------

    def open_episode(
        self, wave_id: int, *, kind: str, summary: str, details: dict[str, Any], actor: str
    ) -> tuple[EpisodeView, bool]:
        """The wave's open episode, or a new one: (episode, opened now). One open episode per wave."""
        with self._db.transaction() as session:
            wave, cluster = _wave(session, wave_id)
            current = _open_episode(session, wave_id)
            if current is not None:
                return EpisodeView.of(current), False
            now = self._clock()
            row = CanaryEpisode(
                wave_id=wave_id, kind=kind, summary=summary, details=details, opened_at=now, reminders=0,
                dedup_key=f"migratebot/{cluster}/wave-{wave.index}/{uuid.uuid4().hex[:16]}",
            )  # fmt: skip
            session.add(row)
            session.flush()
            self._audit(
                session, "alert.opened", wave_subject(cluster, wave.name),
                {"episode": row.id, "kind": kind, "summary": summary}, actor=actor,
            )  # fmt: skip
            return EpisodeView.of(row), True

    def open_episode_of(self, wave_id: int) -> EpisodeView | None:
        with self._db.transaction(write=False) as session:
            row = _open_episode(session, wave_id)
            return EpisodeView.of(row) if row else None

    def episode(self, episode_id: int) -> EpisodeView:
        with self._db.transaction(write=False) as session:
            return EpisodeView.of(_episode(session, episode_id))

    def episodes(self, wave_id: int | None = None) -> list[EpisodeView]:
        with self._db.transaction(write=False) as session:
            query = select(CanaryEpisode)
            if wave_id is not None:
                query = query.where(CanaryEpisode.wave_id == wave_id)
            return [EpisodeView.of(r) for r in session.scalars(query.order_by(CanaryEpisode.id))]

    def record_message(self, episode_id: int, *, channel: str, ts: str) -> EpisodeView:
        with self._db.transaction() as session:
            row = _episode(session, episode_id)
            row.channel, row.message_ts, row.notified_at = channel, ts, self._clock()
            return EpisodeView.of(row)

    def record_reminder(self, episode_id: int) -> EpisodeView:
        with self._db.transaction() as session:
            row = _episode(session, episode_id)
            row.reminders += 1
            row.notified_at = self._clock()
            return EpisodeView.of(row)

    def acknowledge(self, episode_id: int, user: str) -> tuple[EpisodeView, bool]:
        """(episode, acknowledged now). A second acknowledgement keeps the first one's name and time."""
        with self._db.transaction() as session:
            row = _episode(session, episode_id)
            if row.acknowledged_at is not None or row.resolved_at is not None:
                return EpisodeView.of(row), False
            row.acknowledged_by, row.acknowledged_at = user, self._clock()
            wave, cluster = _wave(session, row.wave_id)
            self._audit(
                session, "alert.acknowledged", wave_subject(cluster, wave.name), {"episode": row.id},
                actor=user,
            )  # fmt: skip
            return EpisodeView.of(row), True

    def resolve(self, episode_id: int, *, by: str, reason: str) -> tuple[EpisodeView, bool]:
        """(episode, resolved now)."""
        with self._db.transaction() as session:
            row = _episode(session, episode_id)
            if row.resolved_at is not None:
                return EpisodeView.of(row), False
            row.resolved_by, row.resolved_at = by, self._clock()
            wave, cluster = _wave(session, row.wave_id)
            self._audit(
                session, "alert.resolved", wave_subject(cluster, wave.name),
                {"episode": row.id, "reason": reason}, actor=by,
            )  # fmt: skip
            return EpisodeView.of(row), True

    def unacknowledged(self) -> list[EpisodeView]:
        """Open episodes nobody acknowledged yet: the ones reminders are for."""
        with self._db.transaction(write=False) as session:
            query = select(CanaryEpisode).where(
                CanaryEpisode.resolved_at.is_(None), CanaryEpisode.acknowledged_at.is_(None)
            )
            return [EpisodeView.of(r) for r in session.scalars(query.order_by(CanaryEpisode.id))]

    def _audit(
        self,
        session: Session,
        action: str,
        subject: str,
        payload: dict[str, Any],
        *,
        actor: str = "migratebot",
    ) -> None:
        append_event(session, self._clock, actor=actor, action=action, subject=subject, payload=payload)


def _bake(session: Session, wave_id: int) -> CanaryBake:
    row = session.get(CanaryBake, wave_id, populate_existing=True)
    if row is None:
        raise NotFound(f"wave id {wave_id} has no canary bake — it bakes once it reaches `baking`")
    return row


def _episode(session: Session, episode_id: int) -> CanaryEpisode:
    row = session.get(CanaryEpisode, episode_id, populate_existing=True)
    if row is None:
        raise NotFound(f"there is no alert episode {episode_id} — check /migrate canary status")
    return row


def _open_episode(session: Session, wave_id: int) -> CanaryEpisode | None:
    return session.scalars(
        select(CanaryEpisode)
        .where(CanaryEpisode.wave_id == wave_id, CanaryEpisode.resolved_at.is_(None))
        .order_by(CanaryEpisode.id.desc())
        .limit(1)
    ).first()
