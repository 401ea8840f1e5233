"""Inside a wave: approvals bound to what was seen, the nodes it moves, and the engine's step journal."""

from __future__ import annotations

import datetime as dt

import pytest

from storage.db import Database
from storage.errors import AlreadyDecided, NotFound
from storage.repositories import (
    ApprovalDecision,
    ApprovalRepository,
    AuditRepository,
    MigrationRepository,
    NodeRecord,
    StepJournalRepository,
    StepStatus,
    WaveNodeRepository,
    WaveView,
)

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def wave_of(database: Database) -> WaveView:
    migrations = MigrationRepository(database)
    migrations.register_plan("prod-eu", "p" * 64, [(1, "web")], actor="bot")
    return migrations.wave_by_name("prod-eu", "web")


def test_an_approval_is_stored_with_the_plan_and_snapshot_seen_and_audited(database: Database) -> None:
    wave = wave_of(database)
    approvals, audit = ApprovalRepository(database, clock=lambda: NOW), AuditRepository(database)
    approval = approvals.record_approval(
        wave.id, user_id="U0LEAD", decision=ApprovalDecision.APPROVE, plan_hash="p" * 64,
        snapshot_hash="s" * 64, expires_at=NOW + dt.timedelta(hours=1),
    )  # fmt: skip
    assert approvals.approvals(wave.id) == [approval]
    assert approval.created_at == NOW
    assert not approval.is_expired(NOW)
    assert approval.is_expired(NOW + dt.timedelta(hours=2))
    event = audit.events(action="approval.recorded")[0]
    assert (event.actor, event.subject) == ("U0LEAD", "wave:prod-eu/web")
    assert event.payload["decision"] == "approve"
    assert event.payload["expires_at"] == "2026-11-25T10:00:00Z"


def test_the_same_decision_twice_is_recorded_once_and_a_change_of_mind_is_refused(database: Database) -> None:
    wave = wave_of(database)
    approvals, audit = ApprovalRepository(database), AuditRepository(database)
    first = approvals.record_approval(
        wave.id, user_id="U0LEAD", decision=ApprovalDecision.APPROVE, plan_hash="p"
    )
    again = approvals.record_approval(
        wave.id, user_id="U0LEAD", decision=ApprovalDecision.APPROVE, plan_hash="p"
    )
    assert again == first
    with pytest.raises(AlreadyDecided, match=r"U0LEAD already chose approve on wave 1 \(web\)"):
        approvals.record_approval(wave.id, user_id="U0LEAD", decision=ApprovalDecision.DENY, plan_hash="p")
    assert len(audit.events(action="approval.recorded")) == 1


def test_nodes_are_upserted_keeping_their_step_status(database: Database) -> None:
    wave = wave_of(database)
    nodes = WaveNodeRepository(database)
    nodes.upsert_wave_nodes(
        wave.id,
        [NodeRecord("ip-10-0-1-1", "i-1", "al2", "nodegroup/al2-web", "eu-west-1a"),
         NodeRecord("ip-10-0-1-2", "i-2", "al2", "nodegroup/al2-web", "eu-west-1b")],
    )  # fmt: skip
    nodes.set_node_step(wave.id, "ip-10-0-1-1", "drained")
    refreshed = nodes.upsert_wave_nodes(
        wave.id, [NodeRecord("ip-10-0-1-1", "i-1", "al2", "nodegroup/al2-web", "eu-west-1c")]
    )
    assert [(n.node_name, n.zone, n.step_status) for n in refreshed] == [
        ("ip-10-0-1-1", "eu-west-1c", "drained"),
        ("ip-10-0-1-2", "eu-west-1b", "pending"),
    ]
    assert nodes.nodes(wave.id) == refreshed
    with pytest.raises(NotFound, match="node ip-9 is not part of wave"):
        nodes.set_node_step(wave.id, "ip-9", "drained")


def test_a_step_that_succeeded_is_returned_as_done_and_not_started_again(database: Database) -> None:
    wave = wave_of(database)
    journal = StepJournalRepository(database)
    started = journal.journal_start(wave.id, "cordon:ip-1", "cordon", "node/ip-1", {"by": "engine"})
    assert (started.status, started.attempt, started.done) == (StepStatus.STARTED, 1, False)
    finished = journal.journal_finish(wave.id, "cordon:ip-1", StepStatus.SUCCEEDED, {"took_s": 1.5})
    assert finished.detail == {"by": "engine", "took_s": 1.5}
    assert finished.finished_at is not None
    again = journal.journal_start(wave.id, "cordon:ip-1", "cordon", "node/ip-1")
    assert again == finished
    assert again.done


def test_a_failed_or_interrupted_step_starts_its_next_attempt(database: Database) -> None:
    wave = wave_of(database)
    journal = StepJournalRepository(database)
    journal.journal_start(wave.id, "drain:ip-1", "drain", "node/ip-1")
    interrupted = journal.journal_start(wave.id, "drain:ip-1", "drain", "node/ip-1")
    assert (interrupted.attempt, interrupted.status) == (2, StepStatus.STARTED)
    journal.journal_finish(wave.id, "drain:ip-1", StepStatus.FAILED, {"error": "PDB blocks eviction"})
    retried = journal.journal_start(wave.id, "drain:ip-1", "drain", "node/ip-1")
    assert (retried.attempt, retried.status, retried.finished_at) == (3, StepStatus.STARTED, None)
    assert [s.key for s in journal.journal(wave.id)] == ["drain:ip-1"]


def test_finishing_a_step_never_started_is_refused(database: Database) -> None:
    wave = wave_of(database)
    with pytest.raises(NotFound, match="never started"):
        StepJournalRepository(database).journal_finish(wave.id, "nope", StepStatus.SUCCEEDED)
