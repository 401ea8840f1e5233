"""Roles come from the plan: user IDs directly, user groups through Slack, cached with expiry."""

from __future__ import annotations

import asyncio

from bot_world import EXAMPLE_PLAN

from bot.adapters.errors import TemporaryError
from bot.domain.policy import Role
from bot.plan import Plan, load_plan
from bot.services.roles import RoleResolver

PLAN: Plan = load_plan(EXAMPLE_PLAN)


class Directory:
    def __init__(self, members: dict[str, frozenset[str]]) -> None:
        self.members = members
        self.calls = 0
        self.fail = False

    async def usergroup_members(self, usergroup_id: str) -> frozenset[str]:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise TemporaryError("Slack usergroups.users.list failed: ratelimited", status=429)
        return self.members[usergroup_id]


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_roles_by_user_id_and_by_usergroup() -> None:
    directory = Directory({"S0ONCALL01": frozenset({"U0ONCALL02"})})
    roles = RoleResolver(lambda: PLAN, directory)

    async def resolve() -> dict[str, frozenset[Role]]:
        return {
            u: (await roles.actor(u)).roles for u in ("U0SRE00001", "U0LEAD0001", "U0ONCALL02", "U0NOBODY01")
        }

    assert asyncio.run(resolve()) == {
        "U0SRE00001": frozenset({Role.SRE}),
        "U0LEAD0001": frozenset({Role.TEAM_LEAD}),
        "U0ONCALL02": frozenset({Role.ONCALL}),
        "U0NOBODY01": frozenset(),
    }


def test_members_are_cached_until_they_expire_and_concurrent_lookups_share_one_call() -> None:
    directory = Directory({"S0ONCALL01": frozenset({"U0ONCALL02"})})
    clock = Clock()
    roles = RoleResolver(lambda: PLAN, directory, ttl=60, clock=clock)

    async def twenty() -> None:
        await asyncio.gather(*(roles.actor("U0NOBODY01") for _ in range(20)))

    asyncio.run(twenty())
    assert directory.calls == 1
    clock.now = 59
    asyncio.run(roles.actor("U0NOBODY01"))
    assert directory.calls == 1
    directory.members["S0ONCALL01"] = frozenset({"U0NOBODY01"})
    clock.now = 61
    assert asyncio.run(roles.actor("U0NOBODY01")).roles == frozenset({Role.ONCALL})
    assert directory.calls == 2


def test_a_failed_lookup_grants_nothing_and_is_not_cached() -> None:
    directory = Directory({"S0ONCALL01": frozenset({"U0ONCALL02"})})
    roles = RoleResolver(lambda: PLAN, directory)
    directory.fail = True
    assert asyncio.run(roles.actor("U0ONCALL02")).roles == frozenset()
    directory.fail = False
    assert asyncio.run(roles.actor("U0ONCALL02")).roles == frozenset({Role.ONCALL})
    assert directory.calls == 2
