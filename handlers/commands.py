"""`/migrate`: parse, check the channel, ack at once; the rest runs after the ack."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import DomainError, Forbidden
from bot.domain.policy import Actor
from bot.domain.waves import Trigger
from bot.plan import Plan
from bot.services.requests import StaleRequest, only_cluster
from handlers import views
from handlers.alerts import CanaryDeps, canary_of, canary_run, canary_status
from handlers.grammar import AUDIT_DEFAULT, CanaryAction, Command, UsageError, Verb, parse, usage
from handlers.ids import SlashCommand
from handlers.middleware import Deps, actor_of, deps_of
from handlers.replies import INTERNAL_ERROR, SLACK_ERRORS, tell
from handlers.reports import RequestReports, answer, reading
from handlers.requests import post_request, redraw
from storage.repositories import WaveView

log = logging.getLogger(__name__)

# Verbs whose capability is another issue's: an honest "not yet", never a made-up answer.
NOT_LANDED: dict[Verb, str] = {
    Verb.PREVIEW: "the inventory and wave preview (issue: wave preview from the cluster's nodes and pods)",
    Verb.ROLLBACK: "the engine's rollback (issue: the wave engine — cordon, drain, NodePools, rollback)",
    Verb.CANARY: "the canary checks (issue: timed canary checks that alert on-call)",
}
CONTROLS = {Verb.PAUSE: Trigger.PAUSE, Verb.RESUME: Trigger.RESUME, Verb.ABORT: Trigger.ABORT}


def channel_refusal(plan: Plan, channel_id: str) -> str | None:
    allowed = (plan.channels.migration, plan.channels.alerts)
    if channel_id in allowed:
        return None
    return (
        f"/migrate works in <#{plan.channels.migration}> (and <#{plan.channels.alerts}>), where everyone "
        "sees what is asked and decided — run it there. Nothing was done."
    )


def register(app: AsyncApp) -> None:
    @app.command(SlashCommand.MIGRATE)
    async def migrate(
        ack: AsyncAck,
        command: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        deps = deps_of(context)
        parsed = parse(str(command.get("text", "")))
        if isinstance(parsed, UsageError):
            deps.metrics.inc("migratebot_refusals_total", reason="usage")
            await ack(text=parsed.message, response_type="ephemeral")
            return
        deps.metrics.inc("migratebot_commands_total", verb=parsed.verb.value)
        refusal = channel_refusal(deps.requests.plans.latest(), str(command.get("channel_id", "")))
        if refusal is not None:
            deps.metrics.inc("migratebot_refusals_total", reason="channel")
            await ack(text=refusal, response_type="ephemeral")
            return
        if parsed.verb is Verb.HELP:
            await ack(text=usage(), response_type="ephemeral")
            return
        canary = canary_of(context)
        if parsed.verb is Verb.CANARY and canary is not None:
            await ack()
            deps.background.spawn(_canary(deps, canary, parsed, respond), name="/migrate canary")
            return
        if parsed.verb in NOT_LANDED:
            later = (
                f"`/migrate {parsed.verb.value}` arrives with {NOT_LANDED[parsed.verb]}. Nothing was done."
            )
            await ack(text=later, response_type="ephemeral")
            return
        await ack()
        ask = Ask(deps, parsed, actor_of(context), context.get("delivery"), respond, client)
        deps.background.spawn(_run(ask), name=f"/migrate {parsed.verb.value}")


@dataclass(frozen=True)
class Ask:
    """One /migrate after its ack: who asked what, and where answers go."""

    deps: Deps
    cmd: Command
    actor: Actor
    delivery: str | None
    respond: AsyncRespond
    client: AsyncWebClient


async def _status(ask: Ask) -> None:
    cluster, waves = await asyncio.to_thread(ask.deps.requests.status, ask.cmd.cluster)
    await tell(ask.respond, views.status_text(cluster, waves), blocks=views.status_blocks(cluster, waves))


async def _plan(ask: Ask) -> None:
    summary = (await asyncio.to_thread(ask.deps.requests.plans.current)).summary()
    await tell(ask.respond, f"plan hash {summary.plan_hash}", blocks=views.plan_blocks(summary))


async def _audit(ask: Ask) -> None:
    events = await asyncio.to_thread(ask.deps.requests.audit_tail, ask.cmd.limit or AUDIT_DEFAULT)
    await tell(ask.respond, f"last {len(events)} audit events", blocks=views.audit_blocks(events))


async def _next_wave(ask: Ask) -> None:
    requests = ask.deps.requests
    card = await asyncio.to_thread(requests.next_wave, ask.actor, ask.cmd.cluster, delivery=ask.delivery)
    reports = ask.deps.reports
    try:
        where = await post_request(ask.deps, ask.client, reading(card, reports))
    except SLACK_ERRORS as error:
        log.warning("could not post the request for %s: %s", card.wave.label, error)
        channel = requests.plans.latest().channels.migration
        await asyncio.to_thread(
            ask.deps.messages.want_request,
            card,
            channel,
            text=views.request_text(card),
            blocks=views.request_blocks(card),
        )
        await tell(
            ask.respond,
            f":warning: {card.wave.label} is requested, but Slack refused the request message ({error}). "
            f"It is posted in <#{channel}> as soon as Slack takes it; to drop the request instead, "
            "`/migrate abort` clears it and `/migrate next-wave` asks again.",
        )
        return
    await tell(ask.respond, f"Requested {card.wave.label}: the request is in {where} for a team lead.")
    if reports is not None:
        # After the answer: the reports read the cluster and AWS; they never fail the request.
        await RequestReports(reports, requests, ask.deps.messages, ask.client).post(card)


async def _report(ask: Ask) -> None:
    """`/migrate readiness|security [wave]`: the report, to the person who asked."""
    text, blocks = await answer(ask.deps.reports, ask.cmd.verb.value, ask.cmd.cluster, ask.cmd.wave)
    await tell(ask.respond, text, blocks=blocks)


async def _control(ask: Ask) -> None:
    requests, verb = ask.deps.requests, ask.cmd.verb
    wave = await asyncio.to_thread(
        requests.control, ask.actor, ask.cmd.cluster, CONTROLS[verb], delivery=ask.delivery
    )
    text = f"{wave.label} is now *{wave.state.value}* ({verb.value} by <@{ask.actor.id}>)."
    if verb is Verb.ABORT:
        await _close_request_message(ask, wave)
    try:
        await ask.client.chat_postMessage(channel=requests.plans.latest().channels.migration, text=text)
    except SLACK_ERRORS as error:
        log.warning("could not post the %s notice: %s", verb.value, error)
    await tell(ask.respond, f"Done: {text}")


async def _close_request_message(ask: Ask, wave: WaveView) -> None:
    """An aborted request's message loses its buttons too (nobody should click a closed request)."""
    requests = ask.deps.requests
    posted = await asyncio.to_thread(requests.request_message, wave, wave.version - 1)
    if posted is None:
        return
    try:
        card = await asyncio.to_thread(requests.card, wave.id, wave.version - 1)
    except DomainError:
        return
    card = dataclasses.replace(card, decided_by=ask.actor.id, decided_at=wave.updated_at)
    await redraw(ask.client, posted[0], posted[1], card)


async def _canary(deps: Deps, canary: CanaryDeps, cmd: Command, respond: AsyncRespond) -> None:
    """`/migrate canary status|run` (handlers/alerts.py renders both)."""
    try:
        cluster = only_cluster(deps.requests.plans.latest(), cmd.cluster)
        if cmd.canary is CanaryAction.RUN:
            await tell(respond, await canary_run(canary, cluster))
        else:
            await tell(respond, await canary_status(canary, cluster))
    except DomainError as refusal:
        await tell(respond, f":warning: {refusal}")
    except Exception:
        log.exception("/migrate canary failed")
        await tell(respond, INTERNAL_ERROR)


ANSWERS: dict[Verb, Callable[[Ask], Awaitable[None]]] = {
    Verb.STATUS: _status,
    Verb.PLAN: _plan,
    Verb.AUDIT: _audit,
    Verb.NEXT_WAVE: _next_wave,
    Verb.READINESS: _report,
    Verb.SECURITY: _report,
    Verb.PAUSE: _control,
    Verb.RESUME: _control,
    Verb.ABORT: _control,
}


async def _run(ask: Ask) -> None:
    """Answer after the ack; every refusal is a sentence for the person who asked."""
    metrics = ask.deps.metrics
    try:
        await ANSWERS[ask.cmd.verb](ask)
    except Forbidden as refusal:
        metrics.inc("migratebot_refusals_total", reason="role")
        await tell(ask.respond, f":no_entry: {refusal}")
    except StaleRequest as refusal:
        metrics.inc("migratebot_refusals_total", reason="stale")
        await tell(ask.respond, f":warning: {refusal}")
    except DomainError as refusal:
        metrics.inc("migratebot_refusals_total", reason="refused")
        await tell(ask.respond, f":warning: {refusal}")
    except Exception:
        log.exception("/migrate %s failed", ask.cmd.verb.value)
        await tell(ask.respond, INTERNAL_ERROR)
