"""Who may do what to a wave."""

from __future__ import annotations

import pytest

from bot.domain.errors import Forbidden
from bot.domain.policy import PERMISSIONS, Actor, Role, authorize
from bot.domain.waves import Trigger

SRE = Actor("U0SRE00001", frozenset({Role.SRE}))
LEAD = Actor("U0LEAD0001", frozenset({Role.TEAM_LEAD}))
ONCALL = Actor("U0ONCALL01", frozenset({Role.ONCALL}))
NOBODY = Actor("U0VISITOR1")


@pytest.mark.parametrize(
    ("trigger", "actor"),
    [
        (Trigger.REQUEST, SRE),
        (Trigger.APPROVE, LEAD),
        (Trigger.DENY, LEAD),
        (Trigger.PAUSE, SRE),
        (Trigger.PAUSE, ONCALL),
        (Trigger.RESUME, SRE),
        (Trigger.RESUME, ONCALL),
        (Trigger.ROLLBACK, LEAD),
        (Trigger.ABORT, SRE),
        (Trigger.START, Actor.system()),
        (Trigger.CANARY_FAIL, Actor.system()),
        (Trigger.PAUSE, Actor.system()),
    ],
)
def test_the_roles_of_the_design_may_act(trigger: Trigger, actor: Actor) -> None:
    authorize(trigger, actor)


@pytest.mark.parametrize(
    ("trigger", "actor", "needed"),
    [
        (Trigger.REQUEST, LEAD, "SRE"),
        (Trigger.APPROVE, SRE, "team lead"),
        (Trigger.ROLLBACK, ONCALL, "team lead"),
        (Trigger.PAUSE, NOBODY, "SRE, on-call or migratebot itself"),
        (Trigger.START, SRE, "migratebot itself"),
    ],
)
def test_a_refusal_names_the_role_that_is_needed(trigger: Trigger, actor: Actor, needed: str) -> None:
    with pytest.raises(Forbidden) as caught:
        authorize(trigger, actor, wave="wave 1 (stateless-web)")
    assert f"needs the {needed} role" in str(caught.value)
    assert actor.id in str(caught.value)


def test_the_requester_can_never_approve_their_own_wave_even_as_a_team_lead() -> None:
    both = Actor("U0BOTH0001", frozenset({Role.SRE, Role.TEAM_LEAD}))
    with pytest.raises(Forbidden, match="they requested it, and a wave needs a second person"):
        authorize(Trigger.APPROVE, both, requested_by="U0BOTH0001")
    authorize(Trigger.APPROVE, LEAD, requested_by="U0BOTH0001")


def test_every_trigger_has_a_permission_row() -> None:
    assert set(PERMISSIONS) == set(Trigger)
