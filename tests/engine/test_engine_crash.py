"""kill -9 of the engine at seeded random moments of a wave, restarting it each time: the wave still
completes, nothing recorded is lost or done twice that matters, the audit chain verifies and no
PodDisruptionBudget was ever violated."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_world import CLUSTER, engine_world, fix_demo_workloads

from bot.domain.waves import WaveState
from storage.models import StepStatus

KILLS = 10


def _engine(world_env: dict[str, str], plan: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "engine", "--plan", str(plan)],
        env=world_env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_kill_9_at_ten_random_points_of_a_wave_and_the_wave_still_completes(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    with engine_world(tmp_path) as world:
        plan_file.write_text(world.plan_text)
        fix_demo_workloads(world.admin)
        env = {
            **os.environ,
            **world.sandbox.info()["aws"]["env"],
            "KUBECONFIG": str(world.sandbox.kubeconfig),
            "MIGRATEBOT_DATABASE_URL": world.database_url,
            "MIGRATEBOT_ENGINE_LOCK_TTL": "1.5",
        }
        world.approve(1)
        rng = random.Random(20261125)
        log = tmp_path / "engine.log"
        kills = 0
        deadline = time.monotonic() + 300
        while kills < KILLS and world.state(1) not in (WaveState.BAKING, WaveState.COMPLETED):
            process = _engine(env, plan_file, log)
            time.sleep(rng.uniform(1.0, 4.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            assert time.monotonic() < deadline, "the wave made no progress across restarts"
        process = _engine(env, plan_file, log)
        try:
            while not (world.state(1) is WaveState.COMPLETED and _retired(world)):
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"wave 1 is {world.state(1)}:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
        finally:
            process.terminate()
            process.wait(30)
        assert kills >= 3, "the wave finished before the engine could be killed a few times"
        wave = world.wave(1)
        journal = world.repos.journal.journal(wave.id)
        unfinished = [(s.key, s.status.value) for s in journal if s.status is not StepStatus.SUCCEEDED]
        assert unfinished == [], unfinished
        assert all(
            step.status is StepStatus.SUCCEEDED
            for step in journal
            if step.key.startswith(("ensure", "cordon", "retire"))
        )
        drains = [s for s in journal if s.key.startswith("drain:")]
        assert len(drains) == 10 and all(s.status is StepStatus.SUCCEEDED for s in drains)
        # Each pod evicted once: the journal of evictions has no pod twice.
        pods = world.repos.timings.pods(wave.id)
        assert len({(p.namespace, p.name) for p in pods}) == len(pods)
        assert world.repos.audit.verify().ok
        assert world.sandbox.controllers is not None
        assert world.sandbox.controllers.ground_truth()["pdbViolations"] == []
        assert not [
            n for n in world.al2_nodes() if n in {x.node_name for x in world.repos.nodes.nodes(wave.id)}
        ]
        assert wave.cluster == CLUSTER


def _retired(world) -> bool:  # type: ignore[no-untyped-def]
    return any(
        s.key == "retire" and s.status is StepStatus.SUCCEEDED
        for s in world.repos.journal.journal(world.wave(1).id)
    )
