"""Moving a wave: authorize the actor against the state read, then transition with that version."""

from __future__ import annotations

from typing import Any

from bot.domain.errors import Forbidden
from bot.domain.policy import Actor, authorize
from bot.domain.waves import Trigger
from storage.repositories import AuditRepository, MigrationRepository, WaveView


class WaveService:
    def __init__(self, migrations: MigrationRepository, audit: AuditRepository) -> None:
        self._migrations = migrations
        self._audit = audit

    def fire(
        self,
        cluster: str,
        wave_name: str,
        trigger: Trigger,
        actor: Actor,
        payload: dict[str, Any] | None = None,
        *,
        expected_version: int | None = None,
    ) -> WaveView:
        """Fire `trigger` on the wave as `actor`. Forbidden is audited; conflicts and illegal moves are not
        (nothing happened), and all three leave the wave as it was. With `expected_version` the wave
        moves only if it is still at the version the caller decided on (else ConcurrentTransition)."""
        wave = self._migrations.wave_by_name(cluster, wave_name)
        try:
            authorize(trigger, actor, requested_by=wave.requested_by, wave=wave.label)
        except Forbidden as refusal:
            self._audit.append(
                actor=actor.id,
                action="access.denied",
                subject=wave.subject,
                payload={"trigger": trigger.value, "state": wave.state.value, "reason": str(refusal)},
            )
            raise
        return self._migrations.transition(
            wave.id,
            trigger,
            actor=actor.id,
            expected_version=wave.version if expected_version is None else expected_version,
            payload=payload,
        )
