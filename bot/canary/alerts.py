"""Alert episodes: what happens when a canary fails or the engine can't go on by itself.

An episode opens when a wave's canary analysis fails (or is inconclusive) or an EngineAlert arrives
for it, and there is no open episode for that wave yet. Opening one
- pauses: the migration's status becomes PAUSED (no new wave is requested or started) and the wave
  moves — baking → canary_failed (Trigger.CANARY_FAIL), executing → paused (Trigger.PAUSE) — as
  migratebot itself (the SYSTEM role), through WaveService so it is authorized and audited;
- alerts once: one message in the alerts channel (and one PagerDuty incident, dedup key per episode);
  later failures while it is open add nothing new;
- reminds with backoff (base, 2×base, 4×base …, capped) until someone acknowledges.
It resolves when the checks pass again (a "resolved" message; PagerDuty resolve), or when someone
resumes or rolls the wave back from the alert.

Nothing here knows Slack: a Notifier (handlers/alerts.py) posts what this module decides.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from bot.adapters.errors import AdapterError
from bot.adapters.pagerduty import PagerDuty
from bot.canary.checks import Assessment, CheckResult
from bot.domain.errors import ConcurrentTransition, Forbidden, IllegalTransition
from bot.domain.policy import Actor, authorize, authorize_acknowledge
from bot.domain.waves import Trigger, WaveState
from bot.engine.events import EngineAlert, Event
from bot.services.waves import WaveService
from storage.models import MigrationStatus, utc_now
from storage.repositories import EpisodeView, Repositories, WaveView

log = logging.getLogger(__name__)

CANARY = "canary"
REMINDER_BASE = dt.timedelta(minutes=5)
REMINDER_CAP = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Alert:
    """An episode as people see it: which wave, what failed, who acknowledged, how it ended."""

    episode: EpisodeView
    cluster: str
    wave: str  # "wave 1 (stateless-web)"
    wave_state: str

    @property
    def objects(self) -> list[str]:
        return [str(o) for o in self.episode.details.get("objects") or ()]

    @property
    def events(self) -> list[str]:
        return [str(e) for e in self.episode.details.get("events") or ()]

    @property
    def since(self) -> dt.datetime:
        """When the trouble started: the first failing run, else when the episode opened."""
        started = self.episode.details.get("since")
        return dt.datetime.fromisoformat(started) if isinstance(started, str) else self.episode.opened_at


class Notifier(Protocol):
    """Where alerts go (Slack, from handlers/alerts.py). Calls come from worker threads."""

    def post_alert(self, alert: Alert) -> tuple[str, str] | None:
        """Post the alert; return (channel, ts) of the message."""

    def update_alert(self, alert: Alert) -> None:
        """Redraw the alert after it was acknowledged, resumed, rolled back or resolved."""

    def post_reminder(self, alert: Alert) -> None: ...

    def post_resolved(self, alert: Alert, reason: str) -> None: ...

    def post_result(self, wave: WaveView, text: str, *, final: str | None = None) -> None:
        """A canary result for the wave's thread in the migration channel. `final` (a key, one per
        analysis) marks the bake's end: it must not be lost — the notifier records it before posting
        (a restart posts it then) and says it in the channel too."""


class NoNotifier:
    """Alerts recorded and paged, posted nowhere (the CLI, tests of the canary alone)."""

    def post_alert(self, alert: Alert) -> tuple[str, str] | None:
        return None

    def update_alert(self, alert: Alert) -> None:
        return None

    def post_reminder(self, alert: Alert) -> None:
        return None

    def post_resolved(self, alert: Alert, reason: str) -> None:
        return None

    def post_result(self, wave: WaveView, text: str, *, final: str | None = None) -> None:
        return None


@dataclass(frozen=True)
class Outcome:
    """What a button did: the sentence for the person who clicked, and the alert as it is now."""

    answer: str
    alert: Alert


class AlertDesk:
    def __init__(
        self,
        repositories: Repositories,
        waves: WaveService,
        notifier: Notifier | None = None,
        *,
        pagerduty: PagerDuty | None = None,
        reminder_base: dt.timedelta = REMINDER_BASE,
        reminder_cap: dt.timedelta = REMINDER_CAP,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._repos = repositories
        self._waves = waves
        self.notifier: Notifier = notifier or NoNotifier()
        self._pagerduty = pagerduty
        self._reminder_base = reminder_base
        self._reminder_cap = reminder_cap
        self._clock = clock
        # EngineAlerts arrive on the engine's thread; posting to Slack is slow: one worker of our own.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts")

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    # ---- what opens an episode ----------------------------------------------------------------

    def canary_failed(
        self,
        wave: WaveView,
        assessment: Assessment,
        failing: Sequence[CheckResult],
        *,
        since: dt.datetime | None = None,
    ) -> Alert:
        """The analysis failed (or was inconclusive). `failing`: the checks that did not pass over the
        analysis, latest first; `since`: when the first of them ran."""
        details = {
            "phase": assessment.phase.value,
            "reason": assessment.reason,
            "checks": [r.as_dict() for r in failing[:10]],
            "objects": _unique(o for r in failing for o in r.objects)[:20],
            "events": _unique(e for r in failing for e in r.events)[:20],
            "since": since.isoformat() if since else None,
        }
        summary = f"canary {assessment.phase.value} on {wave.label}: {assessment.reason}"
        return self._open(wave, CANARY, summary, details)

    def on_event(self, event: Event) -> None:
        """EventBus subscriber: engine alerts are handled like a failed canary, off the engine's thread."""
        if isinstance(event, EngineAlert):
            self._worker.submit(self._engine_alert_logged, event)

    def _engine_alert_logged(self, event: EngineAlert) -> None:
        try:
            self.engine_alert(event)
        except Exception:
            log.exception("handling the engine alert %s on %s failed", event.kind, event.wave.label)

    def engine_alert(self, event: EngineAlert) -> Alert:
        wave = self._repos.migrations.wave(event.wave.wave_id)
        details = {"objects": list(event.objects), "events": [], "reason": event.summary}
        return self._open(
            wave, event.kind, f"{event.kind.replace('_', ' ')} on {wave.label}: {event.summary}", details
        )

    def _open(self, wave: WaveView, kind: str, summary: str, details: dict[str, Any]) -> Alert:
        self._pause(wave, summary)
        episode, opened = self._repos.canary.open_episode(
            wave.id, kind=kind, summary=summary, details=details, actor=Actor.system().id
        )
        alert = self._alert(episode)
        if not opened:
            return alert
        where = self._safely("post the alert", lambda: self.notifier.post_alert(alert))
        if where:
            episode = self._repos.canary.record_message(episode.id, channel=where[0], ts=where[1])
        if self._pagerduty is not None:
            pd = self._pagerduty
            self._safely(
                "page on-call",
                lambda: pd.trigger(
                    episode.dedup_key, summary, source=f"migratebot/{wave.cluster}",
                    details={"wave": wave.label, **{k: details.get(k) for k in ("objects", "events")}},
                ),
            )  # fmt: skip
        return self._alert(episode)

    def _pause(self, wave: WaveView, reason: str) -> None:
        """No new wave (migration PAUSED) and this wave stops where it is."""
        system = Actor.system()
        self._repos.migrations.set_status(
            wave.cluster, MigrationStatus.PAUSED, actor=system.id, reason=reason
        )
        trigger = {WaveState.BAKING: Trigger.CANARY_FAIL, WaveState.EXECUTING: Trigger.PAUSE}.get(wave.state)
        if trigger is None:
            return
        try:
            self._waves.fire(wave.cluster, wave.name, trigger, system, payload={"reason": reason})
        except (ConcurrentTransition, IllegalTransition) as error:
            # The wave moved meanwhile (the engine finished a step, someone paused it): the migration is
            # paused either way, and the alert still goes out.
            log.warning("could not %s %s: %s", trigger.value, wave.label, error)

    # ---- what closes one ----------------------------------------------------------------------

    def checks_passed(self, wave: WaveView) -> Alert | None:
        """A run passed: the wave's open canary episode (if any) is resolved."""
        episode = self._repos.canary.open_episode_of(wave.id)
        if episode is None or episode.kind != CANARY:
            return None
        return self._resolve(episode, Actor.system().id, "the canary checks pass again")

    def _resolve(self, episode: EpisodeView, by: str, reason: str) -> Alert:
        episode, now = self._repos.canary.resolve(episode.id, by=by, reason=reason)
        alert = self._alert(episode)
        if now:
            self._safely("redraw the alert", lambda: self.notifier.update_alert(alert))
            self._safely("post the resolution", lambda: self.notifier.post_resolved(alert, reason))
            if self._pagerduty is not None:
                pd = self._pagerduty
                self._safely("resolve the page", lambda: pd.resolve(episode.dedup_key))
        return alert

    # ---- the buttons --------------------------------------------------------------------------

    def _authorized(self, episode: EpisodeView, actor: Actor, check: Callable[[str], None]) -> None:
        """`check(label)` raises Forbidden for an actor without the role: audited like every refusal."""
        wave = self._repos.migrations.wave(episode.wave_id)
        try:
            check(wave.label)
        except Forbidden as refusal:
            self._repos.audit.append(
                actor=actor.id,
                action="access.denied",
                subject=wave.subject,
                payload={"alert": episode.id, "state": wave.state.value, "reason": str(refusal)},
            )
            raise

    def acknowledge(self, episode_id: int, actor: Actor) -> Outcome:
        episode = self._repos.canary.episode(episode_id)
        self._authorized(
            episode, actor, lambda label: authorize_acknowledge(actor, what=f"the alert on {label}")
        )
        episode, now = self._repos.canary.acknowledge(episode_id, actor.id)
        alert = self._alert(episode)
        if not now:
            who = f"<@{episode.acknowledged_by}>" if episode.acknowledged_by else "nobody — it is resolved"
            return Outcome(f"this alert was already acknowledged by {who}", alert)
        self._safely("redraw the alert", lambda: self.notifier.update_alert(alert))
        if self._pagerduty is not None:
            pd = self._pagerduty
            self._safely("acknowledge the page", lambda: pd.acknowledge(episode.dedup_key))
        return Outcome(f"you acknowledged the alert on {alert.wave}; reminders stop", alert)

    def resume(self, episode_id: int, actor: Actor) -> Outcome:
        """Resume the wave (its checks start a new analysis) and the migration."""
        episode = self._repos.canary.episode(episode_id)
        # Checked whatever the wave's state: resuming the migration is a RESUME even when the wave
        # itself has nothing to resume (an engine alert on a verifying wave).
        self._authorized(episode, actor, lambda label: authorize(Trigger.RESUME, actor, wave=label))
        wave = self._repos.migrations.wave(episode.wave_id)
        if wave.state in (WaveState.CANARY_FAILED, WaveState.PAUSED):
            wave = self._waves.fire(
                wave.cluster, wave.name, Trigger.RESUME, actor, payload={"episode": episode_id}
            )
        self._repos.migrations.set_status(
            wave.cluster, MigrationStatus.ACTIVE, actor=actor.id, reason=f"resumed from alert {episode_id}"
        )
        alert = self._resolve(episode, actor.id, f"resumed by <@{actor.id}>")
        return Outcome(
            f"you resumed {alert.wave}: it is {wave.state.value} and the migration is active", alert
        )

    def rollback(self, episode_id: int, actor: Actor) -> Outcome:
        """Roll the wave back: the engine does the work for a wave in rolling_back."""
        episode = self._repos.canary.episode(episode_id)
        wave = self._repos.migrations.wave(episode.wave_id)
        wave = self._waves.fire(
            wave.cluster, wave.name, Trigger.ROLLBACK, actor, payload={"episode": episode_id}
        )
        alert = self._resolve(episode, actor.id, f"rollback started by <@{actor.id}>")
        return Outcome(f"you started rolling back {alert.wave}: it is {wave.state.value}", alert)

    # ---- reminders ----------------------------------------------------------------------------

    def next_reminder(self, episode: EpisodeView) -> dt.datetime:
        wait = min(self._reminder_cap, self._reminder_base * (1 << min(episode.reminders, 20)))
        since: dt.datetime = episode.notified_at or episode.opened_at
        return since + wait

    def send_reminders(self) -> list[Alert]:
        """Remind every unacknowledged episode whose backoff is over; returns those reminded."""
        now = self._clock()
        reminded = []
        for episode in self._repos.canary.unacknowledged():
            if now < self.next_reminder(episode):
                continue
            episode = self._repos.canary.record_reminder(episode.id)
            alert = self._alert(episode)
            self._safely("post a reminder", lambda a=alert: self.notifier.post_reminder(a))  # type: ignore[misc]
            reminded.append(alert)
        return reminded

    # ---- helpers ------------------------------------------------------------------------------

    def alert(self, episode_id: int) -> Alert:
        return self._alert(self._repos.canary.episode(episode_id))

    def _alert(self, episode: EpisodeView) -> Alert:
        wave = self._repos.migrations.wave(episode.wave_id)
        return Alert(episode, wave.cluster, wave.label, wave.state.value)

    def _safely(self, what: str, call: Callable[[], Any]) -> Any:
        """Posting and paging must never stop the pause: failures are logged, the episode stays."""
        try:
            return call()
        except (AdapterError, OSError) as error:
            log.warning("could not %s: %s", what, error)
        except Exception:
            log.exception("could not %s", what)
        return None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
