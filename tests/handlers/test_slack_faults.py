"""Slack misbehaving: 429s are retried after Retry-After, 5xx retried, and a request Slack won't
take is reported to the requester with the way out — the database is never left guessing."""

from __future__ import annotations

from bot_world import MIGRATION, World, buttons


def test_a_rate_limited_post_is_retried_after_retry_after(world: World) -> None:
    world.slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    assert "Requested wave 1" in world.wait_for_ephemeral("alice")[-1]
    calls = world.slack.calls_to("chat.postMessage")
    assert [c.error for c in calls] == ["ratelimited", ""]
    [request] = world.requests()
    assert buttons(request)


def test_a_server_error_on_update_is_retried_and_the_message_still_changes_in_place(world: World) -> None:
    world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    world.wait_for_ephemeral("alice")
    [request] = world.requests()
    world.slack.fail("chat.update", times=1, status=503)
    world.people["carol"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    world.wait_for_ephemeral("carol")
    world.settle()
    [updated] = world.requests()
    assert buttons(updated) == {} and updated.get("edited")
    assert len(world.slack.calls_to("chat.update")) == 2


def test_a_request_slack_refuses_to_post_is_reported_with_the_way_out(world: World) -> None:
    world.slack.fail("chat.postMessage", times=None, status=500)
    world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    answer = world.wait_for_ephemeral("alice")[-1]
    assert "requested, but Slack refused" in answer and "/migrate abort" in answer
    world.slack.clear_faults()
    world.people["alice"].command("/migrate", "abort", channel=MIGRATION)
    assert "aborted" in world.wait_for_ephemeral("alice", 2)[-1]
