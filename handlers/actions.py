"""Approve / Deny on a wave request: ack at once, then let the service re-check everything."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import DomainError, Forbidden
from bot.domain.policy import Actor
from bot.services.requests import ForgedAction, RequestOutdated, RequestRef, StaleRequest
from handlers.ids import WaveAction
from handlers.middleware import Deps, actor_of, deps_of
from handlers.replies import INTERNAL_ERROR, SLACK_ERRORS, tell
from handlers.reports import RequestReports, reading
from handlers.requests import post_request, redraw
from storage.repositories import ApprovalDecision

log = logging.getLogger(__name__)

DECISIONS = {WaveAction.APPROVE: ApprovalDecision.APPROVE, WaveAction.DENY: ApprovalDecision.DENY}


@dataclasses.dataclass(frozen=True)
class Click:
    """The parts of a block_actions payload a decision depends on — and nothing it may not trust."""

    value: object
    channel: str
    message_ts: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Click:
        actions = body.get("actions") or [{}]
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or ""
        # A container from another channel than the payload's own is a forgery, not a mix-up.
        if container.get("channel_id") not in (None, channel):
            channel = f"{channel}|{container.get('channel_id')}"
        return cls(actions[0].get("value"), str(channel), str(container.get("message_ts") or ""))


def register(app: AsyncApp) -> None:
    for action, decision in DECISIONS.items():
        _register_decision(app, action, decision)


def _register_decision(app: AsyncApp, action: WaveAction, decision: ApprovalDecision) -> None:
    @app.action(action)
    async def decide(
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        deps = deps_of(context)
        click = Click.of(body)
        deps.background.spawn(
            _decide(deps, actor_of(context), click, decision, context.get("delivery"), respond, client),
            name=f"{action.value} by {context.user_id}",
        )


async def _decide(
    deps: Deps,
    actor: Actor,
    click: Click,
    decision: ApprovalDecision,
    delivery: str | None,
    respond: AsyncRespond,
    client: AsyncWebClient,
) -> None:
    requests = deps.requests
    ref = RequestRef.parse(click.value)
    try:
        outcome = await asyncio.to_thread(
            requests.decide,
            actor,
            ref,
            decision,
            channel=click.channel,
            message_ts=click.message_ts,
            delivery=delivery,
            recheck=None if deps.reports is None else deps.reports.snapshot,
        )
    except RequestOutdated as changed:
        deps.metrics.inc("migratebot_refusals_total", reason=changed.reason)
        await _renew(deps, click, changed, respond, client)
        return
    except Forbidden as refusal:
        deps.metrics.inc("migratebot_refusals_total", reason="role")
        await tell(respond, f":no_entry: {refusal}")
        return
    except ForgedAction as refusal:
        deps.metrics.inc("migratebot_refusals_total", reason="forged")
        await tell(respond, f":no_entry: {refusal}")
        return
    except StaleRequest as refusal:
        deps.metrics.inc("migratebot_refusals_total", reason="stale")
        await tell(respond, f":warning: {refusal}")
        return
    except DomainError as refusal:
        deps.metrics.inc("migratebot_refusals_total", reason="refused")
        await tell(respond, f":warning: {refusal}")
        return
    except Exception:
        log.exception("deciding on request %s failed", click.value)
        await tell(respond, INTERNAL_ERROR)
        return
    await redraw(client, click.channel, click.message_ts, outcome.card)
    await tell(respond, outcome.answer[:1].upper() + outcome.answer[1:] + ".")


async def _renew(
    deps: Deps, click: Click, changed: RequestOutdated, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """The plan or the wave's readiness changed under an open request: close the old message and post
    a fresh request (with fresh reports) on the requester's behalf — if the plan still lets them
    request waves."""
    requests = deps.requests
    wave = changed.wave
    old = RequestRef.parse(click.value)
    if old is not None:
        card = await asyncio.to_thread(requests.card, wave.id, old.version)
        await redraw(
            client, click.channel, click.message_ts, dataclasses.replace(card, superseded=changed.note)
        )
    requester = await deps.roles.actor(wave.requested_by or "")
    try:
        fresh = await asyncio.to_thread(requests.next_wave, requester, wave.cluster, delivery=None)
        where = await post_request(deps, client, reading(fresh, deps.reports))
    except DomainError as refusal:
        await tell(respond, f":warning: {changed} The request could not be renewed: {refusal}")
        return
    except SLACK_ERRORS as error:
        log.warning("could not post the renewed request for %s: %s", wave.label, error)
        await tell(respond, f":warning: {changed} A fresh request is recorded but could not be posted yet.")
        return
    await tell(respond, f":warning: {changed}. A fresh request is posted in {where}.")
    if deps.reports is not None:
        await RequestReports(deps.reports, requests, deps.messages, client).post(fresh)
