"""People using Slack: signed requests to the bot's request URL, built exactly as Slack builds them.

    slack = SlackEmulator(demo_seed()).start()
    users = SlackActors(slack.workspace, "http://127.0.0.1:3000/slack/events")
    alice = users["alice"]
    alice.command("/migrate", "next-wave", channel="eks-migration")
    carol = users["carol"]
    carol.click(channel="eks-migration", ts=request_ts, action_id="approve_wave")

Every payload points back at the emulator: the response_url and trigger_id are minted by the
workspace, so whatever the bot answers lands in the same store the transcript reads. Building a
request (`build_*`) is separate from sending it (`send`), so a test can forge, replay or tamper
with one (`SlackRequest.stale()`, `.tampered()`, `.unsigned()`, `.redelivered()`).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from sandbox.slack.errors import SlackError
from sandbox.slack.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from sandbox.slack.workspace import JSON, Interaction, Workspace

FORM = "application/x-www-form-urlencoded"
# Slack waits this long for an app's HTTP answer, then shows the user an error (commands,
# actions) or redelivers (events) — "Acknowledge within 3 seconds".
ACK_DEADLINE = 3.0
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class SlackRequest:
    """One HTTP request Slack would send to the app, with its signature."""

    url: str
    body: bytes
    content_type: str
    secret: str
    timestamp: int
    headers: dict[str, str] = field(default_factory=dict)
    interaction: Interaction | None = None

    @classmethod
    def signed(
        cls,
        url: str,
        body: bytes,
        content_type: str,
        secret: str,
        *,
        timestamp: int | None = None,
        interaction: Interaction | None = None,
    ) -> SlackRequest:
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: signature(secret, ts, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        return cls(url, body, content_type, secret, ts, headers, interaction)

    # ---- forgeries --------------------------------------------------------------------------------

    def resigned(self, *, secret: str | None = None, timestamp: int | None = None) -> SlackRequest:
        """The same body signed again (a new timestamp by default, or another secret)."""
        extra = {k: v for k, v in self.headers.items() if k.lower().startswith("x-slack-retry")}
        again = SlackRequest.signed(
            self.url,
            self.body,
            self.content_type,
            secret or self.secret,
            timestamp=timestamp,
            interaction=self.interaction,
        )
        return replace(again, headers={**again.headers, **extra})

    def stale(self, seconds: int = 6 * 60) -> SlackRequest:
        """Correctly signed, but older than the 5 minutes Slack's verifiers accept (a replay)."""
        return self.resigned(timestamp=int(time.time()) - seconds)

    def with_wrong_secret(self, secret: str = "not-the-signing-secret") -> SlackRequest:
        return self.resigned(secret=secret)

    def tampered(self, body: bytes | None = None) -> SlackRequest:
        """The original signature on a different body (a man in the middle)."""
        return replace(self, body=body if body is not None else self.body + b"&tampered=1")

    def unsigned(self) -> SlackRequest:
        headers = {k: v for k, v in self.headers.items() if k not in (SIGNATURE_HEADER, TIMESTAMP_HEADER)}
        return replace(self, headers=headers)

    def redelivered(self, num: int = 1, reason: str = "http_timeout") -> SlackRequest:
        """Slack's retry of an unacknowledged delivery: same body, new signature, retry headers."""
        again = self.resigned()
        headers = {**again.headers, "X-Slack-Retry-Num": str(num), "X-Slack-Retry-Reason": reason}
        return replace(again, headers=headers)


@dataclass(frozen=True)
class Delivery:
    """The app's HTTP answer to one request."""

    request: SlackRequest
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    @property
    def acked_in_time(self) -> bool:
        """Answered 200 within Slack's 3 seconds; later, Slack has already given up on the request."""
        return self.status == 200 and self.elapsed <= ACK_DEADLINE

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def response_url(self) -> str | None:
        return self.request.interaction.response_url if self.request.interaction else None

    @property
    def trigger_id(self) -> str | None:
        return self.request.interaction.trigger_id if self.request.interaction else None


def send(request: SlackRequest, *, timeout: float = 10.0) -> Delivery:
    req = urllib.request.Request(request.url, data=request.body, headers=request.headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Delivery(
                request, resp.status, dict(resp.headers), resp.read(), time.perf_counter() - started
            )
    except urllib.error.HTTPError as e:
        return Delivery(request, e.code, dict(e.headers), e.read(), time.perf_counter() - started)


async def send_async(
    request: SlackRequest, session: aiohttp.ClientSession, *, timeout: float = 10.0
) -> Delivery:
    """The same delivery from an event loop, for bursts (50 concurrent slash commands in the bench)."""
    started = time.perf_counter()
    async with session.post(
        request.url, data=request.body, headers=request.headers, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as resp:
        body = await resp.read()
        return Delivery(request, resp.status, dict(resp.headers), body, time.perf_counter() - started)


class SlackActors:
    """The people of one workspace, talking to one app at `request_url`."""

    def __init__(
        self,
        workspace: Workspace,
        request_url: str,
        *,
        signing_secret: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.workspace = workspace
        self.request_url = request_url
        self.signing_secret = signing_secret or workspace.signing_secret
        self.timeout = timeout

    def __getitem__(self, user: str) -> SlackUser:
        return SlackUser(self, self.workspace.user(user).id)

    def user(self, user: str) -> SlackUser:
        return self[user]

    def sign(self, body: bytes, content_type: str, interaction: Interaction | None = None) -> SlackRequest:
        return SlackRequest.signed(
            self.request_url, body, content_type, self.signing_secret, interaction=interaction
        )

    def send(self, request: SlackRequest) -> Delivery:
        return send(request, timeout=self.timeout)

    # ---- Events API ----------------------------------------------------------------------------

    def build_url_verification(
        self, challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    ) -> SlackRequest:
        body = {
            "token": self.workspace.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        return self.sign(json.dumps(body).encode(), JSON_TYPE)

    def verify_url(self) -> bool:
        """Slack's check when the Request URL is saved: the app must echo the challenge."""
        req = self.build_url_verification()
        challenge = json.loads(req.body)["challenge"]
        d = self.send(req)
        if d.status != 200:
            return False
        try:
            answer: object = d.json()
        except ValueError:
            return d.text == str(challenge)
        echoed: object = answer.get("challenge") if isinstance(answer, dict) else None
        return echoed == str(challenge)

    def deliver_event(self, request: SlackRequest, *, max_retries: int = 3) -> list[Delivery]:
        """Deliver an Events API request the way Slack does: redeliver (X-Slack-Retry-Num 1..3)
        while the app fails to answer 200 within 3 seconds. Slack spaces retries out (now, 1 min,
        5 min); the sandbox retries at once. Returns every delivery, the first one first."""
        deliveries = [self.send(request)]
        while not deliveries[-1].acked_in_time and len(deliveries) <= max_retries:
            last = deliveries[-1]
            reason = "http_timeout" if last.elapsed > ACK_DEADLINE else "http_error"
            deliveries.append(self.send(request.redelivered(len(deliveries), reason)))
        return deliveries

    def build_event(self, event: JSON, *, event_id: str | None = None) -> SlackRequest:
        ws = self.workspace
        now = int(time.time())
        body = {
            "token": ws.verification_token,
            "team_id": ws.team_id,
            "context_team_id": ws.team_id,
            "context_enterprise_id": None,
            "api_app_id": ws.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{ws.new_ts().replace('.', '')}",
            "event_time": now,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": ws.team_id,
                    "user_id": ws.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{ws.team_id}-{ws.app_id}",
        }
        return self.sign(json.dumps(body).encode(), JSON_TYPE)


@dataclass(frozen=True)
class SlackUser:
    """One person: every method builds and sends a signed request as this user."""

    actors: SlackActors
    id: str

    @property
    def workspace(self) -> Workspace:
        return self.actors.workspace

    @property
    def name(self) -> str:
        return self.workspace.users[self.id].name

    def _user_json(self) -> JSON:
        return {"id": self.id, "username": self.name, "name": self.name, "team_id": self.workspace.team_id}

    def _team_json(self) -> JSON:
        return {"id": self.workspace.team_id, "domain": self.workspace.domain}

    # ---- slash commands -----------------------------------------------------------------------------

    def build_command(self, command: str, text: str = "", *, channel: str) -> SlackRequest:
        ws = self.workspace
        c = ws.channel(channel, self.id)
        it = ws.mint_interaction("command", self.id, c.id)
        form = {
            "token": ws.verification_token,
            "team_id": ws.team_id,
            "team_domain": ws.domain,
            "channel_id": c.id,
            "channel_name": "directmessage" if c.is_im else c.name,
            "user_id": self.id,
            "user_name": self.name,
            "command": command,
            "text": text,
            "api_app_id": ws.app_id,
            "is_enterprise_install": "false",
            "response_url": it.response_url,
            "trigger_id": it.trigger_id,
        }
        return self.actors.sign(urllib.parse.urlencode(form).encode(), FORM, it)

    def command(self, command: str, text: str = "", *, channel: str) -> Delivery:
        """Type `/command text` in `channel`; an acknowledgement with a body is shown as Slack shows it."""
        d = self.actors.send(self.build_command(command, text, channel=channel))
        self._show_ack(d)
        return d

    def _show_ack(self, d: Delivery) -> None:
        it = d.request.interaction
        # A late acknowledgement is discarded: Slack told the user the command timed out.
        if it is None or not d.acked_in_time or not d.body.strip():
            return
        ctype = d.headers.get("content-type", d.headers.get("Content-Type", ""))
        if ctype.startswith(JSON_TYPE):
            body = d.json()
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return
        else:
            body = {"text": d.text}
        # Slack shows nothing when the ack body is invalid; the app never learns why.
        with contextlib.suppress(SlackError):
            self.workspace.respond(it.id, it.secret, body, count_use=False)

    # ---- block actions -------------------------------------------------------------------------------

    def build_click(self, *, channel: str, ts: str, action_id: str, value: str | None = None) -> SlackRequest:
        """Clicking the button (or picking from the element) `action_id` on message `ts`."""
        ws = self.workspace
        c = ws.channel(channel, self.id)
        msg = ws.message(c.id, ts)
        if msg.visible_to not in (None, self.id):
            raise SlackError("message_not_found")
        block, element = find_element(msg.blocks or [], action_id)
        ephemeral = msg.visible_to is not None
        it = ws.mint_interaction("block_actions", self.id, c.id, message_ts=ts, ephemeral=ephemeral)
        container: JSON = {"type": "message", "message_ts": ts, "channel_id": c.id, "is_ephemeral": ephemeral}
        if msg.thread_ts is not None:
            container["thread_ts"] = msg.thread_ts
        payload: JSON = {
            "type": "block_actions",
            "user": self._user_json(),
            "api_app_id": ws.app_id,
            "token": ws.verification_token,
            "container": container,
            "trigger_id": it.trigger_id,
            "team": self._team_json(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": c.id, "name": "directmessage" if c.is_im else c.name},
            "state": {"values": {}},
            "response_url": it.response_url,
            "actions": [_action(block, element, value)],
        }
        if not ephemeral:
            # Slack sends the message as it is now for messages, never for ephemeral ones.
            with ws.lock:
                payload["message"] = ws.message_json(msg)
        return self._interactive(payload, it)

    def click(self, *, channel: str, ts: str, action_id: str, value: str | None = None) -> Delivery:
        return self.actors.send(self.build_click(channel=channel, ts=ts, action_id=action_id, value=value))

    def build_view_click(self, view_id: str, action_id: str, value: str | None = None) -> SlackRequest:
        """Clicking a button in the App Home or an open modal."""
        ws = self.workspace
        view = ws.view(view_id)
        block, element = find_element(view["blocks"], action_id)
        trigger = ws.mint_trigger(self.id)
        payload: JSON = {
            "type": "block_actions",
            "user": self._user_json(),
            "api_app_id": ws.app_id,
            "token": ws.verification_token,
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": trigger,
            "team": self._team_json(),
            "enterprise": None,
            "is_enterprise_install": False,
            "view": view,
            "actions": [_action(block, element, value)],
        }
        return self._interactive(payload, None)

    def click_in_view(self, view_id: str, action_id: str, value: str | None = None) -> Delivery:
        return self.actors.send(self.build_view_click(view_id, action_id, value))

    # ---- modals --------------------------------------------------------------------------------------

    def build_view_submission(
        self, view_id: str, values: dict[str, dict[str, Any]] | None = None
    ) -> SlackRequest:
        """Submitting modal `view_id`; `values` maps block_id → action_id → typed text (or a state dict)."""
        ws = self.workspace
        view = ws.view(view_id)
        state: dict[str, dict[str, Any]] = {}
        for block_id, by_action in (values or {}).items():
            state[block_id] = {
                action_id: v if isinstance(v, dict) else {"type": "plain_text_input", "value": v}
                for action_id, v in by_action.items()
            }
        view["state"] = {"values": state}
        payload: JSON = {
            "type": "view_submission",
            "team": self._team_json(),
            "user": self._user_json(),
            "api_app_id": ws.app_id,
            "token": ws.verification_token,
            "trigger_id": ws.mint_trigger(self.id),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._interactive(payload, None)

    def submit_view(self, view_id: str, values: dict[str, dict[str, Any]] | None = None) -> Delivery:
        """Submit the modal, then apply the app's response_action as Slack does (errors keep it open)."""
        d = self.actors.send(self.build_view_submission(view_id, values))
        action: JSON = {}
        if d.status == 200 and d.body.strip():
            try:
                parsed = d.json()
                action = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                action = {}
        kind = action.get("response_action")
        if d.status != 200 or kind == "errors":
            return d
        if kind == "update" and isinstance(action.get("view"), dict):
            self.workspace.update_view(self.workspace.bot_user_id, action["view"], view_id=view_id)
        elif kind == "push" and isinstance(action.get("view"), dict):
            trigger = self.workspace.mint_trigger(self.id)
            self.workspace.push_view(self.workspace.bot_user_id, trigger, action["view"])
        elif kind == "clear":
            for v in self.workspace.open_modals(self.id):
                self.workspace.close_view(self.id, v["id"])
        else:
            self.workspace.close_view(self.id, view_id)
        return d

    # ---- plain messages ------------------------------------------------------------------------------

    def say(self, channel: str, text: str, *, thread_ts: str | None = None) -> str:
        """Post a message as this person (no request to the app: Slack would send a message event)."""
        return self.workspace.post_message(self.id, channel, text=text, thread_ts=thread_ts).ts

    # ---- App Home ------------------------------------------------------------------------------------

    def build_home_opened(self) -> SlackRequest:
        ws = self.workspace
        event: JSON = {
            "type": "app_home_opened",
            "user": self.id,
            "channel": "D" + self.id[1:],
            "tab": "home",
            "event_ts": ws.new_ts(),
        }
        home = ws.home_view(self.id)
        if home is not None:
            event["view"] = home
        return self.actors.build_event(event)

    def open_home(self) -> Delivery:
        return self.actors.send(self.build_home_opened())

    # ---- helpers ---------------------------------------------------------------------------------------

    def _interactive(self, payload: JSON, it: Interaction | None) -> SlackRequest:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.actors.sign(body, FORM, it)

    def ephemerals(self, channel: str) -> list[JSON]:
        """What this user alone sees in `channel` (ephemeral messages), oldest first."""
        ws = self.workspace
        with ws.lock:
            return [ws.message_json(m) for m in ws.ephemerals(channel, self.id)]


def find_element(blocks: list[JSON], action_id: str) -> tuple[JSON, JSON]:
    """The (block, element) holding the interactive element `action_id`, wherever Slack allows one."""
    for block in blocks:
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for el in candidates:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                return block, el
    found = sorted(
        str(el.get("action_id"))
        for b in blocks
        for el in [*(b.get("elements") or []), b.get("accessory"), b.get("element")]
        if isinstance(el, dict) and "action_id" in el
    )
    raise LookupError(f"no element with action_id {action_id!r} in the message (there are: {found})")


def _action(block: JSON, element: JSON, value: str | None) -> JSON:
    action: JSON = {
        "action_id": element["action_id"],
        "block_id": block.get("block_id", ""),
        "type": element.get("type", "button"),
        "action_ts": f"{time.time():.6f}",
    }
    if element.get("type") == "button":
        action["text"] = element.get("text")
        if "value" in element:
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
    elif element.get("type") in ("static_select", "overflow", "radio_buttons"):
        options = element.get("options") or []
        chosen = next((o for o in options if o.get("value") == value), options[0] if options else None)
        action["selected_option"] = chosen
    elif value is not None:
        action["value"] = value
    return action
