"""Bolt middleware: drop Slack redeliveries, and put the services and the resolved Actor in every
listener's context (Dispatch's db middleware, in spirit), so listeners stay a few lines long.

Bolt's own middleware runs first: signature verification (401 for missing, wrong or stale
signatures — before anything here runs), url_verification, auth.test-based authorization.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.domain.errors import DomainError
from bot.domain.policy import Actor
from bot.services.requests import WaveRequests
from bot.services.roles import RoleResolver
from handlers.background import Background
from handlers.metrics import Metrics

log = logging.getLogger(__name__)

# Slack redelivers events for up to ~5 minutes (retries at once, after 1 and after 5 minutes);
# interactive payloads and commands carry a trigger_id that is unique per action.
DELIVERY_MEMORY = 30 * 60.0


class DeliveryLedger:
    """Which Slack deliveries were already taken, so that a redelivery (X-Slack-Retry-Num) or a
    replayed body never acts twice. In memory for this process; for a redelivery this process has
    not seen (a restart, another replica) the audit log is asked: every change a delivery caused
    is audited with its delivery key."""

    def __init__(self, requests: WaveRequests, *, memory: float = DELIVERY_MEMORY) -> None:
        self._requests = requests
        self._memory = memory
        self._seen: dict[str, float] = {}

    async def claim(self, key: str, *, redelivery: bool) -> bool:
        """True when this delivery is new and is now ours to act on."""
        now = time.monotonic()
        if len(self._seen) > 10_000:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self._memory}
        seen = self._seen.get(key)
        if seen is not None and now - seen < self._memory:
            return False
        self._seen[key] = now
        # Not in memory: a redelivery may still be one this process acted on before a restart.
        return not (redelivery and await asyncio.to_thread(self._requests.delivery_seen, key))


@dataclass(frozen=True)
class Deps:
    """What listeners need, built once by the composition root (bot/app.py)."""

    requests: WaveRequests
    roles: RoleResolver
    metrics: Metrics
    background: Background
    deliveries: DeliveryLedger


def deps_of(context: Mapping[str, Any]) -> Deps:
    deps = context["deps"]
    assert isinstance(deps, Deps)
    return deps


def actor_of(context: Mapping[str, Any]) -> Actor:
    actor = context.get("actor")
    assert isinstance(actor, Actor), "the actor middleware did not run"
    return actor


def delivery_key(body: Mapping[str, Any]) -> str | None:
    """What identifies one delivery: the event id, else the action's trigger id."""
    for field in ("event_id", "trigger_id"):
        value = body.get(field)
        if isinstance(value, str) and value:
            return value
    return None


Next = Callable[[], Awaitable[None]]


def register(app: AsyncApp, deps: Deps) -> None:
    async def drop_redeliveries(
        req: AsyncBoltRequest, context: AsyncBoltContext, body: dict[str, Any], next: Next
    ) -> BoltResponse | None:
        context["deps"] = deps
        key = delivery_key(body)
        if key is not None:
            context["delivery"] = key
            redelivery = bool(req.headers.get("x-slack-retry-num"))
            if not await deps.deliveries.claim(key, redelivery=redelivery):
                deps.metrics.inc("migratebot_redeliveries_dropped_total")
                return BoltResponse(status=200, body="")
        await next()
        return None

    async def resolve_actor(context: AsyncBoltContext, next: Next) -> None:
        plans = deps.requests.plans
        if plans.changed():
            # Roles come from the plan as the file says now (parsing and registering it is blocking).
            try:
                await asyncio.to_thread(plans.current)
            except DomainError as error:
                log.warning("the plan file can't be used: %s — roles come from the last good plan", error)
        if context.user_id:
            context["actor"] = await deps.roles.actor(context.user_id)
        await next()

    app.use(drop_redeliveries)
    app.use(resolve_actor)
