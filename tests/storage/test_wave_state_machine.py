"""Random trigger sequences against the real repository, checked against a pure model of the table."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from bot.domain.errors import ConcurrentTransition, IllegalTransition
from bot.domain.waves import TERMINAL, TRANSITIONS, Trigger, WaveState, allowed_triggers
from storage.db import Database
from storage.repositories import AuditRepository, MigrationRepository

WAVES = [(1, "web"), (2, "batch")]


def machine_over(database: Database) -> type[RuleBasedStateMachine]:
    class WaveLife(RuleBasedStateMachine):
        """Each run gets its own cluster in one shared SQLite file, so runs never see each other."""

        def __init__(self) -> None:
            super().__init__()
            self.migrations = MigrationRepository(database)
            self.audit = AuditRepository(database)
            self.cluster = f"c-{uuid.uuid4().hex[:12]}"
            self.migrations.register_plan(self.cluster, "p" * 64, WAVES, actor="bot")
            waves = self.migrations.waves(self.cluster)
            self.ids = [wave.id for wave in waves]
            # The pure model: state and version per wave, and how many transitions were audited.
            self.model = {wave.id: (WaveState.PLANNED, 1) for wave in waves}
            self.moves = {wave.id: 0 for wave in waves}
            self.names = {wave.id: wave.name for wave in waves}

        @rule(
            which=st.integers(0, len(WAVES) - 1),
            trigger=st.sampled_from(Trigger),
            lag=st.sampled_from([0, 0, 0, 1, 2]),
        )
        def fire(self, which: int, trigger: Trigger, lag: int) -> None:
            wave_id = self.ids[which]
            state, version = self.model[wave_id]
            expected = max(1, version - lag)
            target = TRANSITIONS.get((state, trigger))
            try:
                view = self.migrations.transition(wave_id, trigger, actor="U0SRE", expected_version=expected)
            except ConcurrentTransition:
                assert expected != version
            except IllegalTransition:
                assert expected == version
                assert target is None
            else:
                assert expected == version
                assert target is not None
                assert state not in TERMINAL
                assert (view.state, view.version) == (target, version + 1)
                self.model[wave_id] = (target, version + 1)
                event(f"reached {target.value}")
                self.moves[wave_id] += 1

        @rule(which=st.integers(0, len(WAVES) - 1), data=st.data())
        def fire_a_legal_trigger(self, which: int, data: st.DataObject) -> None:
            """Random triggers rarely get far; this walks the table so deep states are reached too."""
            state, _ = self.model[self.ids[which]]
            # Abort is left to the random rule: offered here it would end most walks early.
            options = [trigger for trigger in allowed_triggers(state) if trigger is not Trigger.ABORT]
            if options:
                self.fire(which, data.draw(st.sampled_from(options)), 0)

        @invariant()
        def the_database_matches_the_model(self) -> None:
            for wave in self.migrations.waves(self.cluster):
                assert (wave.state, wave.version) == self.model[wave.id]

        @invariant()
        def every_state_change_has_exactly_one_audit_event(self) -> None:
            for wave_id, name in self.names.items():
                events = self.audit.events(subject=f"wave:{self.cluster}/{name}")
                changes = [e for e in events if e.action != "wave.planned"]
                assert len(changes) == self.moves[wave_id]
                assert [e.payload["version"] for e in changes] == list(range(2, self.moves[wave_id] + 2))

        def teardown(self) -> None:
            verification = self.audit.verify()
            assert verification.ok, verification.reason

    return WaveLife


def test_random_trigger_sequences_follow_the_table_and_audit_every_change(sqlite_database: Database) -> None:
    run_state_machine_as_test(
        machine_over(sqlite_database),
        settings=settings(
            max_examples=15,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
