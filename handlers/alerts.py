"""On-call alerts in Slack: the alert message, its Acknowledge / Resume / Roll back wave buttons, and the
notifier bot/canary's AlertDesk posts through (the canary decides; this module only speaks Slack).

Buttons carry an opaque value ("e<episode id>") and nothing else; a click is re-checked on the server:
the episode must exist and the click must come from the message migratebot posted for it, and the
AlertDesk authorizes the person (on-call acknowledges, SRE or on-call resume, a team lead rolls back —
bot/domain/policy.py).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.canary.alerts import Alert, AlertDesk, Outcome
from bot.canary.runner import CanaryRunner
from bot.domain.errors import DomainError, Forbidden
from bot.domain.policy import Actor
from bot.plan import Plan
from bot.services.requests import Thread, WaveMessages
from handlers.middleware import actor_of, deps_of
from handlers.notifier import deliver
from handlers.replies import INTERNAL_ERROR, tell
from storage.repositories import WaveView

log = logging.getLogger(__name__)
T = TypeVar("T")
JSON = dict[str, Any]


class AlertAction(enum.StrEnum):
    """Buttons on an alert. Their values are "e<episode id>"."""

    ACKNOWLEDGE = "alert.acknowledge"
    RESUME = "alert.resume"
    ROLLBACK = "alert.rollback"


class AlertBlock(enum.StrEnum):
    HEADER = "alert.header"
    WHAT = "alert.what"
    OBJECTS = "alert.objects"
    STATE = "alert.state"
    BUTTONS = "alert.buttons"


_VALUE = re.compile(r"e([0-9]{1,12})")


@dataclass(frozen=True)
class CanaryDeps:
    """What the alert buttons and `/migrate canary` need, built once by the composition root."""

    desk: AlertDesk
    runner: CanaryRunner


def canary_of(context: Mapping[str, Any]) -> CanaryDeps | None:
    deps = context.get("canary")
    return deps if isinstance(deps, CanaryDeps) else None


# ---- the message ------------------------------------------------------------------------------------


def mention(plan: Plan) -> str:
    """The plan's on-call, as Slack notifies them: <!subteam^S…> for groups, <@U…> for people."""
    oncall = plan.roles.oncall
    return " ".join([*(f"<!subteam^{g}>" for g in oncall.usergroups), *(f"<@{u}>" for u in oncall.users)])


def alert_text(alert: Alert, plan: Plan) -> str:
    return f"{mention(plan)} :rotating_light: {alert.episode.summary}"


def alert_blocks(alert: Alert, plan: Plan) -> list[JSON]:
    episode = alert.episode
    opened = alert.since
    fallback = f"{opened:%Y-%m-%d %H:%M:%S} UTC"
    since = f"<!date^{int(opened.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"
    title = "Canary failed" if episode.kind == "canary" else episode.kind.replace("_", " ").capitalize()
    blocks: list[JSON] = [
        _section(
            AlertBlock.HEADER,
            f"{mention(plan)} :rotating_light: *{title} on {alert.wave}* in `{alert.cluster}`",
        ),
        _section(AlertBlock.WHAT, f"{episode.summary}\n*Since* {since} · the migration is paused"),
    ]
    seen = [f"• {o}" for o in alert.objects[:10]] + [f"• _{e}_" for e in alert.events[:10]]
    if seen:
        blocks.append(_section(AlertBlock.OBJECTS, "*What failed*\n" + "\n".join(seen)))
    state = [f"Wave is *{alert.wave_state}*."]
    if episode.acknowledged_by:
        state.append(f"Acknowledged by <@{episode.acknowledged_by}>.")
    if episode.resolved_at is not None:
        state.append(f"*Resolved* ({_who(episode.resolved_by)}).")
    elif episode.reminders:
        state.append(f"Reminded {episode.reminders}×.")
    blocks.append({"type": "context", "block_id": AlertBlock.STATE, "elements": [_md(" ".join(state))]})
    if episode.resolved_at is None:
        value = f"e{episode.id}"
        buttons = []
        if episode.acknowledged_at is None:
            buttons.append(_button(AlertAction.ACKNOWLEDGE, "Acknowledge", value, style="primary"))
        buttons.append(_button(AlertAction.RESUME, "Resume", value))
        buttons.append(_button(AlertAction.ROLLBACK, "Roll back wave", value, style="danger"))
        blocks.append({"type": "actions", "block_id": AlertBlock.BUTTONS, "elements": buttons})
    return blocks


def _who(actor: str | None) -> str:
    return "by migratebot: the checks pass again" if actor in (None, "migratebot") else f"by <@{actor}>"


def _md(text: str) -> JSON:
    return {"type": "mrkdwn", "text": text[:3000]}


def _section(block_id: str, text: str) -> JSON:
    return {"type": "section", "block_id": block_id, "text": _md(text)}


def _button(action: AlertAction, label: str, value: str, *, style: str | None = None) -> JSON:
    button: JSON = {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


# ---- the notifier -----------------------------------------------------------------------------------


class SlackNotifier:
    """bot.canary.alerts.Notifier over the bot's AsyncWebClient. The AlertDesk calls it from worker
    threads (the scheduler's, the engine's alert worker, asyncio.to_thread): each call runs its own
    short event loop there, never the server's."""

    def __init__(
        self,
        client: AsyncWebClient,
        plan: Callable[[], Plan],
        *,
        thread_of: Callable[[int], Thread] | None = None,
        messages: WaveMessages | None = None,
    ) -> None:
        self._client = client
        self._plan = plan
        # Where a wave's results go (WaveMessages.thread_of: under its request message); unset, the
        # migration channel.
        self._messages = messages
        self._thread_of = thread_of or (messages.thread_of if messages is not None else None)

    def _call(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run(work())

    def post_alert(self, alert: Alert) -> tuple[str, str] | None:
        plan = self._plan()
        channel = plan.channels.alerts
        response = self._call(
            lambda: self._client.chat_postMessage(
                channel=channel, text=alert_text(alert, plan), blocks=alert_blocks(alert, plan)
            )
        )
        return str(response.get("channel") or channel), str(response["ts"])

    def update_alert(self, alert: Alert) -> None:
        episode, plan = alert.episode, self._plan()
        if not episode.channel or not episode.message_ts:
            return
        channel, ts = episode.channel, episode.message_ts
        self._call(
            lambda: self._client.chat_update(
                channel=channel, ts=ts, text=alert_text(alert, plan), blocks=alert_blocks(alert, plan)
            )
        )

    def post_reminder(self, alert: Alert) -> None:
        plan = self._plan()
        text = (
            f"{mention(plan)} reminder {alert.episode.reminders}: the alert on {alert.wave} is not "
            "acknowledged yet — the migration stays paused. Acknowledge it, then resume or roll back."
        )
        self._post_in_thread(plan.channels.alerts, alert, text)

    def post_resolved(self, alert: Alert, reason: str) -> None:
        plan = self._plan()
        text = (
            f":white_check_mark: Resolved: the alert on {alert.wave} — {reason}. Wave is {alert.wave_state}."
        )
        self._post_in_thread(plan.channels.alerts, alert, text, broadcast=True)

    def post_result(self, wave: WaveView, text: str, *, final: str | None = None) -> None:
        if final is not None and self._messages is not None:
            self._post_final(self._messages, wave, text, final)
            return
        channel, thread_ts = self._plan().channels.migration, None
        if self._thread_of is not None:
            thread = self._thread_of(wave.id)
            channel, thread_ts = thread.channel, thread.thread_ts
        self._call(
            lambda: self._client.chat_postMessage(
                channel=channel, text=f"[{wave.cluster}] {text}", thread_ts=thread_ts
            )
        )

    def _post_final(self, messages: WaveMessages, wave: WaveView, text: str, key: str) -> None:
        """The bake's end, in the wave's thread and as one line in the channel: recorded first (the
        notifier's reconcile posts whatever Slack has not shown, after a 5xx or a restart), then sent."""
        thread = messages.thread_of(wave.id)
        wanted = [
            messages.want(wave.id, thread, f"canary.end:{key}", text=f"[{wave.cluster}] {text}", blocks=[]),
            messages.want(
                wave.id,
                thread,
                f"canary.summary:{key}",
                text=f"[{wave.cluster}] {text.splitlines()[0]}",
                blocks=[],
                in_thread=False,
            ),
        ]

        async def send() -> None:
            for message in wanted:
                await deliver(self._client, messages, message)

        self._call(send)

    def _post_in_thread(self, channel: str, alert: Alert, text: str, *, broadcast: bool = False) -> None:
        where = alert.episode.channel or channel
        thread = alert.episode.message_ts
        self._call(
            lambda: self._client.chat_postMessage(
                channel=where, text=text, thread_ts=thread, reply_broadcast=broadcast if thread else None
            )
        )


# ---- the buttons ------------------------------------------------------------------------------------

Act = Callable[[AlertDesk, int, Actor], Outcome]
ACTIONS: dict[AlertAction, Act] = {
    AlertAction.ACKNOWLEDGE: lambda desk, episode, actor: desk.acknowledge(episode, actor),
    AlertAction.RESUME: lambda desk, episode, actor: desk.resume(episode, actor),
    AlertAction.ROLLBACK: lambda desk, episode, actor: desk.rollback(episode, actor),
}


def register(app: AsyncApp, canary: CanaryDeps) -> None:
    async def put_canary(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context["canary"] = canary
        await next()

    app.use(put_canary)
    for action, act in ACTIONS.items():
        _register(app, canary, action, act)


def _register(app: AsyncApp, canary: CanaryDeps, action: AlertAction, act: Act) -> None:
    @app.action(action)
    async def clicked(
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        deps = deps_of(context)
        deps.background.spawn(
            _act(canary, act, actor_of(context), body, respond), name=f"{action.value} by {context.user_id}"
        )


async def _act(
    canary: CanaryDeps, act: Act, actor: Actor, body: dict[str, Any], respond: AsyncRespond
) -> None:
    value = str(((body.get("actions") or [{}])[0]).get("value") or "")
    match = _VALUE.fullmatch(value)
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    ts = str(container.get("message_ts") or "")
    if match is None:
        await tell(respond, ":no_entry: This button is not one migratebot made. Nothing was done.")
        return
    episode_id = int(match.group(1))
    try:
        alert = await asyncio.to_thread(canary.desk.alert, episode_id)
        if (alert.episode.channel, alert.episode.message_ts) != (channel, ts):
            await tell(
                respond,
                ":no_entry: This click does not come from the alert migratebot posted for it — use the "
                "buttons on the alert in the alerts channel. Nothing was done.",
            )
            return
        outcome = await asyncio.to_thread(act, canary.desk, episode_id, actor)
    except Forbidden as refusal:
        await tell(respond, f":no_entry: {refusal}")
        return
    except DomainError as refusal:
        await tell(respond, f":warning: {refusal}")
        return
    except Exception:
        log.exception("alert action on episode %s failed", episode_id)
        await tell(respond, INTERNAL_ERROR)
        return
    await tell(respond, outcome.answer[:1].upper() + outcome.answer[1:] + ".")


# ---- /migrate canary --------------------------------------------------------------------------------


async def canary_status(canary: CanaryDeps, cluster: str) -> str:
    """The cluster's canary as text: the wave it watches, the analysis, the last runs, the open alert."""

    def read() -> str:
        runner = canary.runner
        repos = runner.repositories
        waves = [w for w in repos.migrations.waves(cluster) if repos.canary.bake(w.id) is not None]
        if not waves:
            return f"No wave of `{cluster}` has baked yet: the canary runs once a wave reaches `baking`."
        wave = runner.watched_wave(cluster) or waves[-1]
        bake = repos.canary.bake(wave.id)
        assert bake is not None
        state = "running" if bake.running else f"ended: {bake.outcome}"
        lines = [
            f"*Canary of {wave.label}* in `{cluster}` — wave {wave.state.value}; analysis {bake.analysis} "
            f"{state}; every {bake.interval.total_seconds():g}s until {bake.until:%H:%M:%S} UTC."
        ]
        for run in repos.canary.runs(wave.id)[-5:]:
            failing = run.failing_checks
            extra = f" ({', '.join(failing)})" if failing else ""
            lines.append(f"• {run.started_at:%H:%M:%S} {run.tick}: {run.verdict or 'running'}{extra}")
        episode = repos.canary.open_episode_of(wave.id)
        if episode is not None:
            ack = (
                f"acknowledged by <@{episode.acknowledged_by}>"
                if episode.acknowledged_by
                else "not acknowledged"
            )
            lines.append(
                f":rotating_light: Open alert since {episode.opened_at:%H:%M:%S} UTC, {ack}: "
                + episode.summary
            )
        return "\n".join(lines)

    return await asyncio.to_thread(read)


async def canary_run(canary: CanaryDeps, cluster: str) -> str:
    report = await asyncio.to_thread(canary.runner.run_now, cluster)
    lines = [f"Canary run on {report.wave.label}: *{report.outcome.verdict.value}*"]
    if report.phase is not None:
        lines[0] += f" — analysis {report.phase.value}: {report.reason}"
    lines += [f"• {r.check}: {r.verdict.value} — {r.summary}" for r in report.outcome.results]
    return "\n".join(lines)
