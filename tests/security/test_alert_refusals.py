"""Alert buttons refused for want of a role: the refusal must hold whatever state the wave is in by
then, and be audited like every other refusal (AlertDesk.acknowledge / AlertDesk.resume)."""

from __future__ import annotations

from pathlib import Path

from security_world import ALERTS, PEOPLE, guarded_world

from bot.domain.policy import Actor
from bot.domain.waves import Trigger, WaveState
from bot.engine.events import EngineAlert, WaveRef
from storage.models import MigrationStatus


def test_someone_without_a_role_cant_unpause_the_migration_from_an_engine_alert(tmp_path: Path) -> None:
    with guarded_world(tmp_path, ["stuck"]) as g:
        world, repos = g.world, g.world.bot.repositories
        g.executing("stuck")
        wave = g.waves.fire("stuck", "stuck-wave", Trigger.VERIFY, Actor.system())
        # The engine can't get the new nodes Ready: the migration pauses, on-call is alerted; the wave
        # stays `verifying` (only executing and baking waves move when an alert opens).
        ref = WaveRef(wave.cluster, wave.id, wave.index, wave.name)
        alert = g.desk.engine_alert(EngineAlert(ref, "node_not_ready", "ip-10-0-1-5 never became Ready"))
        assert alert.episode.message_ts and g.wave("stuck").state is WaveState.VERIFYING
        assert repos.migrations.get("stuck").status is MigrationStatus.PAUSED  # type: ignore[union-attr]

        world.people["mallory"].click(channel=ALERTS, ts=alert.episode.message_ts, action_id="alert.resume")
        answer = world.wait_for_ephemeral("mallory", channel=ALERTS)[-1]
        world.settle()
        assert answer.startswith(":no_entry:") and "needs the SRE or on-call role" in answer, answer
        assert repos.migrations.get("stuck").status is MigrationStatus.PAUSED  # type: ignore[union-attr]
        assert g.episode(alert.episode.id).resolved_at is None


def test_a_refused_acknowledgement_is_audited(tmp_path: Path) -> None:
    with guarded_world(tmp_path, ["alerted"]) as g:
        world = g.world
        alert = g.alerted("alerted")
        audited = len(g.audit())
        world.people["alice"].click(channel=ALERTS, ts=alert.ts, action_id="alert.acknowledge")
        assert "needs the on-call role" in world.wait_for_ephemeral("alice", channel=ALERTS)[-1]
        world.settle()
        assert g.episode(alert.episode).acknowledged_by is None
        assert g.audit()[audited:] == [(PEOPLE["alice"], "access.denied", "wave:alerted/alerted-wave")]
