"""Putting the canary together for the composition root (bot/app.py), in one call:

    canary = build_canary(settings, repositories, plans.latest, waves, SlackNotifier(client, plans.latest),
                          bus=engine_bus)
    canary.on_leadership(engine_start, engine_stop)      # the engine runs on the leader only
    canary.start()                                       # at start-up (the ASGI lifespan)
    ...
    canary.stop()                                        # at shutdown

`start` installs the runner in bot.canary.runner's registry (what the stored jobs call), starts the
scheduler paused on the database, and starts the Lease election: the replica that leads resumes the
scheduler (and starts whatever `on_leadership` added); one that stops leading pauses it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.adapters.kube import KubeAdapter
from bot.adapters.pagerduty import EVENTS_URL, PagerDuty
from bot.adapters.retry import RetryPolicy
from bot.canary.alerts import REMINDER_BASE, AlertDesk, Notifier
from bot.canary.leader import LeaderElector, default_identity
from bot.canary.runner import CanaryRunner, install, uninstall
from bot.canary.scheduler import CanaryScheduler
from bot.engine.events import EventBus
from bot.plan import Plan
from bot.services.waves import WaveService
from bot.settings import Settings
from storage.repositories import Repositories

log = logging.getLogger(__name__)

Callback = Callable[[], None]


@dataclass
class CanaryStack:
    runner: CanaryRunner
    desk: AlertDesk
    scheduler: CanaryScheduler
    elector: LeaderElector | None  # None: this process leads alone (one replica, tests)
    _started: list[Callback] = field(default_factory=list)
    _stopped: list[Callback] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_leadership(self, started: Callback, stopped: Callback) -> None:
        """Run `started` when this replica starts leading and `stopped` when it stops (the engine)."""
        with self._lock:
            self._started.append(started)
            self._stopped.append(stopped)

    def is_leader(self) -> bool:
        return self.elector.is_leader() if self.elector is not None else self.scheduler.running

    def start(self) -> None:
        install(self.runner)
        self.scheduler.start()
        if self.elector is None:
            self._lead()
        else:
            self.elector.start()

    def stop(self) -> None:
        if self.elector is not None:
            self.elector.stop(release=True)
        else:
            self._follow()
        self.scheduler.shutdown(wait=False)
        self.desk.close()
        uninstall()

    def _lead(self) -> None:
        self.scheduler.lead()
        with self._lock:
            callbacks = list(self._started)
        for callback in callbacks:
            _safely(callback, "start leading")

    def _follow(self) -> None:
        if self.scheduler.running:
            self.scheduler.follow()
        with self._lock:
            callbacks = list(self._stopped)
        for callback in callbacks:
            _safely(callback, "stop leading")


def _safely(callback: Callback, what: str) -> None:
    try:
        callback()
    except Exception:
        log.exception("could not %s: %r failed", what, callback)


def build_canary(
    settings: Settings,
    repositories: Repositories,
    plan: Callable[[], Plan],
    waves: WaveService,
    notifier: Notifier | None = None,
    *,
    kube_for: Callable[[str], KubeAdapter] | None = None,
    lease_kube: KubeAdapter | None = None,
    elect: bool = True,
    bus: EventBus | None = None,
    identity: str | None = None,
    lease_duration: float = 15.0,
    reminder_base: dt.timedelta = REMINDER_BASE,
    poll_every: dt.timedelta = dt.timedelta(seconds=2),
    remind_every: dt.timedelta = dt.timedelta(seconds=15),
) -> CanaryStack:
    """The canary over the app's repositories and plan. `kube_for(cluster)` defaults to one KubeAdapter
    per cluster from KUBECONFIG and the plan's kube_context; the Lease lives in the cluster of
    `lease_kube` (default: in-cluster inside a pod, else KUBECONFIG's current context).
    `elect=False` runs without a Lease: only for a single replica."""
    who = identity or default_identity()
    clusters = kube_for or _kube_per_cluster(plan)
    pagerduty = None
    if settings.pagerduty_routing_key is not None:
        pagerduty = PagerDuty(
            settings.pagerduty_routing_key.get_secret_value(), settings.pagerduty_url or EVENTS_URL
        )
    desk = AlertDesk(repositories, waves, notifier, pagerduty=pagerduty, reminder_base=reminder_base)
    scheduler = CanaryScheduler(
        settings.resolved_database_url, poll_every=poll_every, remind_every=remind_every
    )
    runner = CanaryRunner(repositories, waves, plan, clusters, desk, scheduler, identity=who)
    stack = CanaryStack(runner, desk, scheduler, None)
    if elect:
        kube = lease_kube or own_cluster()
        # A renewal must fail (and the leader step down) well within the lease, not after 60 s of retries.
        fast = kube.with_retry(RetryPolicy(max_attempts=2, max_elapsed=lease_duration / 3))
        stack.elector = LeaderElector(
            fast, namespace=settings.lease_namespace, name=settings.lease_name, identity=who,
            lease_duration=lease_duration, renew_deadline=lease_duration * 2 / 3,
            retry_period=lease_duration / 7,
            on_started_leading=stack._lead, on_stopped_leading=stack._follow,
        )  # fmt: skip
    if bus is not None:
        bus.subscribe(desk.on_event)
    return stack


def own_cluster() -> KubeAdapter:
    """The cluster the bot runs in: in-cluster config inside a pod, else KUBECONFIG's current context."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return KubeAdapter.in_cluster()
    return KubeAdapter.from_kubeconfig(None, None)


def _kube_per_cluster(plan: Callable[[], Plan]) -> Callable[[str], KubeAdapter]:
    adapters: dict[str, KubeAdapter] = {}
    lock = threading.Lock()

    def kube_for(cluster: str) -> KubeAdapter:
        with lock:
            if cluster not in adapters:
                context = plan().cluster(cluster).kube_context
                adapters[cluster] = KubeAdapter.from_kubeconfig(None, context, name=cluster)
            return adapters[cluster]

    return kube_for
