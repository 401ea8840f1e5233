"""The engine's whole world for a test: the demo sandbox (cluster + AWS) on a scaled clock, a migrated
SQLite database with examples/plan.yaml registered, and an Engine over the real clients."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.demo import fix_demo_workloads, lift_do_not_disrupt
from bot.domain.waves import Trigger, WaveState
from bot.engine.events import Event, EventBus
from bot.engine.executor import Engine, EngineSettings
from bot.engine.inventory import Inventory
from bot.engine.pods import OsFamily
from bot.plan import Plan, parse_plan
from bot.services.plans import register_plan
from sandbox.main import Sandbox
from storage.db import Database
from storage.repositories import Repositories, WaveView
from storage.schema import upgrade

ROOT = Path(__file__).resolve().parents[2]
SRE, LEAD = "U0SRE00001", "U0LEAD0001"
CLUSTER = "sandbox-demo"


def demo_plan_text(bake: str = "1s") -> str:
    """examples/plan.yaml with every bake shortened to `bake`."""
    text = (ROOT / "examples" / "plan.yaml").read_text()
    return text.replace("bake: 2m", f"bake: {bake}").replace("bake: 3m", f"bake: {bake}")


def demo_plan(bake: str = "1s") -> Plan:
    return parse_plan(demo_plan_text(bake), "plan.yaml")


@dataclass
class World:
    sandbox: Sandbox
    plan: Plan
    repos: Repositories
    kube: KubeAdapter
    aws: AwsAdapter
    bus: EventBus
    admin: KubeAdapter
    database_url: str
    plan_text: str
    events: list[Event] = field(default_factory=list)

    def engine(self, **settings: Any) -> Engine:
        defaults: dict[str, Any] = {"poll_interval": 0.2, "retry_interval": 0.5, "settle_timeout": 120.0}
        return Engine(
            self.plan, CLUSTER, kube=self.kube, aws=self.aws, repos=self.repos, bus=self.bus,
            settings=EngineSettings(**{**defaults, **settings}),
        )  # fmt: skip

    def wave(self, index: int) -> WaveView:
        return next(w for w in self.repos.migrations.waves(CLUSTER) if w.index == index)

    def approve(self, index: int) -> WaveView:
        wave = self.wave(index)
        moves = self.repos.migrations
        wave = moves.transition(wave.id, Trigger.REQUEST, actor=SRE, expected_version=wave.version)
        return moves.transition(wave.id, Trigger.APPROVE, actor=LEAD, expected_version=wave.version)

    def fire(self, index: int, trigger: Trigger, actor: str = SRE) -> WaveView:
        wave = self.wave(index)
        return self.repos.migrations.transition(wave.id, trigger, actor=actor, expected_version=wave.version)

    def inventory(self) -> Inventory:
        return Inventory.build(self.kube)

    def al2_nodes(self) -> list[str]:
        return sorted(n.name for n in self.inventory().nodes_of(OsFamily.AL2))

    def run_until(self, engine: Engine, done: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
        """Tick the engine until `done()`; fail saying `what` did not happen."""
        import time

        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            engine.tick()
            time.sleep(0.1)

    def state(self, index: int) -> WaveState:
        return self.wave(index).state


@contextmanager
def engine_world(
    tmp_path: Path, *, time_scale: float = 20.0, plan_text: str | None = None
) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade(url)
    database = Database(url)
    repos = Repositories.over(database)
    plan_text = plan_text or demo_plan_text()
    plan = parse_plan(plan_text, "plan.yaml")
    register_plan(plan, repos.migrations, actor="test")
    with Sandbox("demo", time_scale=time_scale) as sb:
        env = sb.info()["aws"]["env"]
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        aws = AwsAdapter("us-west-2", session=session, endpoint_url=sb.aws_endpoint)
        kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.bot_context)
        admin = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.context)
        bus = EventBus()
        world = World(sb, plan, repos, kube, aws, bus, admin, url, plan_text)
        lock = threading.Lock()

        def keep(event: Event) -> None:
            with lock:
                world.events.append(event)

        bus.subscribe(keep)
        try:
            yield world
        finally:
            kube.close()
            admin.close()
            database.dispose()


__all__ = ["World", "engine_world", "fix_demo_workloads", "lift_do_not_disrupt"]
