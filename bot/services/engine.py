"""Running the engine: one Engine per cluster of the plan, each on its own thread, under the
executor lock in the database. `migratebot serve` starts them when it leads; `migratebot engine`
runs them without Slack (what the crash tests kill -9)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.engine.events import EventBus
from bot.engine.executor import Engine, EngineSettings
from bot.plan import Plan
from bot.plan.models import Wave as PlanWave
from storage.repositories import Repositories, WaveView

log = logging.getLogger(__name__)


def executor_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class EngineRunner:
    """Start and stop the plan's engines. Adapters are built once per cluster from KUBECONFIG (the
    plan's kube_context) and boto3's own chain (AWS_ENDPOINT_URL points it at the sandbox)."""

    plan: Plan | Callable[[], Plan]  # a callable: the plan file as it reads now (PlanSource.current)
    repos: Repositories
    bus: EventBus
    settings: EngineSettings = field(default_factory=EngineSettings)
    kubeconfig: str | None = None
    on_baking: Callable[[WaveView, PlanWave], None] | None = None
    holder: str = field(default_factory=executor_identity)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    engines: dict[str, Engine] = field(default_factory=dict)

    def current_plan(self) -> Plan:
        return self.plan() if callable(self.plan) else self.plan

    def engine_for(self, cluster: str) -> Engine:
        if cluster not in self.engines:
            spec = next(c for c in self.current_plan().clusters if c.name == cluster)
            kube = KubeAdapter.from_kubeconfig(self.kubeconfig, spec.kube_context)
            self.engines[cluster] = Engine(
                self.plan,
                cluster,
                kube=kube,
                aws=AwsAdapter(spec.region),
                repos=self.repos,
                bus=self.bus,
                settings=self.settings,
                holder=self.holder,
                on_baking=self.on_baking,
            )
        return self.engines[cluster]

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        # Engines for the clusters the plan names now; a cluster added by a later replan gets its
        # engine when the executor starts again (the next leadership or a restart).
        for cluster in self.current_plan().clusters:
            engine = self.engine_for(cluster.name)
            thread = threading.Thread(
                target=self._run, args=(engine,), name=f"engine-{cluster.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _run(self, engine: Engine) -> None:
        while not self._stop.is_set():
            try:
                engine.run(self._stop)
            except Exception:
                # A bug or an outage must not end the executor: log it and start the loop again.
                log.exception("engine for %s failed; restarting it", engine.cluster)
                self._stop.wait(5.0)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def close(self) -> None:
        self.stop()
        for engine in self.engines.values():
            engine.kube.close()
        self.engines.clear()
