"""/slack/events: slash commands are acknowledged as soon as their signature checks out; Bolt runs them
right after the burst of acks, and what the listener would have put in its ack goes to the command's
response_url (Slack shows it the same way, ephemerally).

Why: Bolt spends ~1.5 ms of CPU per request before its listener can ack (parsing, kwargs injection,
middleware) — measured with bench/slack_ack.py, a burst of 50 slash commands had its p99 ack at
2.3× a bare ASGI endpoint's, all of it queueing behind other requests' Bolt work on the one event
loop. Checking the signature costs one HMAC. Everything else — interactivity (a view submission's
ack carries its errors), events (url_verification answers with the challenge), requests whose
signature is missing, wrong or stale (401) — goes through Bolt before the answer, as before.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.requests import Request
from starlette.responses import Response

from handlers.background import Background
from handlers.metrics import Metrics
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)


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
        with self._background.request():
            body = await request.body()
            if not _is_command(request, body) or not self._verifier.is_valid_request(
                body, dict(request.headers)
            ):
                return await self._handler.handle(request)
            headers: dict[str, str | Sequence[str]] = dict(request.headers.items())
            self._background.spawn(
                self._dispatch(body.decode("utf-8", "replace"), request.url.query, headers),
                name="slash command after its ack",
            )
            return Response(status_code=200)

    async def _dispatch(self, body: str, query: str, headers: dict[str, str | Sequence[str]]) -> None:
        response = await self._app.async_dispatch(AsyncBoltRequest(body=body, query=query, headers=headers))
        if response.status != 200:
            log.warning(
                "Bolt answered a slash command with %s after its ack: %s", response.status, response.body
            )
            return
        if not response.body:
            return
        await _respond_with_ack(body, response.body, response.headers)


def _is_command(request: Request, body: bytes) -> bool:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return False
    return body.startswith(b"command=") or b"&command=" in body


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
