"""/slack/events: slash commands are acknowledged as soon as their signature checks out; Bolt runs them
right after the burst of acks, and what the listener would have put in its ack goes to the command's
response_url (Slack shows it the same way, ephemerally).

Why: Bolt spends ~1.5 ms of CPU per request before its listener can ack (parsing, kwargs injection,
middleware) — measured with bench/slack_ack.py, a burst of 50 slash commands had its p99 ack at
2.3× a bare ASGI endpoint's, all of it queueing behind other requests' Bolt work on the one event
loop. Checking the signature costs one HMAC. Everything else — interactivity (a view submission's
ack carries its errors), events (url_verification answers with the challenge), requests whose
signature is missing, wrong or stale (401) — goes through Bolt before the answer, as before.

Every request gets a request id (bot/logs.py) for everything logged while it is handled and by the
work it spawns; the answer carries it in X-Request-Id. The time from the request reaching here to
its answer is the ack latency in /metrics (migratebot_slack_ack_seconds).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.logs import request_scope
from handlers.background import Background
from handlers.metrics import Metrics
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)
TIMESTAMP_HEADER = "x-slack-request-timestamp"


class FrontDoor:
    def __init__(
        self,
        handler: AsyncSlackRequestHandler,
        app: AsyncApp,
        signing_secret: str,
        background: Background,
        metrics: Metrics,
    ) -> None:
        self._handler = handler
        self._app = app
        self._verifier = SignatureVerifier(signing_secret)
        self._background = background
        self._metrics = metrics

    async def handle(self, request: Request) -> Response:
        received = time.perf_counter()
        with self._background.request(), request_scope() as request_id:
            body = await request.body()
            kind = _kind(request, body)
            if not _is_timestamp(request.headers.get(TIMESTAMP_HEADER)):
                # slack_sdk's verifier (Bolt's too) raises on a timestamp that is not a number: a 500
                # and a traceback for anyone who sends one. Nothing can be signed with it: 401, as Bolt.
                response: Response = JSONResponse({"error": "invalid request"}, status_code=401)
            elif kind == "command" and self._verifier.is_valid_request(body, dict(request.headers)):
                headers: dict[str, str | Sequence[str]] = dict(request.headers.items())
                self._background.spawn(
                    self._dispatch(body.decode("utf-8", "replace"), request.url.query, headers),
                    name="slash command after its ack",
                )
                response = Response(status_code=200)
            else:
                response = await self._handler.handle(request)
            elapsed = time.perf_counter() - received
            if response.status_code == 200:
                self._metrics.observe_ack(kind, elapsed)
            response.headers["X-Request-Id"] = request_id
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "Slack %s answered %s in %.1f ms",
                    kind,
                    response.status_code,
                    elapsed * 1000,
                    extra={"slack": kind, "status": response.status_code, **_who(kind, body)},
                )
            return response

    async def _dispatch(self, body: str, query: str, headers: dict[str, str | Sequence[str]]) -> None:
        started = time.perf_counter()
        response = await self._app.async_dispatch(AsyncBoltRequest(body=body, query=query, headers=headers))
        if response.status != 200:
            log.warning(
                "Bolt answered a slash command with %s after its ack: %s", response.status, response.body
            )
            return
        log.info("slash command ran in %.1f ms after its ack", (time.perf_counter() - started) * 1000)
        if not response.body:
            return
        await _respond_with_ack(body, response.body, response.headers)


def _is_timestamp(value: str | None) -> bool:
    """Missing is Bolt's to refuse; present, it must be what slack_sdk's verifier can read."""
    if value is None:
        return True
    try:
        int(value)
    except ValueError:
        return False
    return True


def _kind(request: Request, body: bytes) -> str:
    """command (a slash command), interaction (buttons, views: a form with payload=), or event."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        if body.startswith(b"command=") or b"&command=" in body:
            return "command"
        return "interaction"
    return "event"


def _who(kind: str, body: bytes) -> dict[str, str]:
    """Who asked what, for the request's log line (a command's form is cheap to read; the rest is
    Bolt's to parse)."""
    if kind != "command":
        return {}
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    text = (form.get("text") or [""])[0].split()
    return {
        "command": (form.get("command") or [""])[0],
        "verb": text[0] if text else "",
        "user": (form.get("user_id") or [""])[0],
        "channel": (form.get("channel_id") or [""])[0],
    }


async def _respond_with_ack(form: str, ack_body: str, headers: Mapping[str, Sequence[str]]) -> None:
    """Show what the listener acknowledged with, through the command's response_url."""
    response_url = (urllib.parse.parse_qs(form).get("response_url") or [""])[0]
    if not response_url:
        return
    content_type = (headers.get("content-type") or [""])[0]
    message = json.loads(ack_body) if content_type.startswith("application/json") else {"text": ack_body}
    message.setdefault("response_type", "ephemeral")
    try:
        await AsyncWebhookClient(response_url).send_dict(message)
    except SLACK_ERRORS as error:
        log.warning("could not show a command's answer through response_url: %s", error)
