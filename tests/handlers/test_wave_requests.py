"""People request, approve and deny waves in Slack; migratebot re-checks every decision on the server."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import aiohttp
from bot_world import (
    ALERTS,
    CLUSTER,
    EXAMPLE_PLAN,
    MIGRATION,
    PEOPLE,
    RANDOM,
    World,
    WorldFactory,
    buttons,
    eventually,
    open_world,
    with_payload,
)

from bot.domain.waves import WaveState
from sandbox.slack import send_async


def test_an_sre_requests_the_next_wave_the_requester_cant_approve_and_a_team_lead_approves(
    tmp_path: Path, database_url: str
) -> None:
    for world in WorldFactory(tmp_path)(database_url=database_url):
        _request_then_approve(world)


def _request_then_approve(world: World) -> None:
    people = world.people

    asked = people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    assert asked.acked_in_time
    [answer] = world.wait_for_ephemeral("alice")
    assert "Requested wave 1 (stateless-web)" in answer

    [request] = world.requests()
    assert request["bot_id"]
    assert "Wave 1 (stateless-web) requested" in request["text"]
    values = buttons(request)
    assert set(values) == {"wave_request.approve", "wave_request.deny"}
    # Opaque ids only: the wave's id and version, nothing about people or the plan.
    assert set(values.values()) == {"w1.v2"}
    shown = world.slack.transcript(MIGRATION)
    # This world has no cluster: the request says the reports need it instead of showing a verdict.
    assert "managed_node_groups=ng-web" in shown and "the reports need the cluster" in shown
    assert world.waves()["stateless-web"] == "requested"

    refused = people["alice"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    assert refused.acked_in_time
    assert "team lead" in world.wait_for_ephemeral("alice", 2)[-1]
    assert world.waves()["stateless-web"] == "requested"
    assert "access.denied" in world.audit_actions()

    approved = people["carol"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    assert approved.acked_in_time
    assert "you approved wave 1" in world.wait_for_ephemeral("carol")[-1].lower()
    [updated] = world.requests()
    assert updated["ts"] == request["ts"]  # in place
    assert updated.get("edited")
    assert buttons(updated) == {}  # decided buttons removed
    assert "Approved* by <@U0LEAD0001>" in str(updated["blocks"])
    assert world.waves()["stateless-web"] == "approved"
    verification = world.bot.repositories.audit.verify()
    assert verification.ok, verification.reason


def test_a_user_without_the_role_is_refused_and_the_refusal_is_audited(world: World) -> None:
    world.people["mallory"].command("/migrate", "next-wave", channel="eks-migration")
    [answer] = world.wait_for_ephemeral("mallory")
    assert "needs the SRE role" in answer
    assert world.requests() == []
    assert world.waves()["stateless-web"] == "planned"
    [denied] = world.bot.repositories.audit.events(action="access.denied")
    assert denied.actor == PEOPLE["mallory"] and denied.payload["trigger"] == "request"


def test_a_team_lead_cant_request_and_an_sre_cant_approve(world: World) -> None:
    world.people["carol"].command("/migrate", "next-wave", channel="eks-migration")
    assert "SRE role" in world.wait_for_ephemeral("carol")[-1]
    world.people["bob"].command("/migrate", "next-wave", channel="eks-migration")
    world.wait_for_ephemeral("bob")
    [request] = world.requests()
    world.people["alice"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    assert "team lead" in world.wait_for_ephemeral("alice")[-1]
    assert world.waves()["stateless-web"] == "requested"


def test_an_action_payload_copied_to_another_user_or_forged_is_refused(world: World) -> None:
    people = world.people
    people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    world.wait_for_ephemeral("alice")
    [request] = world.requests()
    carols = people["carol"].build_click(
        channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve"
    )

    def as_mallory(payload: dict[str, object]) -> None:
        payload["user"] = {"id": PEOPLE["mallory"], "username": "mallory", "name": "mallory"}

    def other_channel(payload: dict[str, object]) -> None:
        payload["channel"] = {"id": RANDOM, "name": "random"}
        payload["container"] = {**payload["container"], "channel_id": RANDOM}  # type: ignore[dict-item]

    def other_wave(payload: dict[str, object]) -> None:
        payload["actions"][0]["value"] = "w2.v1"  # type: ignore[index]

    def tampered(payload: dict[str, object]) -> None:
        payload["actions"][0]["value"] = "w1.v2;approve=all"  # type: ignore[index]

    def other_message(payload: dict[str, object]) -> None:
        payload["container"] = {**payload["container"], "message_ts": "1700000000.000100"}  # type: ignore[dict-item]

    for forge in (as_mallory, other_channel, other_wave, tampered, other_message):
        # Each forgery is a new delivery (a replay of the same trigger_id is dropped before any check).
        def forged(payload: dict[str, object], forge: object = forge) -> None:
            forge(payload)  # type: ignore[operator]
            payload["trigger_id"] = f"{payload['trigger_id']}.{forge.__name__}"  # type: ignore[attr-defined]

        delivery = people.send(with_payload(carols, forged))
        assert delivery.status == 200, forge.__name__
        world.settle()
        assert world.waves()["stateless-web"] == "requested", forge.__name__
    assert world.bot.repositories.approvals.approvals(1) == []
    refusals = world.bot.repositories.audit.events(action="slack.action_refused")
    assert len(refusals) == 4
    assert len(world.bot.repositories.audit.events(action="access.denied")) == 1  # mallory
    # The genuine click still works afterwards.
    # (Its answer can't be shown: the forgeries used up the response_url's five uses, as on Slack.)
    people.send(carols)
    world.settle()
    assert world.waves()["stateless-web"] == "approved"


def test_a_plan_edited_after_the_request_refuses_the_approval_and_posts_a_fresh_request(world: World) -> None:
    people = world.people
    people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    world.wait_for_ephemeral("alice")
    [first] = world.requests()
    daves_old_click = people["dave"].build_click(
        channel=MIGRATION, ts=first["ts"], action_id="wave_request.approve"
    )
    world.edit_plan(lambda text: text.replace("max_parallel_nodes: 4", "max_parallel_nodes: 3"))

    people["carol"].click(channel=MIGRATION, ts=first["ts"], action_id="wave_request.approve")
    answer = world.wait_for_ephemeral("carol")[-1]
    assert "plan changed" in answer and "fresh request" in answer
    world.settle()
    fresh, old = world.requests()
    assert old["ts"] == first["ts"] and buttons(old) == {}
    assert "plan changed" in str(old["blocks"])
    assert buttons(fresh) and set(buttons(fresh).values()) == {"w1.v5"}
    fields = [f["text"] for block in fresh["blocks"] for f in block.get("fields", [])]
    assert "*Nodes at a time*\n3" in fields
    assert world.waves()["stateless-web"] == "requested"
    assert world.bot.repositories.approvals.approvals(1) == []
    # The old button stays refused; the fresh request is the one a team lead approves.
    people.send(daves_old_click)
    assert "replaced by a newer one" in world.wait_for_ephemeral("dave")[-1]
    assert world.waves()["stateless-web"] == "requested"
    people["dave"].click(channel=MIGRATION, ts=fresh["ts"], action_id="wave_request.approve")
    assert "approved" in world.wait_for_ephemeral("dave", 2)[-1]
    assert world.waves()["stateless-web"] == "approved"
    [request_event, *_] = [e for e in world.bot.repositories.audit.events(action="wave.request")][-1:]
    assert request_event.actor == PEOPLE["alice"]  # renewed on the requester's behalf


def test_twenty_concurrent_next_wave_commands_request_exactly_one_wave(
    tmp_path: Path, database_url: str
) -> None:
    # On SQLite, and on PostgreSQL when MIGRATEBOT_TEST_DATABASE_URL is set (`make test`).
    for world in WorldFactory(tmp_path)(database_url=database_url):
        _twenty_concurrent_next_waves(world)


def _twenty_concurrent_next_waves(world: World) -> None:
    people = world.people
    asks = [
        people[name].build_command("/migrate", "next-wave", channel=MIGRATION)
        for name in ("alice", "bob") * 10
    ]

    async def burst() -> list[int]:
        async with aiohttp.ClientSession() as session:
            return [d.status for d in await asyncio.gather(*(send_async(r, session) for r in asks))]

    assert asyncio.run(burst()) == [200] * 20
    world.settle(30)
    answers = world.ephemerals("alice") + world.ephemerals("bob")
    assert len(answers) == 20
    assert sum("Requested wave 1" in a for a in answers) == 1
    assert sum("already requested" in a or "was just requested" in a for a in answers) == 19
    assert len(world.requests()) == 1
    assert world.waves() == {
        "stateless-web": "requested",
        "karpenter-general": "planned",
        "batch-and-data": "planned",
    }
    assert len(world.bot.repositories.audit.events(action="wave.request")) == 1


def test_a_redelivered_command_and_a_double_click_act_once(world: World) -> None:
    people = world.people
    ask = people["alice"].build_command("/migrate", "next-wave", channel=MIGRATION)
    assert people.send(ask).status == 200
    world.wait_for_ephemeral("alice")
    world.settle()
    again = people.send(ask.redelivered(1, "http_timeout"))
    assert again.status == 200
    world.settle()
    assert len(world.ephemerals("alice")) == 1
    assert len(world.requests()) == 1
    assert world.bot.metrics.value("migratebot_redeliveries_dropped_total") == 1

    [request] = world.requests()
    click = people["carol"].build_click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    second = people["carol"].build_click(
        channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve"
    )

    async def double_click() -> list[int]:
        async with aiohttp.ClientSession() as session:
            return [
                d.status
                for d in await asyncio.gather(send_async(click, session), send_async(second, session))
            ]

    assert asyncio.run(double_click()) == [200, 200]
    world.settle()
    assert people.send(click.redelivered(1)).status == 200
    world.settle()
    assert world.waves()["stateless-web"] == "approved"
    assert len(world.bot.repositories.audit.events(action="wave.approve")) == 1
    assert len(world.bot.repositories.approvals.approvals(1)) == 1
    answers = world.ephemerals("carol")
    assert len(answers) == 2
    assert sum("already approved" in a for a in answers) == 1


def test_a_denial_is_shown_in_place_and_the_wave_can_be_requested_again(world: World) -> None:
    people = world.people
    people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    world.wait_for_ephemeral("alice")
    [request] = world.requests()
    people["dave"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.deny")
    assert "you denied wave 1" in world.wait_for_ephemeral("dave")[-1].lower()
    [denied] = world.requests()
    assert buttons(denied) == {} and "Denied* by <@U0LEAD0002>" in str(denied["blocks"])
    assert world.waves()["stateless-web"] == "denied"
    people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    assert "Requested wave 1" in world.wait_for_ephemeral("alice", 2)[-1]
    assert world.waves()["stateless-web"] == "requested"

    # The lead who denied the first request decides the new one afresh: decisions belong to a request.
    again = next(m for m in world.requests() if buttons(m))
    assert again["ts"] != request["ts"]
    people["dave"].click(channel=MIGRATION, ts=again["ts"], action_id="wave_request.approve")
    assert "you approved wave 1" in world.wait_for_ephemeral("dave", 2)[-1].lower()
    assert world.waves()["stateless-web"] == "approved"


def test_with_impersonation_a_wave_nobody_on_it_can_answer_for_in_the_cluster_is_not_approved(
    world: World,
) -> None:
    # examples/plan.yaml maps alice (SRE) and carol (team lead) to Kubernetes identities; bob and dave
    # have none, and the bot makes no cluster change in its own name when the plan impersonates.
    people = world.people
    people["bob"].command("/migrate", "next-wave", channel="eks-migration")
    assert "Requested wave 1" in world.wait_for_ephemeral("bob")[-1]
    [request] = world.requests()
    people["dave"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    refused = world.wait_for_ephemeral("dave")[-1]
    assert "made in a person's name" in refused and "<@U0SRE00002>" in refused, refused
    assert "impersonation" in refused and "not recorded" in refused, refused
    assert world.waves()["stateless-web"] == "requested"
    assert world.bot.repositories.approvals.approvals(1) == []
    [still] = world.requests()
    assert buttons(still)  # the request stands for a lead who can answer for it
    people["carol"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    assert "you approved wave 1" in world.wait_for_ephemeral("carol")[-1].lower()
    assert world.waves()["stateless-web"] == "approved"


def test_two_approvals_when_the_plan_asks_for_two(tmp_path: Path) -> None:
    text = EXAMPLE_PLAN.read_text().replace("required: 1", "required: 2")
    with open_world(tmp_path, plan_text=text) as world:
        people = world.people
        people["alice"].command("/migrate", "next-wave", channel="eks-migration")
        world.wait_for_ephemeral("alice")
        [request] = world.requests()
        people["carol"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
        assert "1 of 2" in world.wait_for_ephemeral("carol")[-1]
        [pending] = world.requests()
        assert buttons(pending) and "approved by <@U0LEAD0001>" in str(pending["blocks"])
        assert world.waves()["stateless-web"] == "requested"
        people["dave"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
        assert "you approved" in world.wait_for_ephemeral("dave")[-1].lower()
        assert world.waves()["stateless-web"] == "approved"
        [decided] = world.requests()
        shown = str(decided["blocks"])
        assert not buttons(decided)
        assert "*Approved* by <@U0LEAD0001>, <@U0LEAD0002>" in shown
        assert shown.count("<@U0LEAD0001>") == 1, "each approver is named once on a decided request"
        [approve] = world.bot.repositories.audit.events(action="wave.approve")
        assert approve.payload["approvers"] == [PEOPLE["carol"], PEOPLE["dave"]]


def test_commands_outside_the_plans_channels_are_refused_naming_the_channel(world: World) -> None:
    world.people["alice"].command("/migrate", "next-wave", channel="random")
    [answer] = world.wait_for_ephemeral("alice", channel=RANDOM)
    assert f"<#{MIGRATION}>" in answer
    assert world.waves()["stateless-web"] == "planned"
    world.people["alice"].command("/migrate", "status", channel="eks-alerts")
    assert "stateless-web" in world.wait_for_ephemeral("alice", channel=ALERTS)[-1]


def test_bad_usage_gets_ephemeral_help_and_changes_nothing(world: World) -> None:
    before = world.audit_actions()
    for text in ("next-wav", "audit 9000", "status --cluster", "pause now", "next-wave --force"):
        delivery = world.people["alice"].command("/migrate", text, channel="eks-migration")
        assert delivery.acked_in_time
    world.wait_for_ephemeral("alice", 5)
    world.settle()
    answers = world.ephemerals("alice")
    assert len(answers) == 5 and all("*Usage:*" in a for a in answers)
    assert world.audit_actions() == before
    assert world.bot.metrics.value("migratebot_refusals_total", reason="usage") == 5


def test_status_plan_audit_help_and_the_capabilities_still_to_come(world: World) -> None:
    alice = world.people["alice"]
    alice.command("/migrate", "", channel="eks-migration")
    assert "*Usage:*" in world.wait_for_ephemeral("alice")[-1]
    alice.command("/migrate", "status", channel="eks-migration")
    assert "wave 1 (stateless-web) planned" in world.wait_for_ephemeral("alice", 2)[-1]
    alice.command("/migrate", "plan", channel="eks-migration")
    plan_hash = world.bot.plans.latest().summary().plan_hash
    assert plan_hash in world.wait_for_ephemeral("alice", 3)[-1]
    alice.command("/migrate", "audit 3", channel="eks-migration")
    assert "last 3 audit events" in world.wait_for_ephemeral("alice", 4)[-1]
    for verb in ("preview", "rollback 1", "canary run"):
        alice.command("/migrate", verb, channel="eks-migration")
    later = world.wait_for_ephemeral("alice", 7)[-3:]
    assert all("arrives with" in a and "Nothing was done" in a for a in later)
    for verb in ("readiness 2", "security"):
        alice.command("/migrate", verb, channel="eks-migration")
    no_cluster = world.wait_for_ephemeral("alice", 9)[-2:]
    assert all("reports need the cluster" in a and "Nothing was done" in a for a in no_cluster), no_cluster
    assert any("migratebot report readiness --wave 2" in a for a in no_cluster), no_cluster
    assert world.waves()["stateless-web"] == "planned"


def test_pause_resume_and_abort_act_on_the_wave_in_flight_or_refuse_cleanly(world: World) -> None:
    people = world.people
    # frank is on-call only through the usergroup S0ONCALL01: he may pause, but nothing runs yet.
    people["frank"].command("/migrate", "pause", channel="eks-migration")
    answer = world.wait_for_ephemeral("frank")[-1]
    assert "nothing to pause" in answer and "role" not in answer
    people["mallory"].command("/migrate", "resume", channel="eks-migration")
    assert "role" in world.wait_for_ephemeral("mallory")[-1]
    people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    world.wait_for_ephemeral("alice")
    people["alice"].command("/migrate", "abort", channel="eks-migration")
    assert "aborted" in world.wait_for_ephemeral("alice", 2)[-1]
    assert world.waves()["stateless-web"] == "aborted"
    world.settle()
    [request] = world.requests()
    assert buttons(request) == {} and "*aborted* by <@U0SRE00001>" in str(request["blocks"])
    people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    assert "Requested wave 2 (karpenter-general)" in world.wait_for_ephemeral("alice", 3)[-1]
    assert world.waves()["karpenter-general"] == "requested"


def test_a_team_lead_who_is_also_an_sre_cant_approve_their_own_request(tmp_path: Path) -> None:
    text = EXAMPLE_PLAN.read_text().replace(
        "users: [U0LEAD0001, U0LEAD0002]", "users: [U0LEAD0001, U0SRE00001]"
    )
    with open_world(tmp_path, plan_text=text) as world:
        world.people["alice"].command("/migrate", "next-wave", channel="eks-migration")
        world.wait_for_ephemeral("alice")
        [request] = world.requests()
        world.people["alice"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
        answer = world.wait_for_ephemeral("alice", 2)[-1]
        assert "they requested it" in answer and "second person" in answer
        assert world.waves()["stateless-web"] == "requested"
        [denied] = world.bot.repositories.audit.events(action="access.denied")
        assert denied.actor == PEOPLE["alice"] and denied.payload["trigger"] == "approve"


def test_a_request_nobody_decides_in_time_expires_and_can_be_asked_again(tmp_path: Path) -> None:
    text = EXAMPLE_PLAN.read_text().replace("expires_after: 30m", "expires_after: 1s")
    with open_world(tmp_path, plan_text=text) as world:
        world.people["alice"].command("/migrate", "next-wave", channel="eks-migration")
        world.wait_for_ephemeral("alice")
        [request] = world.requests()
        click = world.people["carol"].build_click(
            channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve"
        )
        requested_at = world.bot.repositories.migrations.waves(CLUSTER)[0].entered_at(WaveState.REQUESTED)
        assert requested_at is not None
        eventually(lambda: dt.datetime.now(dt.UTC) >= requested_at + dt.timedelta(seconds=1.1))
        world.people.send(click)
        assert "expired" in world.wait_for_ephemeral("carol")[-1]
        assert world.waves()["stateless-web"] == "expired"
        assert world.bot.repositories.approvals.approvals(1) == []
        world.people["bob"].command("/migrate", "next-wave", channel="eks-migration")
        assert "Requested wave 1" in world.wait_for_ephemeral("bob")[-1]
        assert world.waves()["stateless-web"] == "requested"
