"""Alert episodes over a real database and a local PagerDuty: one incident per episode, resolved when the
checks pass again; reminders back off; the Lease elects one leader and steps it down when it loses the
Lease."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from canary_world import CLUSTER, LEAD, ONCALL, SRE, eventually, fast_plan, to_baking

from bot.adapters.kube import KubeAdapter
from bot.adapters.pagerduty import PagerDuty
from bot.canary.alerts import AlertDesk
from bot.canary.checks import Assessment, CheckResult, Phase, Verdict
from bot.canary.leader import LeaderElector, lease_holder
from bot.domain.errors import Forbidden
from bot.domain.policy import Actor
from bot.domain.waves import Trigger, WaveState
from bot.engine.events import EngineAlert, EventBus, WaveRef
from bot.services.requests import PlanSource
from bot.services.waves import WaveService
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import tiny_cluster
from sandbox.pagerduty import PagerDutyReceiver
from storage.db import Database
from storage.models import MigrationStatus
from storage.repositories import Repositories

CRASH = [
    CheckResult(
        "crashloop", Verdict.FAIL, "1 container in CrashLoopBackOff", ("pod shop/cart-1: CrashLoopBackOff",)
    )
]
FAILED = Assessment(Phase.FAILED, "crashloop failed 2 times (failure limit 1)")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repos(database: Database, tmp_path: Path, clock: Clock) -> Repositories:
    repositories = Repositories.over(database, clock)
    PlanSource(fast_plan(tmp_path / "plan.yaml"), repositories)
    return repositories


def test_one_incident_per_episode_resolved_when_the_checks_pass_again(repos: Repositories) -> None:
    wave_id = to_baking(repos)
    waves = WaveService(repos.migrations, repos.audit)
    with PagerDutyReceiver() as receiver:
        desk = AlertDesk(repos, waves, pagerduty=PagerDuty(receiver.routing_key, receiver.url))
        first = desk.canary_failed(repos.migrations.wave(wave_id), FAILED, CRASH)
        again = desk.canary_failed(repos.migrations.wave(wave_id), FAILED, CRASH)
        assert again.episode.id == first.episode.id
        assert repos.migrations.wave(wave_id).state is WaveState.CANARY_FAILED
        migration = repos.migrations.get(CLUSTER)
        assert migration is not None and migration.status is MigrationStatus.PAUSED
        assert [e["event_action"] for e in receiver.events] == ["trigger"]

        desk.checks_passed(repos.migrations.wave(wave_id))
        assert receiver.incidents[first.episode.dedup_key].status == "resolved"

        # Resumed, baking again, failing again: a new episode, a new incident.
        desk.resume(first.episode.id, SRE)
        assert repos.migrations.wave(wave_id).state is WaveState.BAKING
        second = desk.canary_failed(repos.migrations.wave(wave_id), FAILED, CRASH)
        desk.close()
    assert second.episode.id != first.episode.id
    assert len(receiver.incidents) == 2
    assert [i.status for i in receiver.incidents.values()] == ["resolved", "triggered"]
    audited = [e.action for e in repos.audit.events()]
    assert (
        audited.count("alert.opened") == 2 and "alert.resolved" in audited and "wave.canary_fail" in audited
    )


def test_reminders_back_off_and_stop_once_on_call_acknowledges(repos: Repositories, clock: Clock) -> None:
    wave_id = to_baking(repos)
    desk = AlertDesk(
        repos, WaveService(repos.migrations, repos.audit), reminder_base=dt.timedelta(minutes=1), clock=clock
    )
    alert = desk.canary_failed(repos.migrations.wave(wave_id), FAILED, CRASH)
    reminded = []
    opened = alert.episode.opened_at
    for minute in range(1, 16):
        clock.now = opened + dt.timedelta(minutes=minute, seconds=1)
        if desk.send_reminders():
            reminded.append(minute)
    # After 1 minute, then 2 more, then 4 more, then 8 more: the backoff doubles from the last one.
    assert reminded == [1, 3, 7, 15]

    with pytest.raises(Forbidden, match="on-call"):
        desk.acknowledge(alert.episode.id, SRE)
    desk.acknowledge(alert.episode.id, ONCALL)
    clock.now += dt.timedelta(hours=2)
    assert desk.send_reminders() == []
    desk.close()


def test_an_engine_alert_pauses_the_executing_wave_and_the_migration_and_opens_one_episode(
    repos: Repositories,
) -> None:
    waves = WaveService(repos.migrations, repos.audit)
    wave = waves.fire(CLUSTER, "stateless-web", Trigger.REQUEST, SRE)
    wave = waves.fire(CLUSTER, "stateless-web", Trigger.APPROVE, LEAD)
    wave = waves.fire(CLUSTER, "stateless-web", Trigger.START, Actor.system())
    desk = AlertDesk(repos, waves)
    bus = EventBus()
    bus.subscribe(desk.on_event)
    ref = WaveRef(CLUSTER, wave.id, wave.index, wave.name)
    stuck = EngineAlert(ref, "drain_stuck", "pod shop/cart-1 still there after 300 s", ("node ip-10-0-1-5",))
    bus.publish(stuck)
    bus.publish(EngineAlert(ref, "step_failing", "cordon failed 5 times"))
    desk.close()  # the alert worker has handled both
    [episode] = repos.canary.episodes(wave.id)
    assert episode.kind == "drain_stuck" and episode.details["objects"] == ["node ip-10-0-1-5"]
    assert repos.migrations.wave(wave.id).state is WaveState.PAUSED
    migration = repos.migrations.get(CLUSTER)
    assert migration is not None and migration.status is MigrationStatus.PAUSED

    outcome = AlertDesk(repos, waves).resume(episode.id, ONCALL)
    assert "executing" in outcome.answer
    assert repos.migrations.wave(wave.id).state is WaveState.EXECUTING
    resumed = repos.migrations.get(CLUSTER)
    assert resumed is not None and resumed.status is MigrationStatus.ACTIVE
    assert not repos.canary.episode(episode.id).open


# ---- the Lease ------------------------------------------------------------------------------------


@pytest.fixture
def kube() -> Iterator[KubeAdapter]:
    with SandboxServer(objects=tiny_cluster()) as sb:
        adapter = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), None)
        adapter.request(
            "POST",
            "/api/v1/namespaces",
            content_type="application/json",
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "migratebot"}},
        )
        yield adapter
        adapter.close()


def elector(kube: KubeAdapter, identity: str, log: list[str]) -> LeaderElector:
    return LeaderElector(
        kube,
        namespace="migratebot",
        name="migratebot",
        identity=identity,
        lease_duration=2.0,
        renew_deadline=1.0,
        retry_period=0.2,
        on_started_leading=lambda: log.append(f"{identity} leads"),
        on_stopped_leading=lambda: log.append(f"{identity} stops"),
    )


def test_one_replica_leads_and_a_clean_stop_hands_the_lease_over_at_once(kube: KubeAdapter) -> None:
    log: list[str] = []
    a, b = elector(kube, "a", log).start(), None
    try:
        eventually(a.is_leader, what="a leading")
        b = elector(kube, "b", log).start()
        assert not b.step(), "the lease is held and renewed: b follows"
        a.stop(release=True)
        eventually(b.is_leader, timeout=1.0, what="b taking over a released lease within a retry period")
        assert lease_holder(kube.get_lease("migratebot", "migratebot"))[0] == "b"
    finally:
        a.stop()
        if b is not None:
            b.stop()
    assert log[:3] == ["a leads", "a stops", "b leads"]


def test_a_leader_whose_lease_was_taken_steps_down_at_its_next_renewal(kube: KubeAdapter) -> None:
    log: list[str] = []
    a = elector(kube, "a", log)
    assert a.step()
    lease = kube.get_lease("migratebot", "migratebot")
    kube.replace_lease({**lease, "spec": {**lease["spec"], "holderIdentity": "intruder"}})
    assert not a.step()
    assert not a.is_leader() and log == ["a leads", "a stops"]
