"""Wave states and the transitions between them, as a table you can read at a glance.

    planned → requested → approved → executing → verifying → baking → completed
    requested → denied | expired → planned          executing → paused → executing
    executing | verifying → failed                  baking → canary_failed → (resume) baking
    completed | canary_failed | failed → rolling_back → rolled_back
    any non-terminal → aborted

`completed` is an outcome, not a terminal state: only a rollback leaves it, and there is nothing
left to abort in it. `aborted` and `rolled_back` are terminal: nothing leaves them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.domain.errors import IllegalTransition


class WaveState(enum.StrEnum):
    PLANNED = "planned"
    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    EXECUTING = "executing"
    PAUSED = "paused"
    VERIFYING = "verifying"
    BAKING = "baking"
    CANARY_FAILED = "canary_failed"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


class Trigger(enum.StrEnum):
    REQUEST = "request"
    APPROVE = "approve"
    DENY = "deny"
    EXPIRE = "expire"
    REPLAN = "replan"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    VERIFY = "verify"
    BAKE = "bake"
    COMPLETE = "complete"
    FAIL = "fail"
    CANARY_FAIL = "canary_fail"
    ROLLBACK = "rollback"
    FINISH_ROLLBACK = "finish_rollback"
    ABORT = "abort"


S, T = WaveState, Trigger

TERMINAL: frozenset[WaveState] = frozenset({S.ABORTED, S.ROLLED_BACK})

# (from state, trigger) → to state. Abort is added below for every state that can be aborted.
TRANSITIONS: dict[tuple[WaveState, Trigger], WaveState] = {
    (S.PLANNED, T.REQUEST): S.REQUESTED,
    (S.REQUESTED, T.APPROVE): S.APPROVED,
    (S.REQUESTED, T.DENY): S.DENIED,
    (S.REQUESTED, T.EXPIRE): S.EXPIRED,
    (S.DENIED, T.REPLAN): S.PLANNED,
    (S.EXPIRED, T.REPLAN): S.PLANNED,
    (S.APPROVED, T.START): S.EXECUTING,
    (S.EXECUTING, T.PAUSE): S.PAUSED,
    (S.PAUSED, T.RESUME): S.EXECUTING,
    (S.EXECUTING, T.VERIFY): S.VERIFYING,
    (S.VERIFYING, T.BAKE): S.BAKING,
    (S.BAKING, T.COMPLETE): S.COMPLETED,
    (S.EXECUTING, T.FAIL): S.FAILED,
    (S.VERIFYING, T.FAIL): S.FAILED,
    (S.BAKING, T.CANARY_FAIL): S.CANARY_FAILED,
    (S.CANARY_FAILED, T.RESUME): S.BAKING,
    (S.COMPLETED, T.ROLLBACK): S.ROLLING_BACK,
    (S.CANARY_FAILED, T.ROLLBACK): S.ROLLING_BACK,
    (S.FAILED, T.ROLLBACK): S.ROLLING_BACK,
    (S.ROLLING_BACK, T.FINISH_ROLLBACK): S.ROLLED_BACK,
}
ABORTABLE: frozenset[WaveState] = frozenset(WaveState) - TERMINAL - {S.COMPLETED}
TRANSITIONS.update({(state, T.ABORT): S.ABORTED for state in ABORTABLE})

# States in which the engine owns the wave's nodes: at most one wave of a migration may be in one.
ACTIVE: frozenset[WaveState] = frozenset(
    {S.APPROVED, S.EXECUTING, S.PAUSED, S.VERIFYING, S.BAKING, S.CANARY_FAILED, S.ROLLING_BACK}
)


@dataclass(frozen=True)
class Transition:
    source: WaveState
    trigger: Trigger
    target: WaveState


def allowed_triggers(state: WaveState) -> list[Trigger]:
    return [trigger for (source, trigger) in TRANSITIONS if source is state]


def next_state(state: WaveState, trigger: Trigger, *, wave: str = "wave") -> Transition:
    """The transition `trigger` causes from `state`, or IllegalTransition saying what is possible."""
    target = TRANSITIONS.get((state, trigger))
    if target is None:
        if state in TERMINAL:
            raise IllegalTransition(
                f"Can't {trigger.value} {wave}: it is {state.value}, which is final — "
                "plan a new wave instead."
            )
        options = ", ".join(t.value for t in allowed_triggers(state)) or "none"
        raise IllegalTransition(
            f"Can't {trigger.value} {wave} while it is {state.value}; from {state.value} you can: {options}."
        )
    return Transition(state, trigger, target)
