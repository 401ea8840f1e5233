"""The eviction counters against a real drain: the engine drains wave 1 of the demo in the sandbox
(PodDisruptionBudgets answer 429 along the way) while the bot's Metrics listens to its bus and to the
adapters' errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from engine_world import CLUSTER, engine_world, fix_demo_workloads

from bot.domain.waves import WaveState
from bot.engine.events import WaveProgress
from handlers.metrics import Metrics


@pytest.mark.slow
def test_a_drain_counts_each_eviction_once_and_each_budget_refusal_as_a_retry(tmp_path: Path) -> None:
    metrics = Metrics()
    metrics.watch_api_errors()
    with engine_world(tmp_path) as world:
        world.bus.subscribe(metrics.on_engine_event)
        engine = world.engine(retry_interval=0.2)
        fix_demo_workloads(world.admin)
        world.approve(1)
        world.run_until(
            engine,
            lambda: world.state(1) not in (WaveState.APPROVED, WaveState.EXECUTING),
            "wave 1 to be drained",
        )
        last = [e for e in world.events if isinstance(e, WaveProgress) and e.wave.index == 1][-1]

    def evictions(outcome: str) -> int:
        return metrics.value("migratebot_evictions_total", cluster=CLUSTER, outcome=outcome)

    # The demo's budgets allow one pod down at a time: evictions wait their turn through 429s.
    assert last.pods_evicted > 0 and last.evictions_retried > 0
    assert evictions("evicted") == last.pods_evicted
    assert evictions("retried") == last.evictions_retried
    assert evictions("refused") == evictions("failed") == 0
    # The same 429s seen from the adapter's side: every retried eviction was one budget refusal.
    blocked = metrics.value(
        "migratebot_api_errors_total", target="kube", status="429", error="eviction_blocked"
    )
    assert blocked == last.evictions_retried
    page = metrics.render()
    assert (
        f'migratebot_evictions_total{{cluster="{CLUSTER}",outcome="evicted"}} {last.pods_evicted}.0' in page
    )
