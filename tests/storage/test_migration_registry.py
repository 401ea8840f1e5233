"""Registering a cluster's plan: the migration and its waves appear once, and each change is audited."""

from __future__ import annotations

import threading

import pytest

from bot.domain.waves import WaveState
from storage.db import Database
from storage.errors import NotFound, PlanConflict
from storage.repositories import AuditRepository, MigrationRepository, MigrationStatus

WAVES = [(1, "stateless-web"), (2, "karpenter-general"), (3, "batch-and-data")]


def actions(audit: AuditRepository) -> list[tuple[str, str]]:
    return [(event.action, event.subject) for event in audit.events()]


def test_registering_a_plan_creates_the_migration_and_its_waves_with_one_event_each(
    database: Database,
) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    migration = migrations.register_plan("prod-eu", "a" * 64, WAVES, actor="U0SRE")
    assert (migration.cluster, migration.plan_hash, migration.status) == (
        "prod-eu",
        "a" * 64,
        MigrationStatus.ACTIVE,
    )
    waves = migrations.waves("prod-eu")
    assert [(w.index, w.name, w.state, w.version) for w in waves] == [
        (1, "stateless-web", WaveState.PLANNED, 1),
        (2, "karpenter-general", WaveState.PLANNED, 1),
        (3, "batch-and-data", WaveState.PLANNED, 1),
    ]
    assert actions(audit) == [
        ("migration.created", "migration:prod-eu"),
        ("wave.planned", "wave:prod-eu/stateless-web"),
        ("wave.planned", "wave:prod-eu/karpenter-general"),
        ("wave.planned", "wave:prod-eu/batch-and-data"),
    ]
    assert audit.events()[0].actor == "U0SRE"


def test_registering_the_same_plan_again_writes_nothing(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    first = migrations.register_plan("prod-eu", "a" * 64, WAVES, actor="bot")
    before = audit.events()
    again = migrations.register_plan("prod-eu", "a" * 64, list(reversed(WAVES)), actor="bot")
    assert again == first
    assert audit.events() == before


def test_a_changed_plan_updates_the_hash_and_adds_only_the_new_waves(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    migrations.register_plan("prod-eu", "a" * 64, WAVES[:2], actor="bot")
    changed = migrations.register_plan("prod-eu", "b" * 64, WAVES, actor="U0SRE")
    assert changed.plan_hash == "b" * 64
    assert [w.name for w in migrations.waves("prod-eu")] == [
        "stateless-web",
        "karpenter-general",
        "batch-and-data",
    ]
    assert actions(audit)[-2:] == [
        ("migration.plan_changed", "migration:prod-eu"),
        ("wave.planned", "wave:prod-eu/batch-and-data"),
    ]
    assert audit.events()[-2].payload == {"from": "a" * 64, "to": "b" * 64}


def test_a_plan_that_renames_a_registered_wave_is_refused_and_nothing_is_written(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    migrations.register_plan("prod-eu", "a" * 64, WAVES, actor="bot")
    before = audit.events()
    with pytest.raises(PlanConflict, match=r"wave 2 \(karpenter-general\) is already registered"):
        migrations.register_plan(
            "prod-eu", "b" * 64, [(1, "stateless-web"), (2, "renamed"), (4, "new")], actor="bot"
        )
    assert audit.events() == before
    assert migrations.get("prod-eu").plan_hash == "a" * 64  # type: ignore[union-attr]


def test_clusters_are_listed_and_read_back_by_name(database: Database) -> None:
    migrations = MigrationRepository(database)
    assert migrations.list() == []
    assert migrations.get("prod-eu") is None
    migrations.register_plan("prod-us", "a" * 64, WAVES[:1], actor="bot")
    migrations.register_plan("prod-eu", "a" * 64, WAVES[:1], actor="bot")
    assert [m.cluster for m in migrations.list()] == ["prod-eu", "prod-us"]
    wave = migrations.wave_by_name("prod-eu", "stateless-web")
    assert migrations.wave(wave.id) == wave
    assert (wave.cluster, wave.label, wave.subject) == (
        "prod-eu",
        "wave 1 (stateless-web)",
        "wave:prod-eu/stateless-web",
    )


def test_asking_for_a_wave_that_does_not_exist_lists_the_ones_that_do(database: Database) -> None:
    migrations = MigrationRepository(database)
    migrations.register_plan("prod-eu", "a" * 64, WAVES, actor="bot")
    with pytest.raises(NotFound, match="its waves are: stateless-web, karpenter-general, batch-and-data"):
        migrations.wave_by_name("prod-eu", "web")
    with pytest.raises(NotFound, match="cluster staging has no migration"):
        migrations.waves("staging")


def test_pausing_the_migration_is_audited_once(database: Database) -> None:
    migrations, audit = MigrationRepository(database), AuditRepository(database)
    migrations.register_plan("prod-eu", "a" * 64, WAVES, actor="bot")
    paused = migrations.set_status("prod-eu", MigrationStatus.PAUSED, actor="canary", reason="canary failed")
    migrations.set_status("prod-eu", MigrationStatus.PAUSED, actor="canary")
    assert paused.status is MigrationStatus.PAUSED
    changes = audit.events(action="migration.status_changed")
    assert [e.payload for e in changes] == [{"from": "active", "to": "paused", "reason": "canary failed"}]


def test_eight_replicas_registering_the_same_plan_at_once_create_it_once(database: Database) -> None:
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            start.wait()
            MigrationRepository(database).register_plan("prod-eu", "a" * 64, WAVES, actor="bot")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=replica) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    audit = AuditRepository(database)
    assert [action for action, _ in actions(audit)] == ["migration.created"] + ["wave.planned"] * 3
    assert audit.verify().ok
