"""The audit log: append-only, hash-chained, verifiable end to end, and free of secrets."""

from __future__ import annotations

import json
import multiprocessing
import threading
from typing import Any

import pytest
from sqlalchemy import text

from bot.domain.audit import GENESIS_HASH, event_hash
from storage.db import Database
from storage.repositories import AuditRepository

THREADS = 20
PER_THREAD = 5
PROCESSES = 4
PER_PROCESS = 10


def fill(audit: AuditRepository, events: int) -> None:
    for n in range(1, events + 1):
        audit.append(f"U0{n}", "wave.request", f"wave:prod-eu/w{n}", {"n": n})


def test_events_link_from_genesis_in_strictly_increasing_seq(database: Database) -> None:
    audit = AuditRepository(database)
    first = audit.append("U0SRE", "wave.request", "wave:prod-eu/web", {"note": "go"})
    second = audit.append("U0LEAD", "wave.approve", "wave:prod-eu/web", {})
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert first.hash == event_hash(
        prev_hash=GENESIS_HASH, seq=1, at=first.at, actor="U0SRE", action="wave.request",
        subject="wave:prod-eu/web", payload={"note": "go"},
    )  # fmt: skip
    assert first.at.tzinfo is not None
    assert first.at <= second.at
    assert audit.verify().ok
    assert audit.verify().count == 2


def test_an_empty_log_verifies(database: Database) -> None:
    result = AuditRepository(database).verify()
    assert (result.ok, result.count, result.first_broken_seq) == (True, 0, None)


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE audit_events SET actor = 'U0MALLORY' WHERE seq = 3",
        "UPDATE audit_events SET payload = '{\"n\": 99}' WHERE seq = 3",
        "UPDATE audit_events SET action = 'wave.deny' WHERE seq = 3",
    ],
    ids=["actor", "payload", "action"],
)
def test_verify_names_the_first_event_edited_by_hand(database: Database, edit: str) -> None:
    audit = AuditRepository(database)
    fill(audit, 5)
    with database.connect() as connection:
        connection.execute(text(edit))
    result = audit.verify()
    assert (result.ok, result.first_broken_seq, result.count) == (False, 3, 2)
    assert result.reason is not None
    assert result.reason.startswith("hash mismatch: event 3")


def test_an_edit_that_recomputes_the_hash_breaks_the_next_link(database: Database) -> None:
    audit = AuditRepository(database)
    fill(audit, 5)
    third = next(e for e in audit.events() if e.seq == 3)
    forged = event_hash(
        prev_hash=third.prev_hash, seq=3, at=third.at, actor="U0MALLORY", action=third.action,
        subject=third.subject, payload=third.payload,
    )  # fmt: skip
    with database.connect() as connection:
        connection.execute(
            text("UPDATE audit_events SET actor = 'U0MALLORY', hash = :h WHERE seq = 3"), {"h": forged}
        )
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 4)
    assert result.reason is not None
    assert result.reason.startswith("prev_hash mismatch: event 4")


def test_a_deleted_event_is_reported_as_a_seq_gap(database: Database) -> None:
    audit = AuditRepository(database)
    fill(audit, 5)
    with database.connect() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert result.reason is not None
    assert result.reason.startswith("seq gap: event 2 is missing (1 is followed by 3)")


def test_deleting_the_newest_events_is_caught_by_the_chain_head(database: Database) -> None:
    audit = AuditRepository(database)
    fill(audit, 5)
    with database.connect() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE seq >= 4"))
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 4)
    assert result.reason is not None
    assert "events 4..5 are missing" in result.reason


def test_secret_keys_and_values_never_reach_a_stored_payload(database: Database) -> None:
    audit = AuditRepository(database)
    audit.append(
        "U0SRE", "settings.changed", "bot",
        {"SLACK_BOT_TOKEN": "xoxb-1-2-3", "nested": {"password": "hunter2", "url": "postgresql://bot:pw@db/x"},
         "notes": ["AKIAABCDEFGHIJKLMNOP"], "nodes": 3},
    )  # fmt: skip
    with database.connect() as connection:
        raw = connection.execute(text("SELECT payload FROM audit_events WHERE seq = 1")).scalar_one()
    stored = json.dumps(raw) if not isinstance(raw, str) else raw
    for secret in ("xoxb-1-2-3", "hunter2", ":pw@", "AKIAABCDEFGHIJKLMNOP"):
        assert secret not in stored
    assert audit.events()[0].payload["nodes"] == 3
    assert audit.verify().ok


def test_export_streams_every_event_in_order_as_json_ready_dicts(database: Database) -> None:
    audit = AuditRepository(database)
    fill(audit, 7)
    exported = list(audit.export())
    assert [event["seq"] for event in exported] == list(range(1, 8))
    assert exported[0]["action"] == "wave.request"
    assert exported[0]["at"].endswith("Z")
    assert exported[1]["prev_hash"] == exported[0]["hash"]
    json.dumps(exported)


def test_twenty_threads_appending_at_once_keep_one_gapless_chain(database: Database) -> None:
    audit = AuditRepository(database)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(PER_THREAD):
                audit.append(f"T{n}", "test.append", f"thread:{n}", {"i": i})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    result = audit.verify()
    assert result.ok, result.reason
    assert result.count == THREADS * PER_THREAD
    assert [e.seq for e in audit.events()] == list(range(1, THREADS * PER_THREAD + 1))


def _process_writer(url: str, n: int, start: Any, done: Any) -> None:
    with Database(url) as database:
        audit = AuditRepository(database)
        try:
            start.wait(timeout=60)
            for i in range(PER_PROCESS):
                audit.append(f"P{n}", "test.append", f"process:{n}", {"i": i})
            done.put("ok")
        except BaseException as error:
            done.put(f"error: {error!r}")


@pytest.mark.slow
@pytest.mark.xdist_group("storage-processes")
def test_four_processes_appending_at_once_keep_one_gapless_chain(
    database: Database, migrated_url: str
) -> None:
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=_process_writer, args=(migrated_url, n, start, done)) for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [done.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert outcomes == ["ok"] * PROCESSES
    result = AuditRepository(database).verify()
    assert result.ok, result.reason
    assert result.count == PROCESSES * PER_PROCESS


def test_no_repository_offers_a_way_to_change_or_remove_an_event() -> None:
    public = {name for name in dir(AuditRepository) if not name.startswith("_")}
    assert public == {"append", "events", "verify", "export"}
