"""Sending answers after the ack: through the payload's response_url (ephemeral by default) and the
Web API, with Slack's failures logged rather than raised into a background task."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackClientError

log = logging.getLogger(__name__)
SLACK_ERRORS = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError)
INTERNAL_ERROR = (
    ":x: migratebot hit an internal error answering this (it is logged). Check `/migrate status` "
    "before trying again."
)


async def tell(respond: AsyncRespond, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
    """An ephemeral answer to the person who asked (replace_original=False keeps the message clicked)."""
    try:
        await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
    except SLACK_ERRORS as error:
        log.warning("could not answer through response_url: %s", error)
