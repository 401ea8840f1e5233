"""APScheduler drives the checks from the database: a kill -9 loses no tick beyond the misfire rule and
runs none twice; with two replicas on one PostgreSQL only the Lease's leader runs them, and killing it
hands over within the Lease duration."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from canary_world import CLUSTER, Replica, eventually, fast_plan, finished, tick_numbers, to_baking

from bot.adapters.kube import KubeAdapter
from bot.canary.alerts import AlertDesk
from bot.canary.leader import lease_holder
from bot.canary.runner import CanaryRunner
from bot.canary.scheduler import CanaryScheduler
from bot.services.requests import PlanSource
from bot.services.waves import WaveService
from sandbox.kube import SandboxServer
from sandbox.kube.fixtures import tiny_cluster
from storage.db import Database
from storage.repositories import Repositories
from storage.schema import upgrade

INTERVAL = dt.timedelta(seconds=1)


@pytest.fixture
def cluster() -> Iterator[SandboxServer]:
    with SandboxServer(objects=tiny_cluster()) as sb:
        kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), None)
        kube.request(
            "POST",
            "/api/v1/namespaces",
            content_type="application/json",
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "migratebot"}},
        )
        kube.close()
        yield sb


def baking_wave(url: str, tmp_path: Path) -> tuple[Repositories, Path, int, Database]:
    """A migrated database whose first wave bakes, its bake scheduled in the database by a process that
    does not lead (it only writes the job, as a non-leader replica's engine would)."""
    upgrade(url)
    database = Database(url)
    repositories = Repositories.over(database)
    plan_file = fast_plan(tmp_path / "plan.yaml")
    plans = PlanSource(plan_file, repositories)
    wave_id = to_baking(repositories)
    waves = WaveService(repositories.migrations, repositories.audit)
    scheduler = CanaryScheduler(url).start()
    try:
        runner = CanaryRunner(
            repositories, waves, plans.latest, _no_cluster, AlertDesk(repositories, waves), scheduler
        )
        runner.schedule_bake(CLUSTER, wave_id, interval=INTERVAL)
        assert scheduler.job_ids() == [f"canary:{CLUSTER}:{wave_id}"]
    finally:
        scheduler.shutdown()
    return repositories, plan_file, wave_id, database


def _no_cluster(cluster: str) -> KubeAdapter:
    raise AssertionError("the scheduling process reads no cluster")


def test_kill_9_between_ticks_then_restart_runs_the_next_check_and_none_twice(
    tmp_path: Path, cluster: SandboxServer
) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'migratebot.db'}"
    repositories, plan_file, wave_id, database = baking_wave(url, tmp_path)
    runs = lambda: repositories.canary.runs(wave_id)  # noqa: E731
    first = Replica("replica-a", database_url=url, kubeconfig=cluster.kubeconfig, plan=plan_file, lease=False)
    second: Replica | None = None
    try:
        eventually(lambda: len(finished(runs())) >= 2, what="two checks by the first process")
        # Between ticks: the newest run has finished and the next tick is not due yet.
        eventually(lambda: all(r.finished_at for r in runs()), what="no run in flight")
        first.kill()
        before = runs()
        last_tick = max(tick_numbers(before))
        bake = repositories.canary.bake(wave_id)
        assert bake is not None
        # Down for more than one interval: at least one tick is missed while nobody runs.
        missed_until = bake.started_at + (last_tick + 2) * INTERVAL
        eventually(lambda: dt.datetime.now(dt.UTC) > missed_until, what="a tick missed while down")

        second = Replica(
            "replica-b", database_url=url, kubeconfig=cluster.kubeconfig, plan=plan_file, lease=False
        )
        eventually(lambda: len(finished(runs())) >= len(before) + 2, what="checks after the restart")
    finally:
        first.stop()
        if second is not None:
            second.stop()
        database.dispose()

    after = [r for r in runs() if r.runner == "replica-b"]
    ticks = tick_numbers(runs())
    assert len(ticks) == len(set(ticks)), f"a tick ran twice: {ticks}"
    # The missed ticks ran as one (coalesced, not a backlog), at once; then the schedule goes on.
    restart_ticks = tick_numbers(after)
    assert restart_ticks[0] > last_tick + 1, "the catch-up run is the latest missed tick, not the oldest"
    # Then the schedule goes on, each tick once, in order. (On a loaded machine a tick the scheduler
    # reaches late is coalesced into the next one — the same misfire rule — so gaps are allowed.)
    assert restart_ticks == sorted(set(restart_ticks)) and len(restart_ticks) >= 2, restart_ticks
    assert {r.runner for r in runs()} == {"replica-a", "replica-b"}


@pytest.mark.postgres
def test_two_replicas_on_one_postgresql_run_each_tick_once_and_a_killed_leader_hands_over(
    tmp_path: Path, cluster: SandboxServer, fresh_postgres_url: str
) -> None:
    url = fresh_postgres_url
    repositories, plan_file, wave_id, database = baking_wave(url, tmp_path)
    kube = KubeAdapter.from_kubeconfig(str(cluster.kubeconfig), None)
    runs = lambda: repositories.canary.runs(wave_id)  # noqa: E731
    duration = 3.0
    a = Replica(
        "replica-a",
        database_url=url,
        kubeconfig=cluster.kubeconfig,
        plan=plan_file,
        lease=True,
        lease_duration=duration,
    )
    b = Replica(
        "replica-b",
        database_url=url,
        kubeconfig=cluster.kubeconfig,
        plan=plan_file,
        lease=True,
        lease_duration=duration,
    )
    try:
        eventually(lambda: len(finished(runs())) >= 4, what="four checks")
        leader, _renewed = lease_holder(kube.get_lease("migratebot", "migratebot"))
        assert {r.runner for r in runs()} == {leader}, "only the Lease's holder runs checks"
        led = runs()
        victim, survivor = (a, b) if leader == a.identity else (b, a)
        victim.kill()
        killed_at = time.monotonic()
        eventually(
            lambda s=survivor: lease_holder(kube.get_lease("migratebot", "migratebot"))[0] == s.identity,
            timeout=3 * duration,
            what="the other replica holding the lease",
        )
        handover = time.monotonic() - killed_at
        eventually(
            lambda s=survivor: any(r.runner == s.identity for r in finished(runs())),
            what="checks by the new leader",
        )
    finally:
        a.stop()
        b.stop()
        kube.close()
        database.dispose()

    # Within the Lease duration (and one retry period of the survivor noticing it).
    assert handover <= duration + duration / 6 + 0.5, f"handover took {handover:.1f}s"
    ticks = tick_numbers(runs())
    assert len(ticks) == len(set(ticks)), f"a tick ran twice: {ticks}"
    assert all(r.runner == victim.identity for r in led)
