"""Running the checks of a wave's bake: the jobs APScheduler calls, and what each run decides.

APScheduler stores a job as a 'module:function' reference with plain arguments, so the job functions
here can't close over the app's services. The composition root installs them once, at start-up:

    runner = CanaryRunner(...)
    install(runner)              # bot.canary.runner's registry: what run_checks(...) uses
    ...
    uninstall()                  # at shutdown (and between tests)

A job that fires with nothing installed logs and does nothing (it can't have run, so nothing is lost:
the tick is not claimed, and the next one runs normally).

Each run: claim the tick (wave, analysis, "t<n>") in the database — already claimed means it ran, so
stop —, read the wave's Bottlerocket nodes, pods and warning events through KubeAdapter (and
Prometheus when the plan asks), evaluate the checks, store what they saw, then decide:
- wave baking: assess the analysis (Argo Rollouts' limits). Failed or inconclusive → the bake ends,
  the AlertDesk pauses and alerts, and the job goes on watching (no end) so that recovery is seen;
  bake over within the limits → Trigger.COMPLETE (baking → completed) and the job is removed.
- wave canary_failed (someone will resume or roll back): keep watching; a run that passes resolves
  the alert.
- wave baking again after a resume: a new analysis starts (counters from zero, the bake's full time).
- any other state (rolled back, aborted …): the bake ends and the job is removed.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.adapters.errors import AdapterError
from bot.adapters.kube import KubeAdapter
from bot.adapters.prometheus import Prometheus
from bot.canary.alerts import AlertDesk
from bot.canary.checks import (
    CheckResult,
    Observation,
    Phase,
    PromSample,
    RunOutcome,
    Verdict,
    assess,
    evaluate,
    wave_nodes,
)
from bot.canary.scheduler import CanaryScheduler
from bot.domain.errors import ConcurrentTransition, DomainError, IllegalTransition
from bot.domain.policy import Actor
from bot.domain.waves import Trigger, WaveState
from bot.plan import Plan
from bot.plan.models import Check
from bot.services.waves import WaveService
from storage.models import utc_now
from storage.repositories import BakeView, Repositories, RunView, WaveView

log = logging.getLogger(__name__)

WATCHED = (WaveState.BAKING, WaveState.CANARY_FAILED)


@dataclass(frozen=True)
class RunReport:
    """One run as `/migrate canary run|status` shows it."""

    wave: WaveView
    run: RunView
    outcome: RunOutcome
    phase: Phase | None  # the analysis after this run (None while watching a failed canary)
    reason: str


class NoBake(DomainError):
    """The cluster has no wave whose canary could run."""


@dataclass
class CanaryRunner:
    repositories: Repositories
    waves: WaveService
    plan: Callable[[], Plan]
    kube_for: Callable[[str], KubeAdapter]
    desk: AlertDesk
    scheduler: CanaryScheduler | None = None
    identity: str = "migratebot"
    prometheus_for: Callable[[str], Prometheus] = Prometheus
    clock: Callable[[], dt.datetime] = utc_now
    # Told every run's report once it is decided (/metrics counts the verdicts); a failing observer
    # is logged and never fails the run.
    observers: list[Callable[[RunReport], None]] = field(default_factory=list)

    # ---- scheduling ---------------------------------------------------------------------------

    def schedule_bake(
        self,
        cluster: str,
        wave_id: int,
        interval: dt.timedelta | None = None,
        until: dt.datetime | None = None,
    ) -> BakeView:
        """Start the wave's bake (the engine calls this when a wave enters `baking`). Interval and
        duration default to the plan's canary interval and the wave's bake."""
        wave = self.repositories.migrations.wave(wave_id)
        plan = self.plan()
        every = interval or plan.canary.interval
        end = until or self.clock() + self._bake_duration(plan, wave)
        bake = self.repositories.canary.start_bake(wave_id, interval=every, until=end)
        self._reschedule(bake, ending=True)
        return bake

    def _reschedule(self, bake: BakeView, *, ending: bool) -> None:
        if self.scheduler is not None:
            self.scheduler.schedule_bake(
                bake.cluster,
                bake.wave_id,
                bake.interval,
                bake.until if ending else None,
                start=bake.started_at,
            )

    def _unschedule(self, wave: WaveView) -> None:
        if self.scheduler is not None:
            self.scheduler.unschedule(wave.cluster, wave.id)

    @staticmethod
    def _bake_duration(plan: Plan, wave: WaveView) -> dt.timedelta:
        for planned in plan.waves_for(wave.cluster):
            if planned.name == wave.name:
                return planned.bake
        return dt.timedelta(minutes=10)

    # ---- a run --------------------------------------------------------------------------------

    def tick(self, cluster: str, wave_id: int) -> RunReport | None:
        """The scheduled run (a job). None when there was nothing to run or the tick already ran."""
        return self._run(cluster, wave_id, manual=False)

    def run_now(self, cluster: str) -> RunReport:
        """`/migrate canary run`: one run now, outside the schedule, of the cluster's baking (or failed)
        wave. It counts as a measurement like any other."""
        wave = self.watched_wave(cluster)
        if wave is None:
            raise NoBake(
                f"cluster {cluster} has no wave baking or with a failed canary — the canary runs once a "
                "wave reaches `baking` (see /migrate status)"
            )
        report = self._run(cluster, wave.id, manual=True)
        assert report is not None
        return report

    def watched_wave(self, cluster: str) -> WaveView | None:
        for wave in self.repositories.migrations.waves(cluster):
            if wave.state in WATCHED and self.repositories.canary.bake(wave.id) is not None:
                return wave
        return None

    def _run(self, cluster: str, wave_id: int, *, manual: bool) -> RunReport | None:
        canary = self.repositories.canary
        bake = canary.bake(wave_id)
        wave = self.repositories.migrations.wave(wave_id)
        if bake is None or wave.state not in WATCHED:
            if bake is not None and bake.running:
                canary.end_bake(wave_id, "stopped")
            self._unschedule(wave)
            return None
        now = self.clock()
        if wave.state is WaveState.BAKING and not bake.running:
            # Resumed after a failed canary: a new analysis, the bake's full time again.
            bake = canary.start_bake(
                wave_id, interval=bake.interval, until=now + bake.duration, started_at=now
            )
            self._reschedule(bake, ending=True)
        tick = f"manual:{now.isoformat()}" if manual else f"t{bake.tick_at(now)}"
        run = canary.claim_run(wave_id, bake.analysis, tick, runner=self.identity)
        if run is None:
            log.info("%s tick %s already ran: skipped", wave.label, tick)
            return None
        plan = self.plan()
        previous = canary.runs(wave_id)
        outcome = evaluate(plan.canary, self._observe(plan, wave, bake, previous, now))
        run = canary.finish_run(run.id, outcome.verdict.value, outcome.as_dict())
        canary.remember_restarts(wave_id, dict(outcome.restarts))
        told: list[bool] = []

        def announce(phase: Phase | None, reason: str) -> None:
            # The bake's end is told before the wave moves: a kill in between re-runs the final run,
            # which tells it again (the same message, revised), and nothing is left untold.
            told.append(True)
            self._tell_thread(wave, previous, outcome, phase, reason, final=f"{bake.analysis}")

        phase, reason = self._decide(wave, bake, outcome, now, announce)
        if not told:
            self._tell_thread(wave, previous, outcome, phase, reason)
        report = RunReport(wave, run, outcome, phase, reason)
        for observer in list(self.observers):
            try:
                observer(report)
            except Exception:
                log.exception("canary run observer %r failed on %s", observer, wave.label)
        return report

    def _decide(
        self,
        wave: WaveView,
        bake: BakeView,
        outcome: RunOutcome,
        now: dt.datetime,
        announce: Callable[[Phase | None, str], None] = lambda phase, reason: None,
    ) -> tuple[Phase | None, str]:
        canary = self.repositories.canary
        if wave.state is WaveState.CANARY_FAILED or not bake.running:
            if outcome.verdict is Verdict.PASS:
                self.desk.checks_passed(wave)
            return None, "watching a failed canary until someone resumes or rolls back"
        plan = self.plan()
        stored = [r for r in canary.runs(wave.id, bake.analysis) if r.verdict is not None]
        runs = [[CheckResult.from_dict(c) for c in r.results.get("checks") or ()] for r in stored]
        verdict = assess(
            runs,
            failure_limit=plan.canary.failure_limit,
            inconclusive_limit=plan.canary.inconclusive_limit,
            bake_over=now >= bake.until and len(stored) >= planned_runs(bake),
        )
        if verdict.phase in (Phase.FAILED, Phase.INCONCLUSIVE):
            announce(verdict.phase, verdict.reason)
            canary.end_bake(wave.id, verdict.phase.value)
            self._reschedule(bake, ending=False)
            failing = [c for checks in reversed(runs) for c in checks if c.verdict is not Verdict.PASS]
            first = next((r.started_at for r in stored if r.verdict != Verdict.PASS.value), None)
            self.desk.canary_failed(wave, verdict, failing, since=first)
        elif verdict.phase is Phase.SUCCESSFUL:
            announce(verdict.phase, verdict.reason)
            canary.end_bake(wave.id, "passed")
            self._unschedule(wave)
            try:
                self.waves.fire(wave.cluster, wave.name, Trigger.COMPLETE, Actor.system(), {"bake": "passed"})
            except (ConcurrentTransition, IllegalTransition) as error:
                log.warning("could not complete %s after its bake: %s", wave.label, error)
        elif outcome.verdict is Verdict.PASS:
            self.desk.checks_passed(wave)
        return verdict.phase, verdict.reason

    def _observe(
        self, plan: Plan, wave: WaveView, bake: BakeView, previous: list[RunView], now: dt.datetime
    ) -> Observation:
        since = wave.entered_at(WaveState.EXECUTING) or bake.started_at
        seen_events = frozenset(k for r in previous for k in r.results.get("event_keys") or ())
        nodes: list[dict[str, object]] = []
        pods: list[dict[str, object]] = []
        events: list[dict[str, object]] = []
        kube_error = None
        try:
            kube = self.kube_for(wave.cluster)
            nodes = kube.list_nodes()
            for node in wave_nodes(nodes, since):
                pods.extend(kube.list_pods(field_selector=f"spec.nodeName={node['metadata']['name']}"))
            pods.extend(kube.list_pods(field_selector="status.phase=Pending,spec.nodeName="))
            events = [e for e in kube.list_events() if e.get("type") == "Warning"]
        except AdapterError as error:
            kube_error = str(error)
        query = alerts = None
        prom = plan.canary.prometheus
        if prom is not None:
            client = self.prometheus_for(prom.url)
            if Check.PROMETHEUS_QUERY in plan.canary.checks and prom.query:
                try:
                    query = PromSample(value=client.query_value(prom.query))
                except AdapterError as error:
                    query = PromSample(error=str(error))
            if Check.PROMETHEUS_ALERTS in plan.canary.checks:
                try:
                    alerts = PromSample(alerts=tuple(client.firing_alerts(prom.alerts_filter)))
                except AdapterError as error:
                    alerts = PromSample(error=str(error))
        return Observation(
            now=now, since=since, nodes=nodes, pods=pods, events=events, baseline=bake.baseline,
            seen_events=seen_events, kube_error=kube_error, query=query, alerts=alerts,
        )  # fmt: skip

    def _tell_thread(
        self,
        wave: WaveView,
        previous: list[RunView],
        outcome: RunOutcome,
        phase: Phase | None,
        reason: str,
        *,
        final: str | None = None,
    ) -> None:
        """Canary results in the wave's thread: the first run, every change of verdict, and the end."""
        last = next((r.verdict for r in reversed(previous) if r.verdict is not None), None)
        ended = phase in (Phase.SUCCESSFUL, Phase.FAILED, Phase.INCONCLUSIVE)
        if last == outcome.verdict.value and not ended:
            return
        lines = [
            f"Canary run on {wave.label}: *{outcome.verdict.value}*"
            + (f" — {phase.value}: {reason}" if ended and phase else "")
        ]
        lines += [f"• {r.check}: {r.verdict.value} — {r.summary}" for r in outcome.results]
        text = "\n".join(lines)
        try:
            self.desk.notifier.post_result(wave, text, final=final if ended else None)
        except Exception:
            log.exception("could not post the canary result of %s", wave.label)


def planned_runs(bake: BakeView) -> int:
    """The runs an uninterrupted bake makes — one per interval, up to the first at or after its end —
    and so the measurements an analysis needs before it can pass (Argo Rollouts' `count`). Runs lost
    to a restart or coalesced behind a slow one are made up after `until`: otherwise a bake cut short
    by a kill -9 passed on a single, failing, measurement (found by `make soak`)."""
    return max(1, math.ceil(round(bake.duration / bake.interval, 3)))


# ---- the registry the jobs use ---------------------------------------------------------------------

_installed: CanaryRunner | None = None


def install(runner: CanaryRunner) -> None:
    """Give the job functions the app's services (the composition root, once at start-up)."""
    global _installed
    _installed = runner


def uninstall() -> None:
    global _installed
    _installed = None


def installed() -> CanaryRunner | None:
    return _installed


def run_checks(cluster: str, wave_id: int) -> None:
    """The scheduled job: one run of the wave's checks."""
    runner = _installed
    if runner is None:
        log.warning("canary tick for wave id %s on %s with no runner installed: skipped", wave_id, cluster)
        return
    runner.tick(cluster, wave_id)


def send_reminders() -> None:
    """The reminders job (leader only, in memory)."""
    if _installed is not None:
        _installed.desk.send_reminders()


def heartbeat() -> None:
    """Wakes the scheduler so that it sees jobs another replica added to the database."""


def schedule_bake(
    cluster: str, wave_id: int, interval: dt.timedelta | None = None, until: dt.datetime | None = None
) -> BakeView:
    """For the engine: the wave entered `baking` — start its canary."""
    runner = _installed
    if runner is None:
        raise RuntimeError(
            "no canary runner is installed: the composition root calls bot.canary.runner.install"
        )
    return runner.schedule_bake(cluster, wave_id, interval, until)
