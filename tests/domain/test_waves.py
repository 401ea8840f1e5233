"""The wave state machine as DESIGN.md draws it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import IllegalTransition
from bot.domain.waves import (
    ABORTABLE,
    TERMINAL,
    TRANSITIONS,
    Trigger,
    WaveState,
    allowed_triggers,
    next_state,
)

S, T = WaveState, Trigger

HAPPY_PATH = [
    (T.REQUEST, S.REQUESTED),
    (T.APPROVE, S.APPROVED),
    (T.START, S.EXECUTING),
    (T.VERIFY, S.VERIFYING),
    (T.BAKE, S.BAKING),
    (T.COMPLETE, S.COMPLETED),
]


def test_a_wave_walks_from_planned_to_completed_along_the_happy_path() -> None:
    state = S.PLANNED
    for trigger, expected in HAPPY_PATH:
        state = next_state(state, trigger).target
        assert state is expected


@pytest.mark.parametrize(
    ("source", "trigger", "target"),
    [
        (S.REQUESTED, T.DENY, S.DENIED),
        (S.REQUESTED, T.EXPIRE, S.EXPIRED),
        (S.DENIED, T.REPLAN, S.PLANNED),
        (S.EXPIRED, T.REPLAN, S.PLANNED),
        (S.EXECUTING, T.PAUSE, S.PAUSED),
        (S.PAUSED, T.RESUME, S.EXECUTING),
        (S.EXECUTING, T.FAIL, S.FAILED),
        (S.VERIFYING, T.FAIL, S.FAILED),
        (S.BAKING, T.CANARY_FAIL, S.CANARY_FAILED),
        (S.CANARY_FAILED, T.RESUME, S.BAKING),
        (S.COMPLETED, T.ROLLBACK, S.ROLLING_BACK),
        (S.CANARY_FAILED, T.ROLLBACK, S.ROLLING_BACK),
        (S.FAILED, T.ROLLBACK, S.ROLLING_BACK),
        (S.ROLLING_BACK, T.FINISH_ROLLBACK, S.ROLLED_BACK),
    ],
)
def test_every_side_branch_of_the_design_is_in_the_table(
    source: WaveState, trigger: Trigger, target: WaveState
) -> None:
    assert next_state(source, trigger).target is target


def test_every_non_terminal_state_but_completed_can_be_aborted() -> None:
    for state in WaveState:
        if state in TERMINAL or state is S.COMPLETED:
            with pytest.raises(IllegalTransition):
                next_state(state, T.ABORT)
        else:
            assert next_state(state, T.ABORT).target is S.ABORTED
    assert S.PLANNED in ABORTABLE and S.ROLLING_BACK in ABORTABLE


def test_nothing_leaves_a_terminal_state() -> None:
    for source, _trigger in TRANSITIONS:
        assert source not in TERMINAL
    for state in TERMINAL:
        assert allowed_triggers(state) == []


def test_an_illegal_trigger_says_what_the_state_allows() -> None:
    with pytest.raises(IllegalTransition) as caught:
        next_state(S.PLANNED, T.APPROVE, wave="wave 1 (stateless-web)")
    assert str(caught.value) == (
        "Can't approve wave 1 (stateless-web) while it is planned; from planned you can: request, abort."
    )


def test_a_trigger_on_a_finished_wave_says_it_is_final() -> None:
    with pytest.raises(IllegalTransition, match="rolled_back, which is final"):
        next_state(S.ROLLED_BACK, T.RESUME, wave="wave 2 (web)")


def test_every_state_is_reachable_from_planned() -> None:
    seen, frontier = {S.PLANNED}, [S.PLANNED]
    while frontier:
        state = frontier.pop()
        for trigger in allowed_triggers(state):
            target = next_state(state, trigger).target
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(WaveState)


@given(st.lists(st.sampled_from(list(Trigger)), max_size=40))
def test_any_trigger_sequence_either_moves_along_the_table_or_raises(triggers: list[Trigger]) -> None:
    state = S.PLANNED
    for trigger in triggers:
        expected = TRANSITIONS.get((state, trigger))
        if expected is None:
            with pytest.raises(IllegalTransition):
                next_state(state, trigger)
        else:
            state = next_state(state, trigger).target
            assert state is expected
