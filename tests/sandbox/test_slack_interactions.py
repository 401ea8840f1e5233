"""response_url, trigger_id, payload shapes and the transcript: what Slack does around a click."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from sandbox.slack import SlackActors, SlackEmulator, WorkspaceSeed, demo_seed, transcript

CHANNEL = "C0MIGRATE"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(demo_seed(start_ts=1_700_000_000)) as s:
        yield s


@pytest.fixture
def client(slack: SlackEmulator) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url)


def approve_blocks() -> list[dict[str, Any]]:
    return [
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": "r1",
                },
                {
                    "type": "button",
                    "action_id": "deny",
                    "text": {"type": "plain_text", "text": "Deny"},
                    "value": "r1",
                },
            ],
        }
    ]


def payload_of(body: bytes) -> dict[str, Any]:
    form = dict(urllib.parse.parse_qsl(body.decode()))
    parsed = json.loads(form["payload"])
    assert isinstance(parsed, dict)
    return parsed


def test_message_ts_are_unique_increasing_slack_strings(slack: SlackEmulator, client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel=CHANNEL, text=str(i))["ts"] for i in range(3)]
    assert stamps == ["1700000000.000100", "1700000000.000200", "1700000000.000300"]


def test_a_click_payload_is_built_from_the_stored_message(slack: SlackEmulator, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="Wave 1", blocks=approve_blocks())["ts"]
    people = SlackActors(slack.workspace, "http://127.0.0.1:9/slack/events")
    payload = payload_of(people["carol"].build_click(channel=CHANNEL, ts=ts, action_id="deny").body)
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0CAROL01"
    assert payload["team"]["id"] == "T0SANDBOX"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": CHANNEL, "name": "eks-migration"}
    assert payload["message"]["ts"] == ts
    assert payload["message"]["blocks"][0]["block_id"] == "decision"
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "deny",
        "decision",
        "r1",
        "button",
    )
    assert action["text"]["text"] == "Deny"
    assert action["action_ts"]
    assert payload["response_url"].startswith(slack.url + "/hooks/")
    assert payload["trigger_id"]


def test_response_url_posts_ephemeral_in_channel_replaces_and_deletes(
    slack: SlackEmulator, client: WebClient
) -> None:
    ws = slack.workspace
    ts = client.chat_postMessage(channel=CHANNEL, text="Wave 1", blocks=approve_blocks())["ts"]
    it = ws.mint_interaction("block_actions", "carol", CHANNEL, message_ts=ts)
    hook = WebhookClient(it.response_url)

    assert hook.send(text="only for carol").status_code == 200
    assert [m.text for m in ws.ephemerals(CHANNEL, "carol")] == ["only for carol"]
    assert hook.send(text="everyone sees this", response_type="in_channel").status_code == 200
    assert [m.text for m in ws.channel_messages(CHANNEL)] == ["Wave 1", "everyone sees this"]
    assert hook.send(text="Approved by carol", replace_original=True).status_code == 200
    assert ws.message(CHANNEL, ts).text == "Approved by carol"
    assert hook.send(delete_original=True).status_code == 200
    assert [m.text for m in ws.channel_messages(CHANNEL)] == ["everyone sees this"]
    # Slack allows five uses of a response_url.
    assert hook.send(text="fifth").status_code == 200
    sixth = hook.send(text="sixth")
    assert sixth.status_code == 404
    assert "used_url" in sixth.body


def test_response_url_checks_blocks_too(slack: SlackEmulator) -> None:
    it = slack.workspace.mint_interaction("command", "alice", CHANNEL)
    answer = WebhookClient(it.response_url).send(text="x", blocks=[{"type": "divider"}] * 51)
    assert answer.status_code == 400
    assert "invalid_blocks" in answer.body


def test_a_button_on_an_ephemeral_message_can_be_clicked_and_replaced(
    slack: SlackEmulator, client: WebClient
) -> None:
    ws = slack.workspace
    ts = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE01", text="Sure?", blocks=approve_blocks())[
        "message_ts"
    ]
    people = SlackActors(ws, "http://127.0.0.1:9/slack/events")
    request = people["alice"].build_click(channel=CHANNEL, ts=ts, action_id="approve")
    payload = payload_of(request.body)
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload
    assert request.interaction is not None
    WebhookClient(request.interaction.response_url).send(text="Done.", replace_original=True)
    assert [m.text for m in ws.ephemerals(CHANNEL, "alice")] == ["Done."]
    with pytest.raises(Exception, match="message_not_found"):
        people["bob"].build_click(channel=CHANNEL, ts=ts, action_id="approve")


def test_a_trigger_id_opens_one_modal_once_and_expires_after_three_seconds(
    slack: SlackEmulator, client: WebClient
) -> None:
    ws = slack.workspace
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Why?"}, "blocks": []}
    fresh = ws.mint_trigger("alice")
    view = client.views_open(trigger_id=fresh, view=modal)["view"]
    assert [v["id"] for v in ws.open_modals("alice")] == [view["id"]]
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        client.views_open(trigger_id=fresh, view=modal)
    old = ws.mint_trigger("alice")
    ws.triggers[old].created -= 3.5  # the sandbox's clock, instead of sleeping three seconds
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        client.views_open(trigger_id=old, view=modal)
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        client.views_open(trigger_id="1.2.3", view=modal)
    updated = client.views_update(
        view_id=view["id"], view={**modal, "title": {"type": "plain_text", "text": "Really?"}}
    )
    assert updated["view"]["title"]["text"] == "Really?"


def test_wait_for_wakes_when_the_bot_posts(slack: SlackEmulator, client: WebClient) -> None:
    poster = threading.Timer(0.05, lambda: client.chat_postMessage(channel=CHANNEL, text="later"))
    poster.start()
    found = slack.workspace.wait_for(
        lambda ws: [m for m in ws.channel_messages(CHANNEL) if m.text == "later"], 5
    )
    assert found[0].text == "later"
    poster.join()


def test_the_transcript_reads_like_the_channel(slack: SlackEmulator, client: WebClient) -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Wave 2 requested"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "<@U0ALICE01> asks <!subteam^S0LEADS01> in <#C0MIGRATE>"},
            "fields": [{"type": "mrkdwn", "text": "*Nodes*\n12"}, {"type": "mrkdwn", "text": "*Pods*\n140"}],
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "plan abc123"},
                {"type": "mrkdwn", "text": "<https://x.example/r|report>"},
            ],
        },
        *approve_blocks(),
    ]
    ts = client.chat_postMessage(channel=CHANNEL, text="Wave 2 requested", blocks=blocks)["ts"]
    client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="Progress: 3/12 nodes")
    client.chat_update(channel=CHANNEL, ts=ts, text="Wave 2 approved", blocks=blocks[:4])
    client.chat_postEphemeral(channel=CHANNEL, user="U0CAROL01", text="You approved wave 2.")
    assert transcript(slack.workspace, "eks-migration") == (
        "#eks-migration\n"
        "────────────────────────────────────────\n"
        "@migratebot (app) (edited):\n"
        "  **Wave 2 requested**\n"
        "  @alice asks @team-leads in #eks-migration\n"
        "    • *Nodes* 12\n"
        "    • *Pods* 140\n"
        "  ────────────────────────────────────────\n"
        "    plan abc123 · report (https://x.example/r)\n"
        "    │ @migratebot (app):\n"
        "    │   Progress: 3/12 nodes\n"
        "@migratebot (app) (only visible to @carol):\n"
        "  You approved wave 2.\n"
    )


def test_the_snapshot_is_plain_json_of_everything_a_page_would_render(
    slack: SlackEmulator, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="parent")["ts"]
    client.chat_postMessage(channel=CHANNEL, text="child", thread_ts=ts)
    client.views_publish(user_id="U0ERIN001", view={"type": "home", "blocks": []})
    state = json.loads(json.dumps(slack.workspace.snapshot()))
    assert state["team"]["id"] == "T0SANDBOX"
    migration = next(c for c in state["channels"] if c["channel"]["id"] == CHANNEL)
    assert [m["text"] for m in migration["messages"]] == ["parent"]
    assert [r["text"] for r in migration["messages"][0]["replies"]] == ["child"]
    assert state["views"]["home"]["U0ERIN001"]["type"] == "home"
    assert {u["name"] for u in state["users"]} >= {"alice", "migratebot"}


def test_a_custom_seed_is_enough_to_describe_a_workspace() -> None:
    from sandbox.slack import SeedBot, SeedChannel, SeedUser

    seed = WorkspaceSeed(
        team_id="T1",
        bot=SeedBot(tokens=("xoxb-1",)),
        users=(SeedUser("U1", "zoe"),),
        channels=(SeedChannel("C1", "ops", ("U1", "UBOT00001")),),
    )
    with SlackEmulator(seed) as slack:
        client = WebClient(token="xoxb-1", base_url=slack.api_url)
        assert client.chat_postMessage(channel="#ops", text="hi <@U1>")["channel"] == "C1"
        assert "hi @zoe" in transcript(slack.workspace, "ops")


def test_a_click_in_the_app_home_carries_the_view_not_a_response_url(
    slack: SlackEmulator, client: WebClient
) -> None:
    home = {"type": "home", "blocks": approve_blocks()}
    view_id = client.views_publish(user_id="U0CAROL01", view=home)["view"]["id"]
    people = SlackActors(slack.workspace, "http://127.0.0.1:9/slack/events")
    payload = payload_of(people["carol"].build_view_click(view_id, "approve").body)
    assert payload["container"] == {"type": "view", "view_id": view_id}
    assert payload["view"]["id"] == view_id
    assert "response_url" not in payload
    assert payload["actions"][0]["value"] == "r1"


def test_stored_blocks_spell_out_slacks_text_defaults(client: WebClient) -> None:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}},
        {"type": "header", "text": {"type": "plain_text", "text": "H"}},
    ]
    stored = client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks)["message"]["blocks"]
    assert stored[0]["text"] == {"type": "mrkdwn", "text": "hi", "verbatim": False}
    assert stored[1]["text"] == {"type": "plain_text", "text": "H", "emoji": True}


def test_answers_to_a_click_inside_a_thread_stay_in_the_thread(
    slack: SlackEmulator, client: WebClient
) -> None:
    ws = slack.workspace
    parent = client.chat_postMessage(channel=CHANNEL, text="Wave 1")["ts"]
    reply = client.chat_postMessage(
        channel=CHANNEL, text="Retry?", thread_ts=parent, blocks=approve_blocks()
    )["ts"]
    it = ws.mint_interaction("block_actions", "carol", CHANNEL, message_ts=reply)
    WebhookClient(it.response_url).send(text="Retrying.", response_type="in_channel")
    assert [m.text for m in ws.thread(CHANNEL, parent)] == ["Retry?", "Retrying."]
    top = ws.mint_interaction("block_actions", "carol", CHANNEL, message_ts=parent)
    WebhookClient(top.response_url).send(text="Top level.", response_type="in_channel")
    assert [m.text for m in ws.channel_messages(CHANNEL)] == ["Wave 1", "Top level."]


def test_a_direct_message_reads_as_one(slack: SlackEmulator, client: WebClient) -> None:
    channel = client.chat_postMessage(channel="U0ERIN001", text="You are on call for wave 3.")["channel"]
    assert transcript(slack.workspace, channel).startswith("DM with @erin\n")


def test_response_urls_can_fail_too(slack: SlackEmulator) -> None:
    it = slack.workspace.mint_interaction("command", "alice", CHANNEL)
    slack.fail("response_url", times=1, status=500)
    hook = WebhookClient(it.response_url)
    assert hook.send(text="lost").status_code == 500
    assert hook.send(text="delivered").status_code == 200
    assert [m.text for m in slack.workspace.ephemerals(CHANNEL, "alice")] == ["delivered"]


def test_modals_stack_with_views_push_up_to_three(slack: SlackEmulator, client: WebClient) -> None:
    ws = slack.workspace
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Step"}, "blocks": []}
    first = client.views_open(trigger_id=ws.mint_trigger("alice"), view=modal)["view"]
    second = client.views_push(trigger_id=ws.mint_trigger("alice"), view=modal)["view"]
    assert second["previous_view_id"] == first["id"]
    assert second["root_view_id"] == first["root_view_id"]
    client.views_push(trigger_id=ws.mint_trigger("alice"), view=modal)
    with pytest.raises(SlackApiError, match="push_limit_reached"):
        client.views_push(trigger_id=ws.mint_trigger("alice"), view=modal)
    assert len(ws.open_modals("alice")) == 3
