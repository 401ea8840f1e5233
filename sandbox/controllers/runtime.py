"""The controller runtime: one reconcile thread behind the API, woken by store events and timers.

Every controller is level-triggered and idempotent: it compares what is stored with what should be
and fixes the difference, so a missed wake-up only delays work and a restart loses nothing but
in-memory timers. Controllers hear about changes through `store.subscribe` (the callback only marks
work and wakes the thread; it runs under the store lock) and ask to be woken at an emulated time.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Protocol

from sandbox.aws.emulator import AwsEmulator
from sandbox.clock import ScaledClock
from sandbox.controllers.faults import Faults, NeverReady
from sandbox.controllers.groundtruth import GroundTruth
from sandbox.controllers.karpenter import Karpenter
from sandbox.controllers.kube import Kube
from sandbox.controllers.kubelet import Kubelet
from sandbox.controllers.nodegroups import NodeGroups
from sandbox.controllers.scheduler import Scheduler
from sandbox.controllers.timing import Timing
from sandbox.controllers.workloads import Workloads
from sandbox.kube.app import KubeApi
from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import Event, Watcher

log = logging.getLogger("sandbox.controllers")

# Coalesce bursts of events into one pass; bounds the pass rate when every pass writes something.
_MIN_PASS_INTERVAL = 0.005
# Wake at least this often (real seconds) even with nothing scheduled.
_MAX_IDLE = 1.0


class Controller(Protocol):
    def reconcile(self, now: float) -> float | None: ...


class Controllers:
    """Everything behind the API: scheduler, workload controllers, kubelet, node groups, Karpenter.

        clock = ScaledClock(100)
        with SandboxServer(objects, clock=clock) as sb, Controllers(sb.api, clock, aws=aws) as ctl:
            ctl.ground_truth()

    `aws=None` runs without managed node groups and Karpenter (the kubelet, scheduler and workload
    controllers still work on the nodes that exist).
    """

    def __init__(
        self, api: KubeApi, clock: ScaledClock, aws: AwsEmulator | None = None, timing: Timing | None = None
    ) -> None:
        self.api = api
        self.clock = clock
        self.aws = aws
        self.timing = timing or Timing()
        self.kube = Kube(api, clock)
        self.faults = Faults()
        self.truth = GroundTruth(api.store, clock)
        self.kubelet = Kubelet(self.kube, self.timing, self.faults, self.truth)
        self.scheduler = Scheduler(self.kube)
        self.workloads = Workloads(self.kube)
        self.nodegroups = NodeGroups(self.kube, aws, self.timing, self.kubelet, self.truth) if aws else None
        self.karpenter = Karpenter(self.kube, aws, self.timing, self.kubelet, self.truth) if aws else None
        self._wake = threading.Condition()
        self._dirty = True
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._side: threading.Thread | None = None
        self._watchers: list[Watcher] = []
        self.passes = 0
        self.errors = 0

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Controllers:
        kube = self.kube
        with kube.lock:
            kube.store.set_graceful_deletion("/pods", self.kubelet.graceful_seconds)
            self.api.disruption.observers.append(self.truth.eviction)
            for rt in (
                kube.pods,
                kube.nodes,
                kube.deployments,
                kube.replicasets,
                kube.statefulsets,
                kube.daemonsets,
                kube.pdbs,
                kube.nodepools,
                kube.nodeclaims,
                kube.nodeclasses,
            ):
                self._watchers.append(kube.store.subscribe(rt, self._on_event))
            for pod in kube.store.iter_all(kube.pods):
                self.truth.on_pod(Event("ADDED", "/pods", pod, None, 0))
        if self.karpenter is not None:
            self.karpenter.wake = self.wake
            self.karpenter.has_pending = self.scheduler.has_pending
        self._thread = threading.Thread(target=self._run, name="sandbox-controllers", daemon=True)
        self._thread.start()
        if self.nodegroups is not None:
            # The node group controller polls the AWS API (slow HTTP): its own loop, so the kubelet and
            # scheduler never wait behind it.
            self._side = threading.Thread(target=self._run_nodegroups, name="sandbox-nodegroups", daemon=True)
            self._side.start()
        return self

    def stop(self) -> None:
        for w in self._watchers:
            w.stop()
        self._watchers = []
        with self._wake:
            self._stopping = True
            self._wake.notify()
        for thread in (self._thread, self._side):
            if thread is not None:
                thread.join(timeout=10)
        self._thread = self._side = None
        if self.karpenter is not None:
            self.karpenter.close()
        with self.kube.lock:
            self.kube.store.set_graceful_deletion("/pods", None)
            if self.truth.eviction in self.api.disruption.observers:
                self.api.disruption.observers.remove(self.truth.eviction)

    def __enter__(self) -> Controllers:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- fault hooks (the composition and admin layers call these) ---------------------------------

    def fault_node_never_ready(
        self, *, node: str | None = None, nodepool: str | None = None, node_group: str | None = None
    ) -> int:
        """Nodes matching (all given criteria) register but never turn Ready; returns the fault id."""
        return self.faults.add_never_ready(NeverReady(node, nodepool, node_group))

    def fault_crash_on_bottlerocket(
        self, *, namespace: str | None = None, selector: str = "", path: str = "/usr/local/bin"
    ) -> int:
        """Pods matching (namespace, label selector) crash-loop on Bottlerocket nodes only, with a
        FailedMount event: `mkdir PATH: read-only file system`. Returns the fault id."""
        fid = self.faults.add_crash(namespace, selector, path)
        self.wake()
        return fid

    def clear_fault(self, fault_id: int | None = None) -> None:
        """Clear one fault (or every fault). Nodes held NotReady become Ready on the next pass."""
        self.faults.clear(fault_id)
        self.wake()

    def faults_active(self) -> JSON:
        return self.faults.describe()

    # ---- ground truth ------------------------------------------------------------------------------

    def ground_truth(self) -> JSON:
        """A plain dict: nodes, pods (by namespace/name), evictions, pdbViolations (emulated times)."""
        return self.truth.snapshot()

    # ---- the loop ----------------------------------------------------------------------------------

    def wake(self) -> None:
        with self._wake:
            self._dirty = True
            self._wake.notify()

    def _on_event(self, event: Event) -> None:
        if event.resource == "/pods":
            self.truth.on_pod(event)
        self.kubelet.observe(event)
        self.scheduler.observe(event)
        self.workloads.observe(event)
        if self.karpenter is not None:
            self.karpenter.observe(event)
        with self._wake:
            self._dirty = True
            self._wake.notify()

    def _controllers(self) -> list[Controller]:
        # Order matters within a pass: pods are created, then bound, then started; Karpenter sees what
        # the scheduler could not place.
        out: list[Controller] = [self.workloads, self.scheduler, self.kubelet]
        if self.karpenter is not None:
            out.append(self.karpenter)
        return out

    def _run(self) -> None:
        next_due: float | None = None
        while True:
            with self._wake:
                if not self._dirty and not self._stopping:
                    timeout = _MAX_IDLE
                    if next_due is not None:
                        timeout = min(timeout, self.clock.real_seconds(next_due - self.clock.now()))
                    if timeout > 0:
                        self._wake.wait(timeout)
                if self.stopping():
                    return
                self._dirty = False
            next_due = self._pass()
            self.passes += 1
            with self._wake:
                if self.stopping():
                    return
                self._wake.wait(_MIN_PASS_INTERVAL)

    def stopping(self) -> bool:
        return self._stopping

    def _run_nodegroups(self) -> None:
        assert self.nodegroups is not None
        while True:
            try:
                due = self.nodegroups.reconcile(self.clock.now())
            except Exception:
                self.errors += 1
                log.exception("NodeGroups failed")
                due = None
            timeout = _MAX_IDLE
            if due is not None:
                timeout = min(timeout, self.clock.real_seconds(due - self.clock.now()))
            with self._wake:
                if self._stopping:
                    return
                # Real-time floor: at high time scales the AWS API is not polled in a busy loop.
                self._wake.wait(max(timeout, 0.05))
                if self.stopping():
                    return

    def _pass(self) -> float | None:
        dues: list[float] = []
        for controller in self._controllers():
            if self._stopping:
                return None
            try:
                due = controller.reconcile(self.clock.now())
            except Exception:
                self.errors += 1
                log.exception("%s failed", type(controller).__name__)
                with self._wake:
                    self._dirty = True
                continue
            if due is not None:
                dues.append(due)
        # Safety net: a controller asking for a time already past is retried shortly, not spun on.
        return max(min(dues), self.clock.now() + 0.5) if dues else None
