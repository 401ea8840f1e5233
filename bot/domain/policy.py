"""Who may trigger what. Pure: the actor's roles are resolved elsewhere (plan + Slack usergroups)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bot.domain.errors import Forbidden
from bot.domain.waves import Trigger


class Role(enum.StrEnum):
    SRE = "sre"
    TEAM_LEAD = "team_lead"
    ONCALL = "oncall"
    # The bot itself: the engine, the canary scheduler, expiry sweeps.
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Someone (or the bot) acting on a wave. `id` is a Slack user ID, or "migratebot" for the bot."""

    id: str
    roles: frozenset[Role] = field(default_factory=frozenset)

    @classmethod
    def system(cls) -> Actor:
        return cls("migratebot", frozenset({Role.SYSTEM}))

    @property
    def is_system(self) -> bool:
        return Role.SYSTEM in self.roles


R = Role
# Each trigger and the roles that may fire it. SYSTEM fires the engine's and the canary's own steps.
PERMISSIONS: dict[Trigger, frozenset[Role]] = {
    Trigger.REQUEST: frozenset({R.SRE}),
    Trigger.APPROVE: frozenset({R.TEAM_LEAD}),
    Trigger.DENY: frozenset({R.TEAM_LEAD}),
    Trigger.EXPIRE: frozenset({R.SYSTEM}),
    Trigger.REPLAN: frozenset({R.SRE, R.SYSTEM}),
    Trigger.START: frozenset({R.SYSTEM}),
    Trigger.PAUSE: frozenset({R.SRE, R.ONCALL, R.SYSTEM}),
    Trigger.RESUME: frozenset({R.SRE, R.ONCALL}),
    Trigger.VERIFY: frozenset({R.SYSTEM}),
    Trigger.BAKE: frozenset({R.SYSTEM}),
    Trigger.COMPLETE: frozenset({R.SYSTEM}),
    Trigger.FAIL: frozenset({R.SYSTEM}),
    Trigger.CANARY_FAIL: frozenset({R.SYSTEM}),
    Trigger.ROLLBACK: frozenset({R.TEAM_LEAD}),
    Trigger.FINISH_ROLLBACK: frozenset({R.SYSTEM}),
    Trigger.ABORT: frozenset({R.SRE, R.TEAM_LEAD}),
}

_ROLE_NAMES = {R.SRE: "SRE", R.TEAM_LEAD: "team lead", R.ONCALL: "on-call", R.SYSTEM: "migratebot itself"}


def describe_roles(roles: frozenset[Role]) -> str:
    names = [_ROLE_NAMES[r] for r in Role if r in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def authorize(trigger: Trigger, actor: Actor, *, requested_by: str | None = None, wave: str = "wave") -> None:
    """Raise Forbidden unless `actor` may fire `trigger`; approvals also keep the two-person rule."""
    needed = PERMISSIONS[trigger]
    if not actor.roles & needed:
        raise Forbidden(
            f"{actor.id} can't {trigger.value} {wave}: that needs the {describe_roles(needed)} role "
            "in the plan's roles — ask someone who has it, or have the plan grant it."
        )
    if trigger is Trigger.APPROVE and requested_by is not None and actor.id == requested_by:
        raise Forbidden(
            f"{actor.id} can't approve {wave}: they requested it, and a wave needs a second person's "
            "approval — ask another team lead."
        )


# Acknowledging an alert changes no wave state (it is not a Trigger): it stops the reminders and tells
# everyone someone is on it. On-call answers alerts.
ACKNOWLEDGE_ALERT: frozenset[Role] = frozenset({R.ONCALL})


def authorize_acknowledge(actor: Actor, *, what: str = "this alert") -> None:
    """Raise Forbidden unless `actor` may acknowledge alerts."""
    if not actor.roles & ACKNOWLEDGE_ALERT:
        raise Forbidden(
            f"{actor.id} can't acknowledge {what}: that needs the {describe_roles(ACKNOWLEDGE_ALERT)} role "
            "in the plan's roles — ask on-call, or have the plan add you under roles.oncall."
        )
