"""migratebot's HTTP surface: Slack's signatures checked before anything happens, health, readiness
and metrics for operators."""

from __future__ import annotations

import json

import pytest
from bot_world import MIGRATION, World

from sandbox.slack import SlackRequest


def _forgeries(request: SlackRequest) -> dict[str, SlackRequest]:
    return {
        "tampered": request.tampered(),
        "stale": request.stale(),
        "unsigned": request.unsigned(),
        "wrong secret": request.with_wrong_secret(),
        "future": request.resigned(timestamp=request.timestamp + 10 * 60),
    }


def _database(world: World) -> tuple[object, ...]:
    """Everything the bot stores: the audit chain (every change writes one), waves and approvals."""
    repos = world.bot.repositories
    return (
        tuple(e.hash for e in repos.audit.events()),
        tuple(repos.migrations.waves("sandbox-demo")),
        tuple(repos.approvals.approvals(1)),
    )


def test_bad_missing_and_stale_signatures_get_401_and_change_nothing(world: World) -> None:
    people = world.people
    ask = people["alice"].build_command("/migrate", "next-wave", channel=MIGRATION)
    before = _database(world)
    for name, forged in _forgeries(ask).items():
        assert people.send(forged).status == 401, name
    world.settle()
    assert _database(world) == before
    assert world.slack.workspace.channel_messages(MIGRATION) == []

    people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    world.wait_for_ephemeral("alice")
    [request] = world.requests()
    click = people["carol"].build_click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    before = _database(world)
    for name, forged in _forgeries(click).items():
        assert people.send(forged).status == 401, name
    world.settle()
    assert _database(world) == before
    assert world.waves()["stateless-web"] == "requested"
    assert world.bot.metrics.value("migratebot_refusals_total", reason="signature") == 10
    assert world.ephemerals("carol") == []
    # Refused before anything else looked at them: the forgeries did not use up the genuine click.
    assert people.send(click).status == 200
    world.wait_for_ephemeral("carol")
    assert world.waves()["stateless-web"] == "approved"


def test_url_verification_and_the_app_home(world: World) -> None:
    assert world.people.verify_url()
    world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    world.wait_for_ephemeral("alice")
    assert world.people["erin"].open_home().acked_in_time
    home = world.slack.workspace.wait_for(lambda ws: ws.home_view("erin"), timeout=10)
    text = json.dumps(home["blocks"])
    assert "sandbox-demo" in text and "stateless-web" in text and "requested" in text


def test_healthz_readyz_and_metrics_respond(world: World) -> None:
    assert world.get("/healthz") == (200, "ok\n")
    status, body = world.get("/readyz")
    assert status == 200, body
    assert json.loads(body) == {"ready": True, "database": "ok", "slack": "ok"}

    world.people["alice"].command("/migrate", "status", channel=MIGRATION)
    world.people["alice"].command("/migrate", "bogus", channel=MIGRATION)
    world.wait_for_ephemeral("alice", 2)
    status, text = world.get("/metrics")
    assert status == 200
    assert "# TYPE migratebot_slack_requests_total counter" in text
    assert 'migratebot_slack_requests_total{status="200"} 2' in text
    assert "migratebot_slack_acks_total 2" in text
    assert 'migratebot_commands_total{verb="status"} 1' in text
    assert 'migratebot_refusals_total{reason="usage"} 1' in text


def test_readyz_says_what_is_wrong_when_slack_refuses_the_token(world: World) -> None:
    world.slack.fail("auth.test", times=None, status=503)
    status, body = world.get("/readyz")
    assert status == 503
    answer = json.loads(body)
    assert answer["ready"] is False and answer["database"] == "ok"
    assert "auth.test" in answer["slack"]


@pytest.mark.parametrize("retry_header", [True, False])
def test_a_redelivered_event_is_acknowledged_and_not_acted_on_twice(world: World, retry_header: bool) -> None:
    people = world.people
    opened = people["erin"].build_home_opened()
    assert people.send(opened).status == 200
    world.settle()
    publishes = len(world.slack.calls_to("views.publish"))
    again = opened.redelivered(1, "http_timeout") if retry_header else opened.resigned()
    assert people.send(again).status == 200
    world.settle()
    assert len(world.slack.calls_to("views.publish")) == publishes == 1
