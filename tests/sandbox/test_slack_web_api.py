"""The real slack_sdk WebClient against the emulated Slack: shapes, pagination, errors, faults."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackEmulator, demo_seed, transcript

CHANNEL = "C0MIGRATE"
ALICE = "U0ALICE01"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(demo_seed()) as s:
        yield s


@pytest.fixture
def client(slack: SlackEmulator) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)


def button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as info:
        call()
    data = info.value.response.data
    assert isinstance(data, dict)
    return data


def test_auth_test_names_the_bot_and_its_team(client: WebClient) -> None:
    r = client.auth_test()
    assert r["ok"] is True
    assert (r["user_id"], r["bot_id"], r["team_id"]) == ("UBOT00001", "BBOT00001", "T0SANDBOX")
    assert r["url"] == "https://sandbox.slack.com/"


def test_a_wrong_token_is_invalid_auth_and_no_token_is_not_authed(slack: SlackEmulator) -> None:
    bad = WebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert error_of(bad.auth_test)["error"] == "invalid_auth"
    anonymous = WebClient(base_url=slack.api_url)
    assert error_of(lambda: anonymous.chat_postMessage(channel=CHANNEL, text="x"))["error"] == "not_authed"


def test_a_token_in_a_form_body_authenticates_but_not_in_a_json_body(slack: SlackEmulator) -> None:
    form = f"token={slack.bot_token}&channel={CHANNEL}&text=hi".encode()
    req = urllib.request.Request(
        slack.api_url + "chat.postMessage",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req) as resp:
        assert json.load(resp)["ok"] is True
    body = json.dumps({"token": slack.bot_token, "channel": CHANNEL, "text": "hi"}).encode()
    req = urllib.request.Request(
        slack.api_url + "chat.postMessage", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req) as resp:
        assert json.load(resp) == {"ok": False, "error": "not_authed"}


def test_json_without_a_charset_gets_slacks_missing_charset_warning(slack: SlackEmulator) -> None:
    body = json.dumps({"channel": CHANNEL, "text": "hi"}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {slack.bot_token}"}
    req = urllib.request.Request(slack.api_url + "chat.postMessage", data=body, headers=headers)
    with urllib.request.urlopen(req) as resp:
        answer = json.load(resp)
    assert answer["ok"] is True
    assert answer["warning"] == "missing_charset"
    assert answer["response_metadata"]["warnings"] == ["missing_charset"]


def test_post_then_update_marks_the_message_edited_and_keeps_its_ts(
    slack: SlackEmulator, client: WebClient
) -> None:
    posted = client.chat_postMessage(
        channel=CHANNEL,
        text="Wave 1 requested",
        blocks=[section("*Wave 1*"), {"type": "actions", "elements": [button("approve", "Approve")]}],
        metadata={"event_type": "wave_requested", "event_payload": {"wave": 1}},
    )
    assert posted["channel"] == CHANNEL
    ts = posted["ts"]
    assert posted["message"]["bot_id"] == "BBOT00001"
    assert posted["message"]["metadata"]["event_payload"] == {"wave": 1}
    # Slack fills in block ids the app left out; payloads then carry them.
    assert all(b["block_id"] for b in posted["message"]["blocks"])

    updated = client.chat_update(channel=CHANNEL, ts=ts, text="Wave 1 approved", blocks=[section("approved")])
    assert (updated["ts"], updated["text"]) == (ts, "Wave 1 approved")
    assert updated["message"]["edited"]["user"] == "UBOT00001"
    stored = slack.workspace.message(CHANNEL, ts)
    assert stored.text == "Wave 1 approved"
    assert "(edited)" in transcript(slack.workspace, CHANNEL)


def test_thread_replies_count_on_the_parent_and_broadcasts_show_in_history(client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="parent")["ts"]
    client.chat_postMessage(channel=CHANNEL, text="one", thread_ts=parent)
    client.chat_postMessage(channel=CHANNEL, text="summary", thread_ts=parent, reply_broadcast=True)
    history = client.conversations_history(channel=CHANNEL)["messages"]
    assert [m["text"] for m in history] == ["summary", "parent"]
    assert history[0]["subtype"] == "thread_broadcast"
    assert history[1]["reply_count"] == 2
    assert history[1]["latest_reply"] == history[0]["ts"]
    replies = client.conversations_replies(channel=CHANNEL, ts=parent)["messages"]
    assert [m["text"] for m in replies] == ["parent", "one", "summary"]
    assert all(m["thread_ts"] == parent for m in replies)


def test_history_pages_with_cursor_and_filters_by_latest_oldest(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel=CHANNEL, text=f"m{i}")["ts"] for i in range(7)]
    # SlackResponse iterates by refilling itself: copy each page's data as it goes by.
    pages = [dict(p.data) for p in client.conversations_history(channel=CHANNEL, limit=3)]
    assert [len(p["messages"]) for p in pages] == [3, 3, 1]
    assert [p["has_more"] for p in pages] == [True, True, False]
    texts = [m["text"] for p in pages for m in p["messages"]]
    assert texts == [f"m{i}" for i in reversed(range(7))]
    assert pages[-1]["response_metadata"]["next_cursor"] == ""

    window = client.conversations_history(channel=CHANNEL, oldest=stamps[1], latest=stamps[4])["messages"]
    assert [m["text"] for m in window] == ["m3", "m2"]
    inclusive = client.conversations_history(
        channel=CHANNEL, oldest=stamps[1], latest=stamps[4], inclusive=True
    )["messages"]
    assert [m["text"] for m in inclusive] == ["m4", "m3", "m2", "m1"]


def test_replies_page_with_the_parent_first_on_every_page(client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="parent")["ts"]
    for i in range(5):
        client.chat_postMessage(channel=CHANNEL, text=f"r{i}", thread_ts=parent)
    pages = [dict(p.data) for p in client.conversations_replies(channel=CHANNEL, ts=parent, limit=3)]
    assert all(p["messages"][0]["text"] == "parent" for p in pages)
    assert [m["text"] for p in pages for m in p["messages"][1:]] == [f"r{i}" for i in range(5)]


def test_an_unknown_thread_is_refused_when_reading_and_when_replying(client: WebClient) -> None:
    with pytest.raises(SlackApiError, match="invalid_thread_ts"):
        client.chat_postMessage(channel=CHANNEL, text="x", thread_ts="1.000001")
    assert error_of(lambda: client.conversations_replies(channel=CHANNEL, ts="1.000001"))["error"] == (
        "thread_not_found"
    )


def test_people_groups_and_channels_read_as_on_slack(client: WebClient) -> None:
    assert client.usergroups_users_list(usergroup="S0LEADS01")["users"] == ["U0CAROL01", "U0DAVE001"]
    groups = client.usergroups_list(include_users=True)["usergroups"]
    assert {g["handle"]: g["users"] for g in groups}["sre"] == ["U0ALICE01", "U0BOB0001"]
    assert error_of(lambda: client.usergroups_users_list(usergroup="S404"))["error"] == "no_such_subteam"

    alice = client.users_info(user=ALICE)["user"]
    assert (alice["name"], alice["real_name"], alice["is_bot"]) == ("alice", "Alice Sre", False)
    # Emails need users:read.email, which the default bot does not hold.
    assert "email" not in alice["profile"]
    assert error_of(lambda: client.users_info(user="U404"))["error"] == "user_not_found"
    everyone = [m["id"] for page in client.users_list(limit=3) for m in page["members"]]
    assert len(everyone) == 7
    assert "UBOT00001" in everyone

    info = client.conversations_info(channel=CHANNEL, include_num_members=True)["channel"]
    assert (info["name"], info["is_member"], info["num_members"]) == ("eks-migration", True, 7)
    members = [m for page in client.conversations_members(channel=CHANNEL, limit=4) for m in page["members"]]
    assert len(members) == 7


def test_unknown_channels_and_channels_without_the_bot_are_refused(client: WebClient) -> None:
    assert error_of(lambda: client.chat_postMessage(channel="C404", text="x"))["error"] == "channel_not_found"
    assert (
        error_of(lambda: client.chat_postMessage(channel="C0RANDOM1", text="x"))["error"] == "not_in_channel"
    )
    assert error_of(lambda: client.conversations_history(channel="C0RANDOM1"))["error"] == "not_in_channel"
    with pytest.warns(UserWarning, match="top-level `text`"):
        assert error_of(lambda: client.chat_postMessage(channel=CHANNEL))["error"] == "no_text"


def test_a_channel_name_and_a_user_id_are_accepted_as_slack_accepts_them(
    slack: SlackEmulator, client: WebClient
) -> None:
    assert client.chat_postMessage(channel="#eks-migration", text="by name")["channel"] == CHANNEL
    dm = client.chat_postMessage(channel=ALICE, text="direct")
    assert dm["channel"].startswith("D")
    assert slack.workspace.channel(dm["channel"]).members == ["UBOT00001", ALICE]


def test_the_bot_cannot_edit_or_delete_what_a_person_wrote(slack: SlackEmulator, client: WebClient) -> None:
    theirs = slack.workspace.post_message(ALICE, CHANNEL, text="mine")
    assert error_of(lambda: client.chat_update(channel=CHANNEL, ts=theirs.ts, text="x"))["error"] == (
        "cant_update_message"
    )
    assert (
        error_of(lambda: client.chat_delete(channel=CHANNEL, ts=theirs.ts))["error"] == "cant_delete_message"
    )
    assert error_of(lambda: client.chat_update(channel=CHANNEL, ts="1.000001", text="x"))["error"] == (
        "message_not_found"
    )


def test_delete_permalink_and_reactions(slack: SlackEmulator, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="hello")["ts"]
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=ts)["permalink"]
    assert link == f"https://sandbox.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"
    client.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    assert error_of(lambda: client.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark"))[
        "error"
    ] == ("already_reacted")
    assert client.chat_delete(channel=CHANNEL, ts=ts)["ts"] == ts
    assert slack.workspace.channel_messages(CHANNEL) == []


def test_ephemeral_messages_are_stored_for_one_user_and_never_in_history(
    slack: SlackEmulator, client: WebClient
) -> None:
    r = client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only you")
    assert r["message_ts"]
    assert [m.text for m in slack.workspace.ephemerals(CHANNEL, "alice")] == ["only you"]
    assert slack.workspace.ephemerals(CHANNEL, "bob") == []
    assert client.conversations_history(channel=CHANNEL)["messages"] == []
    assert "only visible to @alice" in transcript(slack.workspace, CHANNEL)
    outsider = error_of(lambda: client.chat_postEphemeral(channel="C0ALERTS1", user="U0BOB0001", text="x"))
    assert outsider["error"] == "user_not_in_channel"


def test_fifty_one_blocks_are_invalid_blocks_with_the_reason(client: WebClient) -> None:
    err = error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section("b")] * 51))
    assert err["error"] == "invalid_blocks"
    assert err["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    assert client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section("b")] * 50)["ok"]


def test_duplicate_action_ids_and_oversized_button_values_are_refused(client: WebClient) -> None:
    dup = [{"type": "actions", "elements": [button("approve"), button("approve")]}]
    err = error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x", blocks=dup))
    assert "/blocks/0/elements/1/action_id" in err["response_metadata"]["messages"][0]
    big = [{"type": "actions", "elements": [button("approve", value="v" * 2001)]}]
    err = error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x", blocks=big))
    assert err["errors"] == ["must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"]
    ts = client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section("fine")])["ts"]
    err = error_of(
        lambda: client.chat_update(channel=CHANNEL, ts=ts, text="x", blocks=[{"type": "carousel"}])
    )
    assert err["error"] == "invalid_blocks"


def test_long_text_is_truncated_as_slack_does_or_refused_in_strict_mode(
    slack: SlackEmulator, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="x" * 40_050)["ts"]
    assert len(slack.workspace.message(CHANNEL, ts).text) == 40_000
    slack.strict_text_length = True
    assert (
        error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x" * 40_001))["error"]
        == "msg_too_long"
    )
    attachments = [{"text": "a"}] * 101
    err = error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x", attachments=attachments))
    assert err["error"] == "too_many_attachments"


def test_views_publish_stores_the_home_tab_and_checks_its_limits(
    slack: SlackEmulator, client: WebClient
) -> None:
    view = {"type": "home", "blocks": [section("Cluster prod: wave 2 of 5")] * 100}
    published = client.views_publish(user_id=ALICE, view=view)["view"]
    assert published["type"] == "home"
    assert len(published["blocks"]) == 100
    again = client.views_publish(
        user_id=ALICE, view={"type": "home", "blocks": [section("v2")]}, hash=published["hash"]
    )
    assert again["view"]["id"] == published["id"]
    stale = error_of(lambda: client.views_publish(user_id=ALICE, view=view, hash=published["hash"]))
    assert stale["error"] == "hash_conflict"
    too_many = error_of(
        lambda: client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [section("b")] * 101})
    )
    assert too_many["error"] == "invalid_arguments"
    assert too_many["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
    ]
    home = slack.workspace.home_view("alice")
    assert home is not None
    assert home["blocks"][0]["text"]["text"] == "v2"


def test_files_upload_v2_lands_the_file_in_the_channel(slack: SlackEmulator, client: WebClient) -> None:
    r = client.files_upload_v2(
        channel=CHANNEL,
        content="wave,nodes\n1,12\n",
        filename="wave-1.csv",
        title="Wave 1",
        initial_comment="report",
    )
    assert r["file"]["title"] == "Wave 1"
    file_id = r["file"]["id"]
    assert slack.workspace.files[file_id].content == b"wave,nodes\n1,12\n"
    [message] = client.conversations_history(channel=CHANNEL)["messages"]
    assert message["text"] == "report"
    assert message["files"][0]["id"] == file_id
    assert client.files_info(file=file_id)["file"]["channels"] == [CHANNEL]
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "conversations.history",
        "files.info",
    ]


def test_429_carries_retry_after_and_slack_sdks_retry_handler_waits_it_out(slack: SlackEmulator) -> None:
    plain = WebClient(token=slack.bot_token, base_url=slack.api_url)
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    with pytest.raises(SlackApiError) as info:
        plain.chat_postMessage(channel=CHANNEL, text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    assert info.value.response["error"] == "ratelimited"

    patient = WebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    assert patient.chat_postMessage(channel=CHANNEL, text="after the wait")["ok"]
    assert time.monotonic() - started >= 1.0
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses == [429, 429, 200]


def test_server_errors_and_latency_are_injectable(slack: SlackEmulator) -> None:
    client = WebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail("conversations.info", times=1, status=503)
    assert client.conversations_info(channel=CHANNEL)["ok"]
    assert [c.status for c in slack.calls_to("conversations.info")] == [503, 200]
    slack.slow("auth.test", 0.2, times=1)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2


def test_the_admin_endpoint_injects_faults_and_dumps_state(slack: SlackEmulator, client: WebClient) -> None:
    def admin(
        path: str, method: str = "GET", body: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        req = urllib.request.Request(
            f"{slack.admin_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token or slack.admin_token}"},
        )
        with urllib.request.urlopen(req) as resp:
            raw = resp.read()
            return json.loads(raw) if resp.headers.get_content_type() == "application/json" else raw.decode()

    with pytest.raises(urllib.error.HTTPError) as refused:
        admin("/state", token="wrong")
    assert refused.value.code == 401
    added = admin(
        "/faults", "POST", {"kind": "ratelimited", "method": "chat.*", "times": 1, "retry_after": 7}
    )
    assert added["faults"][0]["retry_after"] == 7
    err = error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x"))
    assert err["error"] == "ratelimited"
    client.chat_postMessage(channel=CHANNEL, text="hello <@U0ALICE01>")
    state = admin("/state")
    migration = next(c for c in state["channels"] if c["channel"]["id"] == CHANNEL)
    assert [m["text"] for m in migration["messages"]] == ["hello <@U0ALICE01>"]
    assert "hello @alice" in admin(f"/transcript/{CHANNEL}")
    assert admin("/faults", "DELETE")["faults"] == []
    assert json.dumps(state)  # the whole workspace is plain JSON for the web page


def test_the_async_client_works_too(slack: SlackEmulator) -> None:
    async def run() -> str:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        r = await client.chat_postMessage(channel=CHANNEL, text="async")
        replies = await client.conversations_replies(channel=CHANNEL, ts=r["ts"])
        return str(replies["messages"][0]["text"])

    assert asyncio.run(run()) == "async"


def test_slacks_own_tiers_refuse_a_burst_when_enforced(slack: SlackEmulator, client: WebClient) -> None:
    slack.enforce_rate_limits = True
    answers = []
    for _ in range(21):
        try:
            answers.append(client.usergroups_users_list(usergroup="S0SRE0001").status_code)
        except SlackApiError as e:
            answers.append(e.response.status_code)
            retry_after = int(e.response.headers["Retry-After"])
    # Tier 2: 20 per minute; the 21st waits about three seconds for the next token.
    assert answers == [200] * 20 + [429]
    assert 1 <= retry_after <= 3
    posted = [client.chat_postMessage(channel=CHANNEL, text=str(i)).status_code for i in range(5)]
    assert posted == [200] * 5
    assert error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="sixth"))["error"] == "ratelimited"
    # The limit is per channel for chat.postMessage.
    assert client.chat_postMessage(channel="C0ALERTS1", text="elsewhere")["ok"]


def test_concurrent_posts_get_unique_increasing_timestamps(slack: SlackEmulator) -> None:
    async def run() -> list[str]:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        answers = await asyncio.gather(
            *(client.chat_postMessage(channel=CHANNEL, text=str(i)) for i in range(20))
        )
        return [str(a["ts"]) for a in answers]

    stamps = asyncio.run(run())
    assert len(set(stamps)) == 20
    history = [m.ts for m in slack.workspace.channel_messages(CHANNEL)]
    assert history == sorted(stamps, key=lambda ts: tuple(int(p) for p in ts.split(".")))


def test_a_bot_with_fixed_scopes_is_held_to_them_and_the_scopes_used_are_recorded() -> None:
    from sandbox.slack import SeedBot

    scopes = ("chat:write", "chat:write.public", "users:read", "users:read.email")
    with SlackEmulator(demo_seed(bot=SeedBot(scopes=scopes))) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        # chat:write.public lets the bot post in a public channel it has not joined.
        assert client.chat_postMessage(channel="C0RANDOM1", text="hello")["ok"]
        assert client.users_info(user=ALICE)["user"]["profile"]["email"] == "alice@example.com"
        refused = error_of(lambda: client.usergroups_users_list(usergroup="S0SRE0001"))
        assert refused["error"] == "missing_scope"
        assert refused["needed"] == "usergroups:read"
        assert refused["provided"] == ",".join(scopes)
        with pytest.raises(SlackApiError) as info:
            client.conversations_history(channel=CHANNEL)
        assert info.value.response["needed"] == "channels:history"
        headers = {k.lower(): v for k, v in info.value.response.headers.items()}
        assert headers["x-accepted-oauth-scopes"] == "channels:history"
        assert slack.scopes_used == {"chat:write", "users:read", "usergroups:read", "channels:history"}


def test_the_bot_can_join_a_public_channel_and_open_a_dm(slack: SlackEmulator, client: WebClient) -> None:
    joined = client.conversations_join(channel="C0RANDOM1")
    assert joined["channel"]["is_member"] is True
    assert "warning" not in joined.data
    assert client.conversations_join(channel="C0RANDOM1")["warning"] == "already_in_channel"
    assert client.chat_postMessage(channel="C0RANDOM1", text="now I can")["ok"]
    dm = client.conversations_open(users="U0ERIN001")["channel"]["id"]
    assert client.chat_postMessage(channel=dm, text="you are on call")["channel"] == dm
    assert (
        error_of(lambda: client.conversations_open(users="U0ERIN001,U0DAVE001"))["error"] == "too_many_users"
    )
