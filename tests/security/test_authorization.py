"""Who may do what, end to end: every /migrate verb, every button and the App Home, for an SRE, a team
lead, on-call (named, and through the on-call usergroup) and someone the plan gives no role — each over
signed HTTP requests to migratebot, each from a wave of its own in the state the action needs.

The expectations are bot/domain/policy.py's PERMISSIONS and ACKNOWLEDGE_ALERT written out by hand: the
table, not the code under test, says who may. Allowed: the wave moves and the person is told. Refused:
the person is told which role it needs, and nothing but the refusal's audit event is written.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import pytest
from security_world import ALERTS, MIGRATION, PEOPLE, GuardedWorld, guarded_world

from bot.domain.waves import WaveState
from storage.models import MigrationStatus

SRE, LEAD, ONCALL, GROUP, NOBODY = "SRE", "team lead", "on-call", "on-call through the usergroup", "nobody"
EVERYONE = frozenset({SRE, LEAD, ONCALL, GROUP, NOBODY})
# examples/plan.yaml: alice is an SRE, carol a team lead, erin on-call by name, frank on-call only as a
# member of the usergroup S0ONCALL01, mallory is in the channels but the plan names her nowhere.
PERSON = {SRE: "alice", LEAD: "carol", ONCALL: "erin", GROUP: "frank", NOBODY: "mallory"}


class Given(enum.Enum):
    """Where the scenario's wave is when the person acts."""

    PLANNED = "planned"
    REQUESTED = "requested (by bob, an SRE, in Slack)"
    EXECUTING = "executing"
    PAUSED = "paused"
    ALERTED = "canary_failed, with an open alert"


P, RQ, EX, PA, AL = Given.PLANNED, Given.REQUESTED, Given.EXECUTING, Given.PAUSED, Given.ALERTED
S = WaveState


@dataclass(frozen=True)
class Row:
    """One thing people do: `/migrate <text>`, a click on `action_id`, or opening the App Home."""

    key: str  # also the scenario's cluster
    act: str  # "/migrate …", "click …" or "open home"
    given: Given
    may: frozenset[str]
    then: WaveState | None  # the wave when allowed (None: as given)
    told: str  # in the answer when allowed
    needs: str = ""  # the refusal says "needs the <needs> role"


def may(*roles: str) -> frozenset[str]:
    return frozenset(roles)


NOTHING = "Nothing was done"
# fmt: off
MATRIX: tuple[Row, ...] = (
    # Reading and help: anyone in the migration channel.
    Row("help",      "/migrate help",              P,  EVERYONE,                None, "*Usage:*"),
    Row("stat",      "/migrate status",            P,  EVERYONE,                None, "(stat-wave) planned"),
    Row("plan",      "/migrate plan",              P,  EVERYONE,                None, "plan hash"),
    Row("audit",     "/migrate audit 5",           P,  EVERYONE,                None, "audit events"),
    Row("canary",    "/migrate canary status",     P,  EVERYONE,                None, "has baked yet"),
    # A run is a measurement, not a change of state: no role; here there is nothing baking to measure.
    Row("canaryrun", "/migrate canary run",        P,  EVERYONE,                None, "no wave baking"),
    # Reports (they need the cluster, which this Slack-only migratebot can't reach) and capabilities
    # another issue brings: the same honest answer for everyone, and nothing done.
    Row("preview",   "/migrate preview",           P,  EVERYONE,                None, NOTHING),
    Row("readiness", "/migrate readiness 1",       P,  EVERYONE,                None, NOTHING),
    Row("security",  "/migrate security 1",        P,  EVERYONE,                None, NOTHING),
    Row("rollback",  "/migrate rollback 1",        EX, EVERYONE,                None, NOTHING),
    # PERMISSIONS: REQUEST → SRE; PAUSE → SRE, on-call (and the bot itself); RESUME → SRE, on-call;
    # ABORT → SRE, team lead.
    Row("next",      "/migrate next-wave",         P,  may(SRE),                S.REQUESTED,
        told="Requested wave 1", needs="SRE"),
    Row("pause",     "/migrate pause",             EX, may(SRE, ONCALL, GROUP), S.PAUSED,
        told="is now *paused*", needs="SRE, on-call or migratebot itself"),
    Row("resume",    "/migrate resume",            PA, may(SRE, ONCALL, GROUP), S.EXECUTING,
        told="is now *executing*", needs="SRE or on-call"),
    Row("abort",     "/migrate abort",             RQ, may(SRE, LEAD),          S.ABORTED,
        told="is now *aborted*", needs="SRE or team lead"),
    # APPROVE, DENY → team lead (never the requester: bob, an SRE, requested these).
    Row("approve",   "click wave_request.approve", RQ, may(LEAD),               S.APPROVED,
        told="You approved wave 1", needs="team lead"),
    Row("deny",      "click wave_request.deny",    RQ, may(LEAD),               S.DENIED,
        told="You denied wave 1", needs="team lead"),
    # ACKNOWLEDGE_ALERT → on-call; the alert's Resume is RESUME (SRE, on-call), Roll back is ROLLBACK
    # (team lead). Acknowledging moves no wave; its refusal is audited like the others.
    Row("ack",       "click alert.acknowledge",    AL, may(ONCALL, GROUP),      None,
        told="You acknowledged", needs="on-call"),
    Row("aresume",   "click alert.resume",         AL, may(SRE, ONCALL, GROUP), S.BAKING,
        told="You resumed wave 1", needs="SRE or on-call"),
    Row("arollback", "click alert.rollback",       AL, may(LEAD),               S.ROLLING_BACK,
        told="You started rolling back", needs="team lead"),
    # The App Home shows every cluster's waves to whoever opens it.
    Row("home",      "open home",                  P,  EVERYONE,                None, "home-wave"),
)
# fmt: on


@pytest.mark.parametrize("role", [SRE, LEAD, ONCALL, GROUP, NOBODY])
def test_each_role_may_do_exactly_what_the_policy_grants(role: str, tmp_path: Path) -> None:
    with guarded_world(tmp_path, [row.key for row in MATRIX]) as g:
        for row in MATRIX:
            _check(g, row, role)
        assert "Traceback" not in g.log.getvalue(), g.log.getvalue()


def _check(g: GuardedWorld, row: Row, role: str) -> None:
    name, where = PERSON[role], row.key
    ts, episode = _given(g, row.given, where)
    channel = ALERTS if episode is not None else MIGRATION
    before, audit = _state(g, where, episode), g.audit()
    answered = len(g.world.ephemerals(name, channel))
    person = g.world.people[name]
    context = f"{row.act} by {role}"

    if row.act == "open home":
        assert person.open_home().status == 200, context
        home = g.world.slack.workspace.wait_for(lambda ws: ws.home_view(name), timeout=10)
        assert row.told in str(home["blocks"]), context
        g.world.settle()
        assert (_state(g, where, episode), g.audit()) == (before, audit), context
        return
    if row.act.startswith("/migrate"):
        delivery = person.command(
            "/migrate", f"{row.act.removeprefix('/migrate ')} --cluster {where}", channel=channel
        )
    else:
        assert ts is not None, f"{context}: nothing to click"
        delivery = person.click(channel=channel, ts=ts, action_id=row.act.removeprefix("click "))
    assert delivery.status == 200 and delivery.acked_in_time, context
    g.world.wait_for_ephemeral(name, answered + 1, channel)
    g.world.settle()
    [answer] = g.world.ephemerals(name, channel)[answered:]
    after = _state(g, where, episode)
    added = g.audit()[len(audit) :]

    if role in row.may:
        assert not answer.startswith(":no_entry:") and row.told in answer, f"{context}: {answer}"
        expected = row.then or before[0]
        assert after[0] is expected, f"{context}: the wave is {after[0]}, not {expected}"
        if row.act == "click alert.acknowledge":
            assert after[4] == PEOPLE[name], f"{context}: not recorded as acknowledged by {name}"
        if row.then is None and row.act != "click alert.acknowledge":
            assert after == before and added == [], f"{context} changed {before} → {after}, {added}"
        else:
            assert any(actor == PEOPLE[name] for actor, _, _ in added), f"{context}: not audited as {name}"
    else:
        assert answer.startswith(":no_entry:"), f"{context}: {answer}"
        assert f"needs the {row.needs} role" in answer, f"{context}: {answer}"
        assert after == before, f"{context} was refused but changed {before} → {after}"
        # Every refusal appends access.denied, and nothing else.
        denied = [(PEOPLE[name], "access.denied", f"wave:{where}/{where}-wave")]
        assert added == denied, f"{context}: audited {added}"


def _given(g: GuardedWorld, given: Given, where: str) -> tuple[str | None, int | None]:
    """Bring the scenario's wave where the row starts; the message to click and the alert, if any."""
    if given is RQ:
        return g.requested(where), None
    if given is EX:
        g.executing(where)
    elif given is PA:
        g.paused(where)
    elif given is AL:
        alerted = g.alerted(where)
        return alerted.ts, alerted.episode
    return None, None


def _state(
    g: GuardedWorld, where: str, episode: int | None
) -> tuple[WaveState, int, int, MigrationStatus | None, str | None, bool]:
    """What a refusal must leave as it was: the wave, its approvals, the migration, the alert."""
    repos = g.world.bot.repositories
    wave = g.wave(where)
    migration = repos.migrations.get(where)
    seen = g.episode(episode) if episode is not None else None
    return (
        wave.state,
        wave.version,
        len(repos.approvals.approvals(wave.id)),
        migration.status if migration is not None else None,
        seen.acknowledged_by if seen is not None else None,
        seen is not None and seen.resolved_at is not None,
    )
