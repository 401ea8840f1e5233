"""Moving a wave: one transaction holds the new state and its audit event; of two racers, one wins."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import Any

import pytest

from bot.domain.errors import ConcurrentTransition, IllegalTransition
from bot.domain.waves import Trigger, WaveState
from storage.db import Database
from storage.repositories import AuditRepository, MigrationRepository, WaveView

THREADS = 20
PROCESSES = 4


def planned_wave(database: Database, name: str = "web") -> WaveView:
    migrations = MigrationRepository(database)
    migrations.register_plan("prod-eu", "a" * 64, [(1, "api"), (2, name)], actor="bot")
    return migrations.wave_by_name("prod-eu", name)


def test_a_request_moves_the_wave_bumps_its_version_and_is_audited_with_it(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    wave = planned_wave(database)
    requested = migrations.transition(
        wave.id,
        Trigger.REQUEST,
        actor="U0SRE",
        expected_version=1,
        payload={"note": "go"},
        snapshot_hash="s" * 64,
    )
    assert (requested.state, requested.version, requested.requested_by) == (WaveState.REQUESTED, 2, "U0SRE")
    assert requested.request_snapshot_hash == "s" * 64
    assert requested.entered_at(WaveState.REQUESTED) == requested.updated_at
    event = audit.events(action="wave.request")[0]
    assert (event.actor, event.subject) == ("U0SRE", "wave:prod-eu/web")
    assert event.payload == {"note": "go", "from": "planned", "to": "requested", "version": 2}
    assert migrations.wave(wave.id) == requested


def test_an_illegal_trigger_writes_nothing_and_says_what_is_possible(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    wave = planned_wave(database)
    before = audit.events()
    with pytest.raises(
        IllegalTransition,
        match=r"Can't approve wave 2 \(web\) while it is planned; from planned you can: request",
    ):
        migrations.transition(wave.id, Trigger.APPROVE, actor="U0LEAD", expected_version=1)
    assert migrations.wave(wave.id) == wave
    assert audit.events() == before


def test_a_stale_version_is_refused_with_what_the_wave_is_now(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    wave = planned_wave(database)
    migrations.transition(wave.id, Trigger.REQUEST, actor="U0SRE", expected_version=1)
    migrations.transition(wave.id, Trigger.APPROVE, actor="U0LEAD", expected_version=2)
    before = audit.events()
    with pytest.raises(ConcurrentTransition) as refused:
        migrations.transition(wave.id, Trigger.DENY, actor="U0OTHER", expected_version=2)
    assert str(refused.value) == (
        "wave 2 (web) changed while you acted: it is now approved (version 3) — "
        "check /migrate status and try again"
    )
    assert audit.events() == before


def test_the_version_strictly_increases_along_a_wave_s_life(database: Database) -> None:
    migrations = MigrationRepository(database)
    wave = planned_wave(database)
    path = [Trigger.REQUEST, Trigger.APPROVE, Trigger.START, Trigger.PAUSE, Trigger.RESUME, Trigger.VERIFY,
            Trigger.BAKE, Trigger.COMPLETE, Trigger.ROLLBACK, Trigger.FINISH_ROLLBACK]  # fmt: skip
    versions = [wave.version]
    for trigger in path:
        wave = migrations.transition(wave.id, trigger, actor="bot", expected_version=wave.version)
        versions.append(wave.version)
    assert versions == list(range(1, len(path) + 2))
    assert wave.state is WaveState.ROLLED_BACK
    for state in (WaveState.REQUESTED, WaveState.EXECUTING, WaveState.PAUSED, WaveState.COMPLETED):
        assert wave.entered_at(state) is not None
    assert wave.entered_at(WaveState.DENIED) is None


def test_first_start_is_kept_when_a_paused_wave_resumes(database: Database) -> None:
    migrations = MigrationRepository(database)
    wave = planned_wave(database)
    for trigger in (Trigger.REQUEST, Trigger.APPROVE, Trigger.START):
        wave = migrations.transition(wave.id, trigger, actor="bot", expected_version=wave.version)
    started = wave.entered_at(WaveState.EXECUTING)
    wave = migrations.transition(wave.id, Trigger.PAUSE, actor="bot", expected_version=wave.version)
    wave = migrations.transition(wave.id, Trigger.RESUME, actor="bot", expected_version=wave.version)
    assert wave.entered_at(WaveState.EXECUTING) == started


def test_a_replan_after_a_denial_starts_a_fresh_request_cycle(database: Database) -> None:
    migrations = MigrationRepository(database)
    wave = planned_wave(database)
    wave = migrations.transition(
        wave.id, Trigger.REQUEST, actor="U0SRE", expected_version=1, snapshot_hash="s" * 64
    )
    wave = migrations.transition(wave.id, Trigger.DENY, actor="U0LEAD", expected_version=2)
    wave = migrations.transition(wave.id, Trigger.REPLAN, actor="U0SRE", expected_version=3)
    assert (wave.state, wave.requested_by, wave.request_snapshot_hash) == (WaveState.PLANNED, None, None)
    assert wave.entered_at(WaveState.REQUESTED) is None
    assert wave.entered_at(WaveState.DENIED) is None
    wave = migrations.transition(wave.id, Trigger.REQUEST, actor="U0SRE2", expected_version=4)
    assert (wave.requested_by, wave.version) == ("U0SRE2", 5)


def test_secrets_in_a_transition_payload_are_stored_redacted(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    wave = planned_wave(database)
    migrations.transition(
        wave.id, Trigger.REQUEST, actor="U0SRE", expected_version=1,
        payload={"slack_token": "xoxb-123-456-abc", "note": "used Bearer abc.def to call", "ok": True},
    )  # fmt: skip
    payload = audit.events(action="wave.request")[0].payload
    assert payload["slack_token"] == "[redacted]"
    assert "abc.def" not in payload["note"]
    assert payload["ok"] is True
    assert audit.verify().ok


def test_a_payload_cannot_overwrite_what_the_transition_records(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    wave = planned_wave(database)
    migrations.transition(
        wave.id, Trigger.REQUEST, actor="U0SRE", expected_version=1, payload={"to": "completed"}
    )
    assert audit.events(action="wave.request")[0].payload["to"] == "requested"


def _race_outcome(database: Database, wave_id: int, start: threading.Barrier) -> str:
    start.wait()
    try:
        MigrationRepository(database).transition(wave_id, Trigger.REQUEST, actor="U0SRE", expected_version=1)
    except ConcurrentTransition:
        return "conflict"
    return "won"


def assert_one_winner(database: Database, wave_id: int, outcomes: list[str], racers: int) -> None:
    assert Counter(outcomes) == {"won": 1, "conflict": racers - 1}
    wave = MigrationRepository(database).wave(wave_id)
    assert (wave.state, wave.version) == (WaveState.REQUESTED, 2)
    audit = AuditRepository(database)
    assert len(audit.events(action="wave.request")) == 1
    verification = audit.verify()
    assert verification.ok, verification.reason


def test_twenty_threads_racing_the_same_request_leave_one_winner_and_one_event(database: Database) -> None:
    wave = planned_wave(database)
    start = threading.Barrier(THREADS)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            outcomes.append(_race_outcome(database, wave.id, start))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=racer) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert_one_winner(database, wave.id, outcomes, THREADS)


def _process_racer(url: str, wave_id: int, start: Any, results: Any) -> None:
    """Runs in a spawned process: its own engine, then the same request as everyone else."""
    with Database(url) as database:
        database.ping()
        try:
            start.wait(timeout=60)
            MigrationRepository(database).transition(
                wave_id, Trigger.REQUEST, actor="U0SRE", expected_version=1
            )
            results.put("won")
        except ConcurrentTransition:
            results.put("conflict")
        except BaseException as error:
            results.put(f"error: {error!r}")


@pytest.mark.slow
@pytest.mark.xdist_group("storage-processes")
def test_four_processes_racing_the_same_request_leave_one_winner_and_one_event(
    database: Database, migrated_url: str
) -> None:
    wave = planned_wave(database)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=_process_racer, args=(migrated_url, wave.id, start, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert_one_winner(database, wave.id, outcomes, PROCESSES)
