"""What the canary tests share: a plan with a fast canary, a wave moved to `baking`, a sandbox Kubernetes
API, and migratebot replicas run as real processes (tests/canary/replica.py) that can be SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bot.domain.policy import Actor, Role
from bot.domain.waves import Trigger
from bot.services.waves import WaveService
from storage.repositories import Repositories, RunView

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = ROOT / "examples" / "plan.yaml"
REPLICA = Path(__file__).resolve().parent / "replica.py"
CLUSTER = "sandbox-demo"
T = TypeVar("T")

SRE = Actor("U0SRE00001", frozenset({Role.SRE}))
LEAD = Actor("U0LEAD0001", frozenset({Role.TEAM_LEAD}))
ONCALL = Actor("U0ONCALL01", frozenset({Role.ONCALL}))


def fast_plan(
    path: Path,
    *,
    interval: str = "1s",
    bake: str = "10m",
    failure_limit: int = 1,
    inconclusive_limit: int = 1000,
    force_unreplicated: bool = False,
) -> Path:
    """examples/plan.yaml with a canary every `interval` and every wave baking for `bake` (and draining
    bare pods too, with `force_unreplicated`)."""
    text = EXAMPLE_PLAN.read_text()
    if force_unreplicated:
        text = text.replace("    strategy: drain\n", "    strategy: drain\n    force_unreplicated: true\n")
    text = text.replace("  interval: 30s\n", f"  interval: {interval}\n")
    text = text.replace("  failure_limit: 2\n", f"  failure_limit: {failure_limit}\n")
    text = text.replace("  inconclusive_limit: 3\n", f"  inconclusive_limit: {inconclusive_limit}\n")
    for old in ("2m", "3m"):
        text = text.replace(f"    bake: {old}\n", f"    bake: {bake}\n")
    path.write_text(text)
    return path


def to_baking(repositories: Repositories, wave_name: str = "stateless-web") -> int:
    """Walk the wave through the states the engine would, to `baking`; returns its id."""
    waves = WaveService(repositories.migrations, repositories.audit)
    steps = [
        (Trigger.REQUEST, SRE),
        (Trigger.APPROVE, LEAD),
        (Trigger.START, Actor.system()),
        (Trigger.VERIFY, Actor.system()),
        (Trigger.BAKE, Actor.system()),
    ]
    for trigger, actor in steps:
        wave = waves.fire(CLUSTER, wave_name, trigger, actor)
    return wave.id


def eventually(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not met within {timeout}s"
        time.sleep(0.02)


def finished(runs: list[RunView]) -> list[RunView]:
    return [r for r in runs if r.finished_at is not None]


def tick_numbers(runs: list[RunView]) -> list[int]:
    return [int(r.tick[1:]) for r in runs if r.tick.startswith("t")]


class Replica:
    """One migratebot canary process (scheduler, runner, optionally the Lease election)."""

    def __init__(
        self,
        identity: str,
        *,
        database_url: str,
        kubeconfig: Path,
        plan: Path,
        lease: bool,
        lease_duration: float = 3.0,
    ) -> None:
        self.identity = identity
        args = [
            sys.executable,
            str(REPLICA),
            "--db",
            database_url,
            "--kubeconfig",
            str(kubeconfig),
            "--plan",
            str(plan),
            "--identity",
            identity,
            "--lease-duration",
            str(lease_duration),
        ]
        if not lease:
            args.append("--no-lease")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "ready", (
            f"replica {identity} did not start: {line}{self.process.stdout.read()}"
        )

    def kill(self) -> None:
        """kill -9: no clean-up, no lease release, nothing flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
