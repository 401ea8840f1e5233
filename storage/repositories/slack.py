"""What the Slack side keeps: deliveries already acted on, and the messages the bot owns per wave request.

A message is written here before Slack is asked to show it (`want`), and marked delivered after Slack
answered (`delivered`); a post or an update that failed leaves `delivered_rev < rev`, and
`undelivered()` finds it again — so a Slack outage delays what people see, never loses it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import Migration, SlackDelivery, SlackMessage, Wave, utc_now
from storage.repositories.audit import Clock


class MessageKind:
    """The messages a wave request cycle may own (one of each)."""

    REQUEST = "request"
    PROGRESS = "progress"
    RESULT = "result"
    SUMMARY = "summary"
    # The wave's reports in the request's thread (handlers/reports.py); the readiness message's facts
    # hold the glance the request card shows.
    READINESS = "report.readiness"
    SECURITY = "report.security"
    RESULTS = "report.results"


@dataclass(frozen=True, slots=True)
class SlackMessageView:
    id: int
    wave_id: int
    cycle: int
    kind: str
    channel: str
    thread_ts: str | None
    ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    facts: dict[str, Any] = field(hash=False)
    rev: int
    delivered_rev: int
    attempts: int
    last_error: str | None
    updated_at: dt.datetime

    @property
    def pending(self) -> bool:
        return self.delivered_rev < self.rev

    @classmethod
    def of(cls, row: SlackMessage) -> SlackMessageView:
        return cls(
            row.id, row.wave_id, row.cycle, row.kind, row.channel, row.thread_ts, row.ts, row.text,
            list(row.blocks.get("blocks") or []), dict(row.facts), row.rev, row.delivered_rev,
            row.attempts, row.last_error, row.updated_at,
        )  # fmt: skip


class SlackRepository:
    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    # ---- deliveries -----------------------------------------------------------------------------

    def claim_delivery(self, key: str) -> bool:
        """True when nobody claimed `key` before (one primary-key insert: O(1) however long the log)."""
        with self._db.transaction() as session:
            insert = _insert(session)
            statement = insert(SlackDelivery).values(key=key, claimed_at=self._clock())
            statement = statement.on_conflict_do_nothing(index_elements=["key"]).returning(SlackDelivery.key)
            return session.execute(statement).scalar_one_or_none() is not None

    def claim_deliveries(self, keys: list[str]) -> set[str]:
        """The keys nobody claimed before, now claimed (one transaction for a burst of deliveries)."""
        if not keys:
            return set()
        with self._db.transaction() as session:
            now = self._clock()
            insert = _insert(session)
            statement = insert(SlackDelivery).values(
                [{"key": k, "claimed_at": now} for k in dict.fromkeys(keys)]
            )
            statement = statement.on_conflict_do_nothing(index_elements=["key"]).returning(SlackDelivery.key)
            return set(session.execute(statement).scalars())

    def claim_post(self, message_id: int, attempt: int, *, ttl: dt.timedelta) -> bool:
        """True when this process may post message `message_id` for the first time (attempt number
        `attempt`): nobody claimed that attempt, or its claimer went quiet longer than `ttl` (died
        before it could record the post, or never got an answer). Two replicas reconciling the same
        message never both post it."""
        key = f"post:{message_id}:{attempt}"
        with self._db.transaction() as session:
            now = self._clock()
            insert = _insert(session)
            statement = insert(SlackDelivery).values(key=key, claimed_at=now)
            statement = statement.on_conflict_do_nothing(index_elements=["key"]).returning(SlackDelivery.key)
            if session.execute(statement).scalar_one_or_none() is not None:
                return True
            row = session.get(SlackDelivery, key, with_for_update=True)
            if row is not None and row.claimed_at < now - ttl:
                row.claimed_at = now
                return True
            return False

    def delivery_claimed(self, key: str) -> bool:
        with self._db.transaction(write=False) as session:
            return session.get(SlackDelivery, key) is not None

    def forget_deliveries(self, before: dt.datetime) -> int:
        """Drop claims older than `before` (Slack stops redelivering after minutes)."""
        with self._db.transaction() as session:
            result = session.execute(delete(SlackDelivery).where(SlackDelivery.claimed_at < before))
            return int(result.rowcount)  # type: ignore[attr-defined]

    # ---- messages -------------------------------------------------------------------------------

    def record_posted(
        self, wave_id: int, cycle: int, kind: str, *, channel: str, ts: str, thread_ts: str | None = None
    ) -> SlackMessageView:
        """A message Slack has shown already (the request, posted by its handler): where it is."""
        with self._db.transaction() as session:
            row = _row(session, wave_id, cycle, kind)
            if row is None:
                row = SlackMessage(
                    wave_id=wave_id, cycle=cycle, kind=kind, channel=channel, thread_ts=thread_ts, ts=ts,
                    text="", blocks={"blocks": []}, facts={}, rev=1, delivered_rev=1, attempts=1,
                    last_error=None, updated_at=self._clock(),
                )  # fmt: skip
                session.add(row)
            else:
                row.channel, row.ts, row.thread_ts = channel, ts, thread_ts
                row.delivered_rev = row.rev
                row.updated_at = self._clock()
            session.flush()
            return SlackMessageView.of(row)

    def want(
        self,
        wave_id: int,
        cycle: int,
        kind: str,
        *,
        channel: str,
        thread_ts: str | None,
        text: str,
        blocks: list[dict[str, Any]],
        facts: dict[str, Any] | None = None,
    ) -> SlackMessageView:
        """Record what the message should say now; its revision moves only when the content changed."""
        try:
            return self._want(wave_id, cycle, kind, channel, thread_ts, text, blocks, facts)
        except IntegrityError:
            # Two writers created the same message at once: the loser updates the winner's row.
            return self._want(wave_id, cycle, kind, channel, thread_ts, text, blocks, facts)

    def _want(
        self,
        wave_id: int,
        cycle: int,
        kind: str,
        channel: str,
        thread_ts: str | None,
        text: str,
        blocks: list[dict[str, Any]],
        facts: dict[str, Any] | None,
    ) -> SlackMessageView:
        with self._db.transaction() as session:
            row = _row(session, wave_id, cycle, kind)
            if row is None:
                row = SlackMessage(
                    wave_id=wave_id, cycle=cycle, kind=kind, channel=channel, thread_ts=thread_ts, ts=None,
                    text=text, blocks={"blocks": blocks}, facts=dict(facts or {}), rev=1, delivered_rev=0,
                    attempts=0, last_error=None, updated_at=self._clock(),
                )  # fmt: skip
                session.add(row)
            elif row.text != text or row.blocks.get("blocks") != blocks:
                row.text, row.blocks = text, {"blocks": blocks}
                row.facts = dict(facts or row.facts)
                row.rev += 1
                row.updated_at = self._clock()
            session.flush()
            return SlackMessageView.of(row)

    def delivered(self, message_id: int, rev: int, *, ts: str, channel: str | None = None) -> None:
        """Slack showed revision `rev` (a later revision may be wanted already: it stays pending)."""
        with self._db.transaction() as session:
            row = session.get(SlackMessage, message_id, with_for_update=True)
            if row is None:
                return
            row.ts = row.ts or ts
            row.channel = channel or row.channel
            row.delivered_rev = max(row.delivered_rev, rev)
            row.attempts += 1
            row.last_error = None

    def give_up(self, message_id: int, reason: str) -> None:
        """Stop trying to show the message (what it would say no longer holds)."""
        with self._db.transaction() as session:
            row = session.get(SlackMessage, message_id, with_for_update=True)
            if row is not None:
                row.delivered_rev = row.rev
                row.last_error = f"given up: {reason}"[:2000]

    def failed(self, message_id: int, error: str) -> None:
        with self._db.transaction() as session:
            row = session.get(SlackMessage, message_id, with_for_update=True)
            if row is not None:
                row.attempts += 1
                row.last_error = error[:2000]

    def message(self, wave_id: int, cycle: int, kind: str) -> SlackMessageView | None:
        with self._db.transaction(write=False) as session:
            row = _row(session, wave_id, cycle, kind)
            return None if row is None else SlackMessageView.of(row)

    def latest(self, wave_id: int, kind: str) -> SlackMessageView | None:
        """The message of this kind in the wave's most recent request cycle that has one."""
        with self._db.transaction(write=False) as session:
            row = session.scalars(
                select(SlackMessage)
                .where(SlackMessage.wave_id == wave_id, SlackMessage.kind == kind)
                .order_by(SlackMessage.cycle.desc())
                .limit(1)
            ).one_or_none()
            return None if row is None else SlackMessageView.of(row)

    def undelivered(self, limit: int = 50) -> list[SlackMessageView]:
        """Messages Slack has not shown as they should be, oldest change first."""
        with self._db.transaction(write=False) as session:
            rows = session.scalars(
                select(SlackMessage)
                .where(SlackMessage.delivered_rev < SlackMessage.rev)
                .order_by(SlackMessage.updated_at, SlackMessage.id)
                .limit(limit)
            )
            return [SlackMessageView.of(row) for row in rows]

    def latest_facts(self, cluster: str, kind: str = MessageKind.PROGRESS) -> SlackMessageView | None:
        """The cluster's most recently changed message of `kind` (App Home: the last progress seen)."""
        with self._db.transaction(write=False) as session:
            row = session.scalars(
                select(SlackMessage)
                .join(Wave, SlackMessage.wave_id == Wave.id)
                .join(Migration, Wave.migration_id == Migration.id)
                .where(Migration.cluster == cluster, SlackMessage.kind == kind)
                .order_by(SlackMessage.updated_at.desc(), SlackMessage.id.desc())
                .limit(1)
            ).one_or_none()
            return None if row is None else SlackMessageView.of(row)

    def count_undelivered(self) -> int:
        with self._db.transaction(write=False) as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(SlackMessage)
                    .where(SlackMessage.delivered_rev < SlackMessage.rev)
                )
                or 0
            )


def _row(session: Session, wave_id: int, cycle: int, kind: str) -> SlackMessage | None:
    return session.scalars(
        select(SlackMessage)
        .where(SlackMessage.wave_id == wave_id, SlackMessage.cycle == cycle, SlackMessage.kind == kind)
        .execution_options(populate_existing=True)
    ).one_or_none()


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
