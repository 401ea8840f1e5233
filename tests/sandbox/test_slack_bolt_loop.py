"""The whole loop: a real slack_bolt app, signed requests from the sandbox's people, answers in the store.

A tiny Bolt app (kept here: it stands in for migratebot) runs over HTTP with Bolt's own Starlette
adapter; its AsyncWebClient talks to the emulated Slack. A person types a slash command, a team
lead clicks Approve, someone opens the App Home and submits a modal — and the emulator's store and
transcript show what the app did, exactly as the real Slack would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.slack import SlackActors, SlackEmulator, demo_seed, send_async, transcript

CHANNEL = "C0MIGRATE"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def request_blocks() -> list[dict[str, Any]]:
    confirm = {
        "title": {"type": "plain_text", "text": "Approve wave 1?"},
        "text": {"type": "mrkdwn", "text": "12 nodes move to Bottlerocket."},
        "confirm": {"type": "plain_text", "text": "Approve"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Wave 1 requested"}},
        section("Requested by <@U0ALICE01> · readiness *ready*"),
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve_wave",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": "req-1",
                    "confirm": confirm,
                },
                {
                    "type": "button",
                    "action_id": "deny_wave",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Deny"},
                    "value": "req-1",
                },
            ],
        },
    ]


def build_app(slack: SlackEmulator) -> AsyncApp:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    app = AsyncApp(client=client, signing_secret=slack.signing_secret, process_before_response=True)

    @app.command("/migrate")
    async def migrate(ack: Any, command: dict[str, Any], respond: Any, client: AsyncWebClient) -> None:
        if command["text"] == "note":
            await ack()
            await client.views_open(
                trigger_id=command["trigger_id"],
                view={
                    "type": "modal",
                    "callback_id": "wave_note",
                    "title": {"type": "plain_text", "text": "Note"},
                    "submit": {"type": "plain_text", "text": "Save"},
                    "blocks": [
                        {
                            "type": "input",
                            "block_id": "note",
                            "label": {"type": "plain_text", "text": "Note"},
                            "element": {"type": "plain_text_input", "action_id": "text"},
                        }
                    ],
                },
            )
            return
        await ack("Working on it…")
        await client.chat_postMessage(
            channel=command["channel_id"], text="Wave 1 requested", blocks=request_blocks()
        )
        await respond(text="Request posted.")

    @app.action("approve_wave")
    async def approve(ack: Any, body: dict[str, Any], respond: Any, client: AsyncWebClient) -> None:
        await ack()
        container = body["container"]
        assert body["actions"][0]["value"] == "req-1"
        assert body["message"]["blocks"][2]["elements"][0]["action_id"] == "approve_wave"
        await client.chat_update(
            channel=container["channel_id"],
            ts=container["message_ts"],
            text="Wave 1 approved",
            blocks=[
                *request_blocks()[:2],
                section(f":white_check_mark: Approved by <@{body['user']['id']}>"),
            ],
        )
        await client.chat_postMessage(
            channel=container["channel_id"],
            thread_ts=container["message_ts"],
            text="Wave 1 is running: 0/12 nodes",
        )
        await respond(text="You approved wave 1.", replace_original=False)

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_publish(
            user_id=event["user"],
            view={
                "type": "home",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "prod"}}],
            },
        )

    @app.view("wave_note")
    async def note(ack: Any, view: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        text = view["state"]["values"]["note"]["text"]["value"]
        await client.chat_postMessage(channel=CHANNEL, text=f"Note: {text}")

    return app


def bolt_asgi(app: AsyncApp) -> Starlette:
    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])


class BotServer:
    """An app behind uvicorn on an ephemeral port, in a thread (as `migratebot serve` would run)."""

    def __init__(self, asgi: Starlette) -> None:
        self.asgi = asgi
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BotServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
        server = uvicorn.Server(
            uvicorn.Config(self.asgi, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        )
        self._server = server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "bot server did not start"
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=5)


@pytest.fixture
def world() -> Iterator[tuple[SlackEmulator, SlackActors]]:
    with SlackEmulator(demo_seed()) as slack, BotServer(bolt_asgi(build_app(slack))) as bot:
        yield slack, SlackActors(slack.workspace, bot.url)


def test_a_slash_command_and_an_approval_go_round_the_whole_loop(
    world: tuple[SlackEmulator, SlackActors],
) -> None:
    slack, people = world
    ws = slack.workspace

    asked = people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    assert asked.acked_in_time
    [request] = ws.channel_messages(CHANNEL)
    # process_before_response: Bolt sends the ack body after the listener, so respond() lands first.
    assert [m.text for m in ws.ephemerals(CHANNEL, "alice")] == ["Request posted.", "Working on it…"]

    clicked = people["carol"].click(channel=CHANNEL, ts=request.ts, action_id="approve_wave")
    assert clicked.status == 200
    decided = ws.message(CHANNEL, request.ts)
    assert decided.text == "Wave 1 approved"
    assert decided.edited is not None
    assert [r.text for r in ws.thread(CHANNEL, request.ts)] == ["Wave 1 is running: 0/12 nodes"]
    assert [m.text for m in ws.ephemerals(CHANNEL, "carol")] == ["You approved wave 1."]

    text = transcript(ws, CHANNEL)
    assert "@migratebot (app) (edited):" in text
    assert "Approved by @carol" in text
    assert "(only visible to @alice)" in text
    assert "(only visible to @carol)" in text
    assert "    │   Wave 1 is running: 0/12 nodes" in text


def test_the_buttons_render_and_a_missing_button_is_a_clear_error(
    world: tuple[SlackEmulator, SlackActors],
) -> None:
    slack, people = world
    people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    [request] = slack.workspace.channel_messages(CHANNEL)
    assert "[Approve] [Deny]" in transcript(slack.workspace, CHANNEL)
    with pytest.raises(LookupError, match="approve_wave"):
        people["carol"].build_click(channel=CHANNEL, ts=request.ts, action_id="rollback")


def test_forged_stale_and_unsigned_requests_are_refused_and_change_nothing(
    world: tuple[SlackEmulator, SlackActors],
) -> None:
    slack, people = world
    request = people["alice"].build_command("/migrate", "next-wave", channel="eks-migration")
    for forged in (request.tampered(), request.stale(), request.unsigned(), request.with_wrong_secret()):
        assert people.send(forged).status == 401
    assert slack.workspace.channel_messages(CHANNEL) == []
    assert people.send(request).status == 200
    assert len(slack.workspace.channel_messages(CHANNEL)) == 1


def test_url_verification_home_tab_and_a_modal(world: tuple[SlackEmulator, SlackActors]) -> None:
    slack, people = world
    ws = slack.workspace
    assert people.verify_url()

    assert people["erin"].open_home().status == 200
    home = ws.home_view("erin")
    assert home is not None
    assert home["blocks"][0]["text"]["text"] == "prod"

    people["alice"].command("/migrate", "note", channel="eks-migration")
    [modal] = ws.open_modals("alice")
    submitted = people["alice"].submit_view(modal["id"], {"note": {"text": "drain after lunch"}})
    assert submitted.status == 200
    assert ws.open_modals("alice") == []
    assert [m.text for m in ws.channel_messages(CHANNEL)] == ["Note: drain after lunch"]


def test_a_redelivery_is_signed_like_the_first_and_bolt_alone_does_not_deduplicate_it(
    world: tuple[SlackEmulator, SlackActors],
) -> None:
    slack, people = world
    first = people["alice"].build_command("/migrate", "next-wave", channel="eks-migration")
    assert people.send(first).status == 200
    again = people.send(first.redelivered(1, "http_timeout"))
    assert again.status == 200
    # The trap DESIGN.md names: the app itself must recognise X-Slack-Retry-Num.
    assert len(slack.workspace.channel_messages(CHANNEL)) == 2


def test_a_burst_of_concurrent_commands_each_gets_its_own_response_url(
    world: tuple[SlackEmulator, SlackActors],
) -> None:
    slack, people = world
    requests = [
        people[name].build_command("/migrate", "next-wave", channel=CHANNEL) for name in ("alice", "bob") * 5
    ]

    async def burst() -> list[int]:
        async with aiohttp.ClientSession() as session:
            deliveries = await asyncio.gather(*(send_async(r, session) for r in requests))
        return [d.status for d in deliveries]

    assert asyncio.run(burst()) == [200] * 10
    assert len(slack.workspace.channel_messages(CHANNEL)) == 10
    assert len(slack.workspace.ephemerals(CHANNEL, "alice")) == 5


def test_people_can_act_over_the_admin_endpoint_from_another_process(
    world: tuple[SlackEmulator, SlackActors],
) -> None:
    slack, people = world

    def admin(path: str, body: dict[str, Any], method: str = "POST") -> Any:
        req = urllib.request.Request(
            f"{slack.admin_url}{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {slack.admin_token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)

    assert admin("/app", {"request_url": people.request_url}, "PUT")["request_url"] == people.request_url
    asked = admin(
        "/act",
        {"as": "alice", "do": "command", "command": "/migrate", "text": "next-wave", "channel": CHANNEL},
    )
    assert asked["status"] == 200
    assert asked["response_url"].startswith(slack.url)
    [request] = slack.workspace.channel_messages(CHANNEL)
    clicked = admin(
        "/act",
        {"as": "carol", "do": "click", "channel": CHANNEL, "ts": request.ts, "action_id": "approve_wave"},
    )
    assert clicked["status"] == 200
    assert slack.workspace.message(CHANNEL, request.ts).text == "Wave 1 approved"


def test_an_event_the_app_fails_to_acknowledge_is_redelivered_with_retry_headers() -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def flaky(request: Request) -> Response:
        seen.append((request.headers.get("x-slack-retry-num"), request.headers.get("x-slack-retry-reason")))
        return Response(status_code=500 if len(seen) < 3 else 200)

    app = Starlette(routes=[Route("/slack/events", flaky, methods=["POST"])])
    with SlackEmulator(demo_seed()) as slack, BotServer(app) as bot:
        people = SlackActors(slack.workspace, bot.url)
        deliveries = people.deliver_event(people["erin"].build_home_opened())
    assert [d.status for d in deliveries] == [500, 500, 200]
    assert deliveries[-1].acked_in_time
    assert seen == [(None, None), ("1", "http_error"), ("2", "http_error")]
