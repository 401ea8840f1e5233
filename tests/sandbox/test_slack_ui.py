"""The sandbox Slack's web page (sandbox/slack/ui.py) without a browser: off unless asked for, Block
Kit and mrkdwn rendered as escaped HTML, and every action a signed request the app can verify."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import SlackEmulator, demo_seed

CHANNEL = "C0MIGRATE"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class App:
    """A stand-in for the bot's /slack/events: records what arrives and whether it is signed."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.received: list[tuple[bool, dict[str, str]]] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = app.verifier.is_valid_request(body, dict(self.headers))
                app.received.append((valid, dict(urllib.parse.parse_qsl(body.decode()))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(demo_seed()) as s:
        yield s


@pytest.fixture
def app(slack: SlackEmulator) -> Iterator[App]:
    a = App(slack.signing_secret)
    slack.request_url = a.url
    slack.serve_ui = True
    yield a
    a.server.shutdown()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post(url: str, form: dict[str, str]) -> tuple[int, str]:
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.headers.get("Location", "")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", "")


def test_the_page_is_off_unless_asked_for(slack: SlackEmulator) -> None:
    status, body = get(slack.ui_url)
    assert status == 404
    assert "serve_ui" in body
    assert post(f"{slack.url}/ui/command", {"as": "alice", "c": CHANNEL, "text": "/migrate status"})[0] == 404


def test_messages_are_rendered_from_block_kit_as_escaped_html(slack: SlackEmulator, app: App) -> None:
    bot = WebClient(token=slack.bot_token, base_url=slack.api_url)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Wave 1 <requested>"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "<@U0ALICE01> asks <!subteam^S0LEADS01> *now* &lt;script&gt;"},
            "fields": [{"type": "mrkdwn", "text": "*Nodes*\n12"}],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "plan `abc123` :warning:"}]},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "go",
                    "text": {"type": "plain_text", "text": "Go"},
                    "value": "1",
                }
            ],
        },
    ]
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "sneaky",
                    "text": {"type": "plain_text", "text": "Report"},
                    "url": "javascript:alert(1)",
                }
            ],
        }
    )
    ts = bot.chat_postMessage(channel=CHANNEL, text="Wave 1", blocks=blocks)["ts"]
    bot.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="progress <b>3/12</b>")
    bot.chat_postEphemeral(channel=CHANNEL, user="U0ALICE01", text="only for alice")

    status, page = get(f"{slack.ui_url}?as=alice&c=eks-migration")
    assert status == 200
    assert "<h2>#eks-migration</h2>" in page
    assert "Wave 1 &lt;requested&gt;" in page
    assert '<span class="mention">@alice</span> asks <span class="mention">@team-leads</span>' in page
    assert "<b>now</b> &lt;script&gt;" in page and "<script>alert" not in page
    assert "<b>Nodes</b><br>12" in page
    assert "<code>abc123</code> ⚠️" in page
    assert 'data-action="go">Go</button>' in page
    assert '<div class="thread"' in page and "progress &lt;b&gt;3/12&lt;/b&gt;" in page
    assert "only for alice" in page
    assert "javascript:" not in page
    assert "only for alice" not in get(f"{slack.ui_url}?as=carol&c=eks-migration")[1]


def test_the_pane_answers_204_while_nothing_changed(slack: SlackEmulator, app: App) -> None:
    pane = f"{slack.url}/ui/pane?as=alice&c={CHANNEL}"
    with urllib.request.urlopen(pane, timeout=5) as resp:
        version = resp.headers["X-Workspace-Version"]
    with urllib.request.urlopen(f"{pane}&since={version}", timeout=5) as resp:
        assert resp.status == 204
    slack.workspace.post_message("U0BOB0001", CHANNEL, text="hello")
    with urllib.request.urlopen(f"{pane}&since={version}", timeout=5) as resp:
        assert resp.status == 200
        assert "hello" in resp.read().decode()


def test_commands_and_clicks_reach_the_app_as_signed_slack_requests(slack: SlackEmulator, app: App) -> None:
    status, location = post(
        f"{slack.url}/ui/command", {"as": "alice", "c": CHANNEL, "text": "/migrate next-wave"}
    )
    assert status == 303
    assert location == f"/ui?as=alice&c={CHANNEL}"
    valid, form = app.received[-1]
    assert valid
    assert (form["command"], form["text"], form["user_name"], form["channel_id"]) == (
        "/migrate",
        "next-wave",
        "alice",
        CHANNEL,
    )

    bot = WebClient(token=slack.bot_token, base_url=slack.api_url)
    blocks = [
        {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "OK"}}
            ],
        }
    ]
    ts = bot.chat_postMessage(channel=CHANNEL, text="request", blocks=blocks)["ts"]
    status, _ = post(f"{slack.url}/ui/click", {"as": "carol", "c": CHANNEL, "ts": ts, "action_id": "approve"})
    assert status == 303
    valid, form = app.received[-1]
    assert valid
    assert '"action_id": "approve"' in form["payload"] and '"id": "U0CAROL01"' in form["payload"]

    # A plain message is the person's own post: nothing is sent to the app.
    before = len(app.received)
    post(f"{slack.url}/ui/command", {"as": "bob", "c": CHANNEL, "text": "on it"})
    assert len(app.received) == before
    assert slack.workspace.channel_messages(CHANNEL)[-1].text == "on it"


def test_an_element_that_is_gone_is_reported_on_the_page(slack: SlackEmulator, app: App) -> None:
    ts = slack.workspace.post_message("U0BOB0001", CHANNEL, text="no buttons").ts
    status, location = post(
        f"{slack.url}/ui/click", {"as": "carol", "c": CHANNEL, "ts": ts, "action_id": "approve"}
    )
    assert status == 303
    notice = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["notice"][0]
    assert "no element with action_id 'approve'" in notice
    assert "no element with action_id" in get(f"{slack.url}{location}")[1]
