"""Bolt middleware: drop Slack redeliveries, and put the services and the resolved Actor in every
listener's context (Dispatch's db middleware, in spirit), so listeners stay a few lines long.

Bolt's own middleware runs first: signature verification (401 for missing, wrong or stale
signatures — before anything here runs), url_verification, auth.test-based authorization.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.domain.errors import DomainError
from bot.domain.policy import Actor
from bot.logs import current_request_id, request_scope
from bot.services.reports import ReportSource
from bot.services.requests import WaveMessages, WaveRequests
from bot.services.roles import RoleResolver
from handlers.background import Background
from handlers.metrics import Metrics

log = logging.getLogger(__name__)

# Slack redelivers events for up to ~5 minutes (retries at once, after 1 and after 5 minutes);
# interactive payloads and commands carry a trigger_id that is unique per action.
DELIVERY_MEMORY = 30 * 60.0
CLAIM_BATCH_DELAY = 0.05


class DeliveryLedger:
    """Which Slack deliveries were already taken, so that a redelivery (X-Slack-Retry-Num) or a
    replayed body never acts twice.

    Memory answers first (no I/O before the ack). Every first delivery is also claimed in the
    database (slack_deliveries: primary-key inserts, one transaction per burst) after the ack; a
    redelivery this process has not seen (a restart, another replica) claims there before acting,
    and is dropped when someone already did. A database hiccup never drops a delivery: changes are
    still guarded by versions.
    """

    def __init__(self, requests: WaveRequests, *, memory: float = DELIVERY_MEMORY) -> None:
        self._requests = requests
        self._memory = memory
        self._seen: dict[str, float] = {}
        self._unwritten: list[str] = []
        self._flush: asyncio.Task[None] | None = None

    async def claim(self, key: str, *, redelivery: bool) -> bool:
        """True when this delivery is new and is now ours to act on."""
        now = time.monotonic()
        if len(self._seen) > 10_000:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self._memory}
        seen = self._seen.get(key)
        if seen is not None and now - seen < self._memory:
            return False
        self._seen[key] = now
        if redelivery:
            try:
                return await asyncio.to_thread(self._requests.claim_deliveries, [key]) == {key}
            except DomainError as error:
                log.warning("can't check delivery %s in the database (%s): acting on it", key, error)
                return True
        # First deliveries are written in batches after the acks: one transaction per burst.
        self._unwritten.append(key)
        if self._flush is None or self._flush.done():
            # One batch serves many requests: it logs under none of their ids.
            self._flush = asyncio.create_task(
                self._write_claims(), name="record Slack deliveries", context=contextvars.Context()
            )
        return True

    async def _write_claims(self) -> None:
        await asyncio.sleep(CLAIM_BATCH_DELAY)
        while self._unwritten:
            keys, self._unwritten = self._unwritten, []
            try:
                await asyncio.to_thread(self._requests.claim_deliveries, keys)
            except DomainError as error:
                log.warning("could not record %d Slack deliveries: %s", len(keys), error)


@dataclass(frozen=True)
class Deps:
    """What listeners need, built once by the composition root (bot/app.py)."""

    requests: WaveRequests
    roles: RoleResolver
    metrics: Metrics
    background: Background
    deliveries: DeliveryLedger
    messages: WaveMessages
    # The waves' readiness, security and results reports; None when this migratebot can't reach the
    # cluster (MIGRATEBOT_EXECUTOR=off): requests then show no verdict and /migrate readiness says why.
    reports: ReportSource | None = None


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
    # One middleware, not two: Bolt builds each middleware's keyword arguments per request (~0.17 ms).
    async def prepare(
        req: AsyncBoltRequest, context: AsyncBoltContext, body: dict[str, Any], next: Next
    ) -> BoltResponse | None:
        # Requests over HTTP have their id from the front door; Socket Mode's get one here.
        scope = request_scope() if current_request_id() is None else contextlib.nullcontext()
        with deps.background.request(), scope:
            context["deps"] = deps
            key = delivery_key(body)
            if key is not None:
                context["delivery"] = key
                redelivery = bool(req.headers.get("x-slack-retry-num"))
                if not await deps.deliveries.claim(key, redelivery=redelivery):
                    deps.metrics.inc("migratebot_redeliveries_dropped_total")
                    return BoltResponse(status=200, body="")
            await _resolve_actor(deps, context)
            await next()
            return None

    app.use(prepare)


async def _resolve_actor(deps: Deps, context: AsyncBoltContext) -> None:
    plans = deps.requests.plans
    if plans.changed():
        # Roles come from the plan as the file says now (parsing and registering it is blocking).
        try:
            await asyncio.to_thread(plans.current)
        except DomainError as error:
            log.warning("the plan file can't be used: %s — roles come from the last good plan", error)
    user = context.user_id
    if isinstance(user, str) and user:
        context["actor"] = await deps.roles.actor(user)
    else:
        # Slack names a person on every command and click; a payload whose user id is missing, empty
        # or not a string holds no role and is refused as such, instead of failing the listener (a 500
        # and a traceback).
        context["actor"] = Actor(str(user or ""), frozenset())
