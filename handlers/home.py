"""App Home: each cluster's waves and states, AL2 nodes left and the last canary, published when
someone opens the tab."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.requests import WaveMessages
from handlers import views
from handlers.ids import Event
from handlers.middleware import deps_of
from handlers.replies import SLACK_ERRORS

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    @app.event(Event.APP_HOME_OPENED)
    async def home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        # Events are acknowledged by Bolt when the listener returns: publish after that.
        deps = deps_of(context)
        user = str(event.get("user", ""))
        deps.background.spawn(_publish(deps.messages, client, user), name=f"home for {user}")


async def _publish(messages: WaveMessages, client: AsyncWebClient, user: str) -> None:
    glances = await asyncio.to_thread(messages.glance)
    try:
        await client.views_publish(user_id=user, view=views.home_view(glances))
    except SLACK_ERRORS as error:
        log.warning("could not publish the App Home for %s: %s", user, error)
