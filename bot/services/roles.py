"""Who someone is in the migration: their roles from the plan, by user ID or Slack user group.

User group members come from Slack (usergroups.users.list through the Slack adapter) and are cached
per group for `ttl`: a role check must not cost a Web API call on every click, and Slack allows
usergroups.users.list only 20 times a minute. Concurrent lookups of one group share a single call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.adapters.errors import AdapterError
from bot.domain.policy import Actor, Role
from bot.plan import Plan, RoleMembers

log = logging.getLogger(__name__)

DEFAULT_TTL = 300.0


class UsergroupDirectory(Protocol):
    """Implemented by the Slack adapter; raises bot.adapters.errors.AdapterError when Slack fails."""

    async def usergroup_members(self, usergroup_id: str) -> frozenset[str]: ...


@dataclass(frozen=True)
class _Cached:
    members: frozenset[str]
    expires: float


class RoleResolver:
    def __init__(
        self,
        plan: Callable[[], Plan],
        directory: UsergroupDirectory,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plan = plan
        self._directory = directory
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def actor(self, user_id: str) -> Actor:
        """The person with every role the current plan gives them, directly or through a user group."""
        roles = self._plan().roles
        held: set[Role] = set()
        for role, members in (
            (Role.SRE, roles.sre),
            (Role.TEAM_LEAD, roles.team_leads),
            (Role.ONCALL, roles.oncall),
        ):
            if await self._holds(user_id, members):
                held.add(role)
        return Actor(user_id, frozenset(held))

    async def _holds(self, user_id: str, members: RoleMembers) -> bool:
        if user_id in members.users:
            return True
        for group in members.usergroups:
            if user_id in await self.members(group):
                return True
        return False

    async def members(self, usergroup_id: str) -> frozenset[str]:
        """The group's members, from the cache while fresh. A failed lookup grants nothing and is not
        cached, so the next request asks Slack again."""
        cached = self._cache.get(usergroup_id)
        if cached is not None and cached.expires > self._clock():
            return cached.members
        lock = self._locks.setdefault(usergroup_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(usergroup_id)
            if cached is not None and cached.expires > self._clock():
                return cached.members
            try:
                members = await self._directory.usergroup_members(usergroup_id)
            except AdapterError as error:
                log.warning(
                    "can't read members of user group %s: %s — it grants no role now", usergroup_id, error
                )
                return frozenset()
            self._cache[usergroup_id] = _Cached(members, self._clock() + self._ttl)
            return members

    def forget(self) -> None:
        """Drop every cached group (the plan changed, or an operator asks for fresh membership)."""
        self._cache.clear()
