"""Who is in a Slack user group (usergroups.users.list): roles in the plan may name groups."""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.client import translate

CLIENT_ERRORS = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError)


class SlackDirectory:
    """bot.services.roles.UsergroupDirectory over the Web API."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def usergroup_members(self, usergroup_id: str) -> frozenset[str]:
        try:
            response = await self._client.usergroups_users_list(usergroup=usergroup_id)
        except CLIENT_ERRORS as error:
            raise translate(error, "usergroups.users.list") from error
        users = response.get("users") or []
        return frozenset(str(user) for user in users)

    async def check_auth(self) -> str:
        """auth.test: the bot user's id when the token works (readiness), else an AdapterError."""
        try:
            response = await self._client.auth_test()
        except CLIENT_ERRORS as error:
            raise translate(error, "auth.test") from error
        return str(response.get("user_id", ""))
