"""Posting and redrawing wave request messages (shared by /migrate next-wave and the buttons)."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.services.requests import RequestCard
from handlers import views
from handlers.middleware import Deps
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)


async def post_request(deps: Deps, client: AsyncWebClient, card: RequestCard) -> str:
    """Post the request in the migration channel and remember the message: clicks count only there."""
    channel = deps.requests.plans.latest().channels.migration
    response = await client.chat_postMessage(
        channel=channel, text=views.request_text(card), blocks=views.request_blocks(card)
    )
    posted_channel = str(response.get("channel") or channel)
    ts = str(response["ts"])
    await asyncio.to_thread(deps.requests.record_request_message, card, channel=posted_channel, ts=ts)
    return f"<#{posted_channel}>"


async def redraw(client: AsyncWebClient, channel: str, ts: str, card: RequestCard) -> None:
    """Update the request message in place: who decided and when; decided buttons disappear."""
    try:
        await client.chat_update(
            channel=channel, ts=ts, text=views.request_text(card), blocks=views.request_blocks(card)
        )
    except SLACK_ERRORS as error:
        # The decision is in the database already; the message catches up on the next redraw.
        log.warning("could not update request message %s/%s: %s", channel, ts, error)
