"""The append-only, hash-chained audit log.

Appends are serialized by the single `audit_head` row (seq and hash of the last event): every append
locks it, links to it and moves it, in the same transaction as the change it records. On PostgreSQL
the row lock queues concurrent appends; on SQLite every write transaction begins IMMEDIATE.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain.audit import GENESIS_HASH, event_hash, redact
from bot.domain.canonical import canonical_json
from storage.db import Database
from storage.models import AuditEvent, AuditHead, utc_now
from storage.repositories.views import AuditEventView, AuditVerification

Clock = Callable[[], dt.datetime]

_HEAD_ID = 1
_EXPORT_BATCH = 500


def clean_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    """Redacted, and in the exact JSON form that is hashed and stored (tuples, datetimes, enums flattened)."""
    cleaned: dict[str, Any] = json.loads(canonical_json(redact(dict(payload or {}))))
    return cleaned


def append_event(
    session: Session, clock: Clock, *, actor: str, action: str, subject: str, payload: dict[str, Any] | None
) -> AuditEvent:
    """Append one event inside the caller's transaction (it commits or rolls back with the change)."""
    body = clean_payload(payload)
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == _HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    # Taken after the lock, so `at` never goes backwards along the chain.
    at = clock()
    seq = head.seq + 1
    digest = event_hash(
        prev_hash=head.hash, seq=seq, at=at, actor=actor, action=action, subject=subject, payload=body
    )
    event = AuditEvent(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        payload=body,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(event)
    head.seq = seq
    head.hash = digest
    session.flush()
    return event


class AuditRepository:
    """Append, verify and export the chain. There is no method that updates or deletes an event."""

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock

    def append(
        self, actor: str, action: str, subject: str, payload: dict[str, Any] | None = None
    ) -> AuditEventView:
        with self._db.transaction() as session:
            event = append_event(
                session, self._clock, actor=actor, action=action, subject=subject, payload=payload
            )
            return AuditEventView.of(event)

    def events(self, *, subject: str | None = None, action: str | None = None) -> list[AuditEventView]:
        """Events in order, optionally only those about one subject or of one action."""
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if subject is not None:
            query = query.where(AuditEvent.subject == subject)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        with self._db.transaction(write=False) as session:
            return [AuditEventView.of(row) for row in session.scalars(query)]

    def verify(self) -> AuditVerification:
        """Recompute every link from the first event: report the first that breaks the chain, and why."""
        with self._db.transaction(write=False) as session:
            head = session.get(AuditHead, _HEAD_ID)
            head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
            # Only up to the head read above: events appended while we verify are not half-seen.
            rows = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq <= head_seq)
                .order_by(AuditEvent.seq)
                .execution_options(yield_per=_EXPORT_BATCH)
            )
            count, expected_seq, prev_hash = 0, 1, GENESIS_HASH
            for row in rows:
                broken = _check_link(row, expected_seq, prev_hash)
                if broken:
                    return AuditVerification(
                        count=count, ok=False, first_broken_seq=broken[0], reason=broken[1]
                    )
                count, expected_seq, prev_hash = count + 1, row.seq + 1, row.hash
            if expected_seq <= head_seq:
                return AuditVerification(
                    count=count,
                    ok=False,
                    first_broken_seq=expected_seq,
                    reason=f"seq gap: events {expected_seq}..{head_seq} are missing (the chain's head is at "
                    f"{head_seq}, the last event found is {expected_seq - 1})",
                )
            if prev_hash != head_hash:
                return AuditVerification(
                    count=count,
                    ok=False,
                    first_broken_seq=head_seq,
                    reason=f"hash mismatch: event {head_seq}'s hash differs from the chain's recorded head",
                )
            return AuditVerification(count=count, ok=True)

    def export(self) -> Iterator[dict[str, Any]]:
        """Every event in seq order as a JSON-ready dict, streamed (for `migratebot audit export`)."""
        with self._db.transaction(write=False) as session:
            rows = session.scalars(
                select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=_EXPORT_BATCH)
            )
            for row in rows:
                yield AuditEventView.of(row).as_dict()


def _check_link(row: AuditEvent, expected_seq: int, prev_hash: str) -> tuple[int, str] | None:
    if row.seq != expected_seq:
        missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
        before = (
            f"{expected_seq - 1} is followed by {row.seq}"
            if expected_seq > 1
            else f"the chain starts at {row.seq}"
        )
        return expected_seq, f"seq gap: event {missing} is missing ({before}) — an event was deleted"
    if row.prev_hash != prev_hash:
        return row.seq, (
            f"prev_hash mismatch: event {row.seq} does not link to event {row.seq - 1}'s hash — "
            "an event before it was replaced or re-hashed"
        )
    recomputed = event_hash(
        prev_hash=row.prev_hash,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        payload=row.payload,
    )
    if recomputed != row.hash:
        return row.seq, f"hash mismatch: event {row.seq}'s contents no longer match its hash — it was edited"
    return None
