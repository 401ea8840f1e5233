"""The engine: reconciles each wave of one cluster's migration from its state in the database.

State-driven, like a Karpenter controller. Every pass (`tick`) reads the waves and does the next
thing each one needs:

    approved      → guards (change window, blocking conditions; with the plan's impersonation, a
                    person on the wave to act as — the bot then changes nothing as itself) → start
    executing     → drain: prepare, ensure the Bottlerocket EC2NodeClass/NodePools, cordon and drain
                    the wave's AL2 nodes; drift: point the NodePools at Bottlerocket and follow
    verifying     → wait until every displaced workload is Ready and the wave has no AL2 node left;
                    record the measured timings → bake
    baking        → (the canary owns the bake when it runs; otherwise the engine completes it)
    completed     → retire the AL2 capacity once: scale managed node groups to 0 and delete them, or
                    delete the Karpenter NodeClaims
    rolling_back  → put the AL2 capacity back and move the wave's workloads back to it
    paused        → nothing new: in-flight evictions finished when the pause was seen

Every step that changes the cluster is journalled before it runs and after it ends, and is
idempotent, so a restart after kill -9 redoes at most the step that was running — which reads the
cluster before it acts. One executor per migration: `Engine.run` holds the database lock
"engine:<cluster>" and renews it while it works; a second executor waits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.aws import AwsAdapter
from bot.adapters.errors import AdapterError, NotFound
from bot.adapters.kube import Identity, KubeAdapter, parse_time
from bot.adapters.prometheus import Prometheus
from bot.domain.errors import ConcurrentTransition, DomainError, IllegalTransition
from bot.domain.policy import Actor
from bot.domain.timings import NodeTiming, PodTiming
from bot.domain.waves import Trigger, WaveState
from bot.engine import headroom
from bot.engine.drain import (
    Drainer,
    DrainEvent,
    DrainPlan,
    DrainSettings,
    EventKind,
    NodeOutcome,
    plan_drain,
)
from bot.engine.events import (
    EngineAlert,
    EventBus,
    StepFailed,
    WaveFinished,
    WavePaused,
    WaveProgress,
    WaveRef,
)
from bot.engine.guards import (
    Hold,
    alert_hold,
    blocking_selectors,
    must_pause_at_window_end,
    pod_hold,
    window_hold,
)
from bot.engine.inventory import Inventory
from bot.engine.pods import NodeInfo, NodeOwnerKind, OsFamily, os_family, pod_from_json
from bot.engine.selection import wave_nodes
from bot.engine.target import (
    DRIFTED,
    desired_nodeclass,
    differs,
    drift_patch,
    pool_of_nodes,
    replacement_pools,
    restore_patch,
    spec_patch,
)
from bot.plan import plan_hash
from bot.plan.models import Impersonation, Plan, Strategy
from bot.plan.models import Wave as PlanWave
from storage.models import MigrationStatus, StepStatus
from storage.repositories import NodeRecord, Repositories, StepView, WaveView

log = logging.getLogger(__name__)

JSON = dict[str, Any]
SYSTEM = Actor.system()
REPEATED_FAILURES = 5  # a step failing this many times in a row raises an EngineAlert


@dataclass(frozen=True)
class EngineSettings:
    poll_interval: float = 2.0  # seconds between passes while something is in flight
    pod_timeout: float = 300.0  # per pod, as kubectl drain --timeout
    wave_timeout: float = 3600.0
    retry_interval: float = 5.0  # after a PDB's 429, as kubectl
    settle_timeout: float = 900.0  # verifying: new nodes and displaced pods Ready within this
    lock_ttl: dt.timedelta = dt.timedelta(seconds=30)
    manage_bake: bool = True  # False when the canary's scheduler completes bakes
    # Pre-provisioning (bot/engine/headroom.py): Bottlerocket capacity up before the first eviction.
    pre_provision: bool = True
    headroom_namespace: str = "migratebot"  # the bot's own namespace (the chart's Role covers it)
    headroom_timeout: float = 600.0  # seconds to wait for the placeholders before draining anyway
    retire_delete_nodegroups: bool = True
    grace_period: int | None = None


# While another wave is in one of these, an approved wave waits to start.
_HOLDS_NEXT = frozenset(
    {
        WaveState.EXECUTING,
        WaveState.PAUSED,
        WaveState.VERIFYING,
        WaveState.BAKING,
        WaveState.CANARY_FAILED,
        WaveState.ROLLING_BACK,
    }
)


class StepError(Exception):
    """A journalled step failed; the wave stays where it is and the step runs again next pass."""


@dataclass
class _EvictionTally:
    """One wave's eviction outcomes in this engine (WaveProgress carries them; /metrics counts them)."""

    retried: int = 0
    refused: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Counters:
    nodes_cordoned: int = 0
    nodes_drained: int = 0
    pods_evicted: int = 0
    evicted: list[JSON] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Engine:
    """One cluster's migration. `tick()` reconciles once; `run(stop)` loops under the executor lock."""

    def __init__(
        self,
        plan: Plan | Callable[[], Plan],
        cluster: str,
        *,
        kube: KubeAdapter,
        aws: AwsAdapter | None,
        repos: Repositories,
        bus: EventBus | None = None,
        settings: EngineSettings | None = None,
        holder: str = "",
        on_baking: Callable[[WaveView, PlanWave], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        # A callable is the plan file as it reads now (the bot's PlanSource.current): re-read once per
        # tick, so a replanned file is what the next step acts on — and an approved wave whose plan
        # changed since its approval does not start (see _on_approved).
        self._plan_source: Callable[[], Plan] = plan if callable(plan) else (lambda: plan)
        self.plan = self._plan_source()
        self.cluster = cluster
        self.kube = kube
        self.aws = aws
        self.repos = repos
        self.bus = bus or EventBus()
        self.settings = settings or EngineSettings()
        self.holder = holder or f"engine-{id(self):x}"
        self.on_baking = on_baking
        self.clock = clock
        self._alerted: set[tuple[int, str, str]] = set()
        self._told: set[tuple[int, str]] = set()
        self._last_counts: dict[int, tuple[int, int]] = {}
        self._tallies: dict[int, _EvictionTally] = {}
        self._selectors = blocking_selectors(self.plan.blocking)
        self._state_cache: tuple[float, int, WaveState] | None = None

    # ---- the loop ---------------------------------------------------------------------------------

    @property
    def lock_name(self) -> str:
        return f"engine:{self.cluster}"

    def run(self, stop: threading.Event) -> None:
        """Reconcile until `stop` is set, holding the executor lock (waiting for it when another
        executor holds it). The lock is renewed by a heartbeat while a long step runs."""
        ttl = self.settings.lock_ttl
        while not stop.is_set():
            if not self.repos.locks.acquire(self.lock_name, self.holder, ttl):
                stop.wait(min(ttl.total_seconds() / 3, 5.0))
                continue
            lost = threading.Event()
            beat = threading.Thread(
                target=self._heartbeat, args=(stop, lost), name="engine-lock", daemon=True
            )
            beat.start()
            halted = functools.partial(_either, stop, lost)
            try:
                while not halted():
                    busy = self.tick(should_stop=halted)
                    stop.wait(self.settings.poll_interval if busy else self.settings.poll_interval * 2)
            finally:
                lost.set()
                beat.join()
        self.repos.locks.release(self.lock_name, self.holder)

    def _heartbeat(self, stop: threading.Event, lost: threading.Event) -> None:
        ttl = self.settings.lock_ttl
        while not lost.wait(ttl.total_seconds() / 3):
            try:
                if not self.repos.locks.acquire(self.lock_name, self.holder, ttl):
                    log.warning("engine lock %s lost to another executor: stepping down", self.lock_name)
                    lost.set()
            except Exception:
                log.exception("renewing the engine lock failed")
            if stop.is_set():
                return

    def tick(self, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """One reconciling pass over the migration's waves; True while a wave needs more passes."""
        busy = False
        self._refresh_plan()
        for wave in self.repos.migrations.waves(self.cluster):
            if should_stop():
                return busy
            handler = self._handlers.get(wave.state)
            if handler is None:
                continue
            try:
                busy = handler(self, wave, should_stop) or busy
            except (ConcurrentTransition, IllegalTransition) as moved:
                log.info("%s moved while the engine worked on it: %s", wave.label, moved)
                busy = True
            except StepError as failed:
                log.warning("%s: %s", wave.label, failed)
                busy = True
        return busy

    # ---- helpers ----------------------------------------------------------------------------------

    def _refresh_plan(self) -> None:
        try:
            plan = self._plan_source()
        except DomainError as unreadable:
            # A plan file that no longer validates changes nothing: the engine keeps the last good
            # plan, and nothing new is approved against the broken one (PlanSource refuses it).
            log.warning("plan not re-read, keeping the last valid one: %s", unreadable)
            return
        if plan is not self.plan:
            self.plan = plan
            self._selectors = blocking_selectors(plan.blocking)

    def plan_wave(self, wave: WaveView) -> PlanWave:
        for pw in self.plan.waves_for(self.cluster):
            if pw.name == wave.name:
                return pw
        raise StepError(f"{wave.label} is not in the plan any more — register the plan that has it")

    def ref(self, wave: WaveView) -> WaveRef:
        return WaveRef(self.cluster, wave.id, wave.index, wave.name)

    def _fire(self, wave: WaveView, trigger: Trigger, payload: dict[str, Any] | None = None) -> WaveView:
        return self.repos.migrations.transition(
            wave.id, trigger, actor=SYSTEM.id, expected_version=wave.version, payload=payload
        )

    def _state(self, wave_id: int) -> WaveState:
        """The wave's state, read at most every 0.25 s (pause is polled before every eviction)."""
        now = time.monotonic()
        cached = self._state_cache
        if cached is not None and cached[1] == wave_id and now - cached[0] < 0.25:
            return cached[2]
        state = self.repos.migrations.wave(wave_id).state
        self._state_cache = (now, wave_id, state)
        return state

    def _step(
        self,
        wave: WaveView,
        key: str,
        kind: str,
        target: str,
        run: Callable[[], JSON],
        detail: JSON | None = None,
    ) -> JSON:
        """Run a journalled, idempotent step once: skipped (its recorded detail returned) when it
        already succeeded; a failure is journalled, published and raised as StepError."""
        step = self.repos.journal.journal_start(wave.id, key, kind, target, detail)
        if step.done:
            return step.detail
        try:
            result = run()
        except AdapterError as error:
            self.repos.journal.journal_finish(wave.id, key, StepStatus.FAILED, {"error": str(error)})
            self.bus.publish(
                StepFailed(self.ref(wave), kind, target, str(error), step.attempt, will_retry=True)
            )
            if step.attempt == REPEATED_FAILURES:
                self._alert(
                    wave, "step_failing", f"{kind} {target} failed {step.attempt} times: {error}", (target,)
                )
            raise StepError(f"{kind} {target} failed: {error}") from error
        self.repos.journal.journal_finish(wave.id, key, StepStatus.SUCCEEDED, result)
        return {**step.detail, **result}

    def retired(self, wave: WaveView) -> bool:
        """The completed wave's AL2 capacity has been retired."""
        return self._done(wave, "retire") is not None

    def _done(self, wave: WaveView, key: str) -> JSON | None:
        for step in self.repos.journal.journal(wave.id):
            if step.key == key and step.done:
                return step.detail
        return None

    def _alert(self, wave: WaveView, kind: str, summary: str, objects: Sequence[str] = ()) -> None:
        key = (wave.id, kind, ",".join(sorted(objects)) or summary)
        if key in self._alerted:
            return
        self._alerted.add(key)
        self.bus.publish(EngineAlert(self.ref(wave), kind, summary, tuple(objects)))

    def _alert_hold(self) -> Hold | None:
        blocking = self.plan.blocking
        if blocking.prometheus_alerts is None:
            return None
        prometheus = self.plan.canary.prometheus
        if prometheus is None:
            return Hold(
                "alert",
                "blocking.prometheus_alerts is set but canary.prometheus.url is not: "
                "add the Prometheus URL to the plan",
            )
        try:
            return alert_hold(blocking, Prometheus(prometheus.url).firing_alerts)
        except AdapterError as error:
            return Hold("alert", f"can't read the firing alerts from {prometheus.url}: {error}")

    def _tell(self, wave: WaveView, hold: Hold) -> None:
        """Say once (per wave and reason) why the wave holds; not an alert: nothing is broken."""
        key = (wave.id, hold.reason)
        if key not in self._told:
            self._told.add(key)
            self.bus.publish(WavePaused(self.ref(wave), hold.reason))

    def _mutating(self, wave: WaveView) -> KubeAdapter:
        """The adapter the wave's changes go through. When the plan maps people to Kubernetes identities,
        the calls impersonate the SRE who requested the wave (the operator; the approver is in the audit
        log), or the approver when only they are mapped — so the cluster's RBAC and audit log judge and
        record a person, not only the bot. With a mapping the bot holds no write rights of its own (the
        chart renders none), so a wave nobody on it is mapped for is never changed as the bot: the
        engine alerts and the step waits (StepError)."""
        mapping = self.plan.impersonation
        if not mapping:
            return self.kube
        who = self._answering_for(wave)
        if who is None:
            self._alert_unmapped(wave)
            raise StepError(f"{wave.label}: nobody on it has a Kubernetes identity in the plan to act as")
        return self.kube.acting_as(Identity(who.user, tuple(who.groups)))

    def _answering_for(self, wave: WaveView) -> Impersonation | None:
        """The identity the wave's changes are made as: the requester's, else the first mapped approver's."""
        mapping = self.plan.impersonation
        for person in self._people(wave):
            if person in mapping:
                return mapping[person]
        return None

    def _people(self, wave: WaveView) -> list[str]:
        """The wave's requester, then its approvers, in the order they approved."""
        people = [wave.requested_by] if wave.requested_by else []
        people += [
            a.user_id for a in self.repos.approvals.approvals(wave.id) if a.decision.value == "approve"
        ]
        return people

    def _alert_unmapped(self, wave: WaveView) -> None:
        people = ", ".join(f"<@{p}>" for p in dict.fromkeys(self._people(wave))) or "nobody"
        self._alert(
            wave,
            "no_identity",
            f"{wave.label}'s changes are made in a person's name (the plan's `impersonation:`) and the bot "
            f"has no write rights of its own, but none of its requester and approvers ({people}) has a "
            "Kubernetes identity there; it will not run as the bot — add one of them to the plan's "
            "`impersonation:` (a changed plan needs a fresh request), or have a team lead listed there "
            "approve a fresh request",
        )

    # ---- approved → executing --------------------------------------------------------------------

    def _on_approved(self, wave: WaveView, should_stop: Callable[[], bool]) -> bool:
        migration = self.repos.migrations.get(self.cluster)
        if migration is not None and migration.status is MigrationStatus.PAUSED:
            return False  # paused by on-call or an alert: nothing new starts
        if any(w.state in _HOLDS_NEXT for w in self.repos.migrations.waves(self.cluster) if w.id != wave.id):
            return True  # one wave at a time, and the previous one bakes before the next moves
        approved = [a for a in self.repos.approvals.approvals(wave.id) if a.decision.value == "approve"]
        if approved and max(approved, key=lambda a: a.created_at).plan_hash != plan_hash(self.plan):
            # The plan file changed after the team lead approved: what runs must be what was approved.
            self._alert(
                wave,
                "plan_changed",
                f"{wave.label} was approved under another plan than the file now holds; it will not "
                "start — request it again (/migrate next-wave) so a team lead approves this plan",
            )
            return False
        if self.plan.impersonation and self._answering_for(wave) is None:
            # Checked before START, so nothing of the wave has been changed when it is refused.
            self._alert_unmapped(wave)
            return False
        hold = window_hold(self.plan.change_windows, self.clock()) or self._alert_hold()
        if hold is not None:
            self._tell(wave, hold)
            return True
        self._fire(wave, Trigger.START)
        return True

    # ---- executing ---------------------------------------------------------------------------------

    def _on_executing(self, wave: WaveView, should_stop: Callable[[], bool]) -> bool:
        pw = self.plan_wave(wave)
        closing = must_pause_at_window_end(pw, self.plan.change_windows, self.clock())
        if closing is not None:
            paused = self._fire(wave, Trigger.PAUSE, {"reason": closing.reason, "by": "change window"})
            key = f"window-pause:{paused.version}"
            self.repos.journal.journal_start(
                wave.id, key, "window-pause", wave.label, {"reason": closing.reason}
            )
            self.bus.publish(WavePaused(self.ref(wave), closing.reason))
            return True
        alert = self._alert_hold()
        if alert is not None:
            self._tell(wave, alert)
            return True
        kube = self._mutating(wave)  # before anything is read or recorded: refused, nothing moves
        inventory = Inventory.build(self.kube)
        prepared = self._prepare(wave, pw, inventory)
        self._step(
            wave,
            f"ensure:ec2nodeclass/{self.plan.target.ec2nodeclass.name}",
            "ensure-ec2nodeclass",
            self.plan.target.ec2nodeclass.name,
            functools.partial(self._ensure_nodeclass, kube),
        )
        if pw.strategy is Strategy.DRIFT:
            return self._execute_drift(wave, pw, inventory, prepared, kube, should_stop)
        return self._execute_drain(wave, pw, inventory, prepared, kube, should_stop)

    def _prepare(self, wave: WaveView, pw: PlanWave, inventory: Inventory) -> JSON:
        """Fix the wave's nodes and what they came from, once: what rollback and retire go back to."""

        def run() -> JSON:
            nodes = wave_nodes(pw, inventory.nodes.values(), inventory.pods_by_node)
            groups: dict[str, JSON] = {}
            for node in nodes:
                if node.owner_kind is NodeOwnerKind.NODE_GROUP and node.owner_name not in groups:
                    groups[node.owner_name] = self._nodegroup_record(node.owner_name, inventory)
            pools: dict[str, JSON] = {}
            if pw.strategy is Strategy.DRIFT:
                for name in pw.selector.nodepools:
                    pools[name] = self.kube.get_nodepool(name)
            self.repos.nodes.upsert_wave_nodes(
                wave.id,
                [
                    NodeRecord(
                        n.name,
                        n.instance_id or None,
                        n.os_family.value,
                        f"{n.owner_kind.value}/{n.owner_name}",
                        n.zone or None,
                    )
                    for n in nodes
                ],
            )
            baseline = [_node_timing(n, inventory) for n in nodes]
            self.repos.timings.record_nodes(wave.id, [t for t in baseline if t is not None])
            return {
                "nodes": [n.name for n in nodes],
                "bottlerocket_before": sorted(
                    n.name for n in inventory.nodes.values() if n.os_family is OsFamily.BOTTLEROCKET
                ),
                "nodegroups": groups,
                "nodepools": {k: {"spec": v.get("spec", {})} for k, v in pools.items()},
            }

        return self._step(wave, "prepare", "prepare", wave.label, run)

    def _pre_provision(self, wave: WaveView, todo: Sequence[DrainPlan], nodes: Sequence[NodeInfo]) -> int:
        """Ask for the displaced pods' Bottlerocket capacity before the first eviction
        (bot/engine/headroom.py); returns how many placeholder pods wait to be released (0: none).
        In the bot's own namespace, as the bot: this is the bot's housekeeping, not a change to
        anyone's workload. Best effort: a wave drains without it."""
        namespace = self.settings.headroom_namespace

        def run() -> JSON:
            counts = headroom.shapes(todo, pool_of_nodes(self.plan, nodes))
            if not counts:
                return {"pods": 0}
            try:
                return {"pods": headroom.create(self.kube, headroom.deployments(wave.id, namespace, counts))}
            except AdapterError as error:
                log.warning("%s: no pre-provisioning (%s); the drain waits for Karpenter", wave.label, error)
                return {"pods": 0, "skipped": str(error)}

        done = self._step(wave, "headroom", "pre-provision", namespace, run)
        if self._done(wave, "headroom-release") is not None:
            return 0
        return int(done.get("pods") or 0)

    def _release_when_up(self, wave: WaveView, wanted: int, drained: threading.Event) -> None:
        """Release the placeholders once they all run (their nodes are up), when the drain ends, or
        after headroom_timeout — whichever comes first."""
        deadline = time.monotonic() + self.settings.headroom_timeout
        while not drained.is_set() and time.monotonic() < deadline:
            try:
                if headroom.ready(self.kube, self.settings.headroom_namespace, wave.id) >= wanted:
                    break
            except AdapterError as error:
                log.warning("%s: pre-provisioning not watched (%s)", wave.label, error)
                break
            drained.wait(1.0)
        try:
            self._release_headroom(wave)
        except StepError as failed:  # journalled; retried before verifying
            log.warning("%s: %s", wave.label, failed)

    def _release_headroom(self, wave: WaveView) -> None:
        """Delete the wave's placeholders, once (journalled); a failure is retried on the next pass."""

        def run() -> JSON:
            return {"deleted": headroom.release(self.kube, self.settings.headroom_namespace, wave.id)}

        if self._done(wave, "headroom") is not None:
            self._step(wave, "headroom-release", "release-headroom", self.settings.headroom_namespace, run)

    def _nodegroup_record(self, name: str, inventory: Inventory) -> JSON:
        members = [
            n
            for n in inventory.nodes.values()
            if n.owner_kind is NodeOwnerKind.NODE_GROUP and n.owner_name == name
        ]
        record: JSON = {"nodes": len(members)}
        if self.aws is not None:
            group = self.aws.describe_nodegroup(self.cluster, name)
            record.update(desired=group.desired_size, min=group.min_size, max=group.max_size)
        return record

    def _ensure_nodeclass(self, kube: KubeAdapter) -> JSON:
        desired = desired_nodeclass(self.plan.target.ec2nodeclass)
        return _ensure(kube.get_ec2nodeclass, kube.create_ec2nodeclass, kube.patch_ec2nodeclass, desired)

    def _ensure_pools(self, wave: WaveView, nodes: Sequence[NodeInfo], kube: KubeAdapter) -> list[str]:
        names = []
        for name, desired in replacement_pools(self.plan, nodes).items():
            names.append(name)
            self._step(
                wave,
                f"ensure:nodepool/{name}",
                "ensure-nodepool",
                name,
                functools.partial(
                    _ensure, kube.get_nodepool, kube.create_nodepool, kube.patch_nodepool, desired
                ),
            )
        return names

    def _execute_drain(
        self,
        wave: WaveView,
        pw: PlanWave,
        inventory: Inventory,
        prepared: JSON,
        kube: KubeAdapter,
        should_stop: Callable[[], bool],
    ) -> bool:
        recorded = list(prepared.get("nodes") or [])
        # Nodes that joined the wave's groups since (a node group replacing an instance) are moved too.
        current = {n.name for n in wave_nodes(pw, inventory.nodes.values(), inventory.pods_by_node)}
        names = [n for n in sorted(set(recorded) | current) if n in inventory.nodes]
        al2 = [inventory.nodes[n] for n in names if inventory.nodes[n].os_family is OsFamily.AL2]
        pools = self._ensure_pools(wave, [inventory.nodes[n] for n in names] or al2, kube) if al2 else []
        # Cordon every node of the wave first: a pod evicted from one must not land on the next.
        # A step interrupted by a crash is finished from what the cluster shows (already cordoned).
        for node in al2:
            self._step(
                wave,
                f"cordon:{node.name}",
                "cordon",
                node.name,
                functools.partial(_cordon, kube, node.name, already=node.unschedulable),
            )
        journal = {s.key: s for s in self.repos.journal.journal(wave.id)}
        blocked = {}
        for node in al2:
            hold = pod_hold(node.name, inventory.pods_on(node.name), self._selectors)
            if hold is not None:
                blocked[node.name] = hold
                self._tell(wave, hold)
        plans = plan_drain(
            inventory, [n.name for n in al2 if n.name not in blocked], force=pw.force_unreplicated
        )
        todo = [p for p in plans if _needs_drain(p, journal.get(f"drain:{p.node}"))]
        refused = {p.node: len(p.refuse) for p in todo}
        drained = sum(1 for n in al2 if (s := journal.get(f"drain:{n.name}")) is not None and s.done)
        counters = _Counters(nodes_cordoned=len(al2), nodes_drained=drained)
        total_pods = sum(len(p.evict) for p in todo) + self._evicted_so_far(wave)
        self._progress(wave, "draining", len(names), counters, total_pods, pools, inventory)

        def stop() -> bool:
            return should_stop() or self._state(wave.id) is not WaveState.EXECUTING

        def on_event(event: DrainEvent) -> None:
            if event.kind is EventKind.NODE_STARTED:
                self.repos.journal.journal_start(wave.id, f"drain:{event.node}", "drain", event.node)
            elif event.kind is EventKind.POD_EVICTED:
                self._record_eviction(wave, event.pod, counters)
                self._progress(wave, "draining", len(names), counters, total_pods, pools, None)
            elif event.kind in (EventKind.EVICTION_BLOCKED, EventKind.POD_FAILED, EventKind.NODE_REFUSED):
                self._tally(wave.id, event.kind, refused.get(event.node, 0))
                self._progress(wave, "draining", len(names), counters, total_pods, pools, None)

        released = threading.Event()
        watcher: threading.Thread | None = None
        if todo and self.settings.pre_provision:
            wanted = self._pre_provision(wave, todo, [inventory.nodes[n] for n in names])
            if wanted:
                # The drain starts now: its first round of evictions needs no room (the budgets let
                # those pods go at once) and Karpenter launches for them and the placeholders in one
                # batch. The placeholders are released as soon as their nodes are up, so the next
                # rounds find empty capacity waiting instead of a ~55 s launch each.
                watcher = threading.Thread(
                    target=self._release_when_up,
                    args=(wave, wanted, released),
                    name=f"headroom-{wave.id}",
                    daemon=True,
                )
                watcher.start()
        drainer = Drainer(
            kube,
            DrainSettings(
                max_parallel_nodes=pw.max_parallel_nodes,
                retry_interval=self.settings.retry_interval,
                pod_timeout=self.settings.pod_timeout,
                wave_timeout=self.settings.wave_timeout,
                grace_period=self.settings.grace_period,
                cordon=False,  # done above, journalled
            ),
            events=on_event,
            budgets=inventory.budget_allowances(),
            should_stop=stop,
        )
        try:
            results = drainer.drain(todo) if todo else []
        finally:
            released.set()
            if watcher is not None:
                watcher.join()
        finished = True
        for result in results:
            key = f"drain:{result.node}"
            if result.outcome is NodeOutcome.DRAINED:
                self.repos.journal.journal_finish(wave.id, key, StepStatus.SUCCEEDED, {"outcome": "drained"})
                counters.nodes_drained += 1
                continue
            finished = False
            self.repos.journal.journal_finish(
                wave.id,
                key,
                StepStatus.FAILED,
                {
                    "outcome": result.outcome.value,
                    "message": result.message,
                    "blockers": _blockers(result.plan),
                },
            )
            if result.outcome is NodeOutcome.HELD:
                held = [d.pod.key for d in result.plan.hold]
                self._alert(
                    wave,
                    "held",
                    f"node {result.node} keeps pods annotated karpenter.sh/do-not-disrupt: "
                    f"{', '.join(held)} — remove the annotation (or move the workload) to let the wave"
                    " finish",
                    [f"pod {k}" for k in held],
                )
            elif result.outcome is NodeOutcome.REFUSED:
                self._alert(
                    wave,
                    "drain_refused",
                    f"node {result.node} can't be drained: {result.message} — set force_unreplicated: "
                    "true on the wave, or give those pods a controller",
                    [f"node {result.node}"],
                )
            elif not stop():
                timed_out = [r.message for r in result.pods if r.outcome.value == "timed-out"]
                if timed_out:
                    self._alert(wave, "drain_stuck", "; ".join(timed_out[:3]), [f"node {result.node}"])
        if stop():
            if self._state(wave.id) is WaveState.PAUSED:
                self.bus.publish(WavePaused(self.ref(wave), "paused: in-flight evictions finished"))
            return True
        if not finished:
            return True
        journal = {s.key: s for s in self.repos.journal.journal(wave.id)}
        if blocked or not all((s := journal.get(f"drain:{n.name}")) is not None and s.done for n in al2):
            return True
        counters.nodes_drained = len(al2)
        self._progress(wave, "drained", len(names), counters, total_pods, pools, None)
        fresh = self.repos.migrations.wave(wave.id)
        self._fire(fresh, Trigger.VERIFY)
        return True

    def _evicted_so_far(self, wave: WaveView) -> int:
        return len(self.repos.timings.pods(wave.id))

    def _record_eviction(self, wave: WaveView, pod_key: str, counters: _Counters) -> None:
        namespace, name = pod_key.split("/", 1)
        evicted_at: dt.datetime | None = None
        uid, workload = "", ""
        try:
            pod = self.kube.get_pod(namespace, name)
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid", ""))
            deletion = parse_time(meta.get("deletionTimestamp"))
            grace = meta.get("deletionGracePeriodSeconds")
            if deletion is not None and grace is not None:
                evicted_at = deletion - dt.timedelta(seconds=int(grace))
            workload = _workload(pod)
        except AdapterError:
            pass  # gone already: no cluster timestamp for its eviction
        with counters.lock:
            counters.pods_evicted += 1
            counters.evicted.append({"pod": pod_key, "uid": uid, "workload": workload})
        self.repos.timings.record_pods(
            wave.id, [PodTiming(namespace, name, workload, evicted_at, None, None, None, None)]
        )

    def _tally(self, wave_id: int, kind: EventKind, refused_pods: int) -> None:
        tally = self._tallies.setdefault(wave_id, _EvictionTally())
        with tally.lock:
            if kind is EventKind.EVICTION_BLOCKED:
                tally.retried += 1
            elif kind is EventKind.POD_FAILED:
                tally.failed += 1
            else:
                tally.refused += refused_pods

    def _progress(
        self,
        wave: WaveView,
        phase: str,
        nodes_total: int,
        counters: _Counters,
        pods_total: int,
        pools: Sequence[str],
        inventory: Inventory | None,
        *,
        pods_ready: int = 0,
    ) -> None:
        # Between inventories (an eviction's event) the node counts are the last ones seen.
        new_ready, left = self._last_counts.get(wave.id, (0, 0))
        if inventory is not None:
            new_ready = sum(
                1
                for n in inventory.nodes.values()
                if n.os_family is OsFamily.BOTTLEROCKET and n.owner_name in pools and n.ready
            )
            left = sum(1 for n in inventory.nodes.values() if n.os_family is OsFamily.AL2)
            self._last_counts[wave.id] = (new_ready, left)
        tally = self._tallies.get(wave.id) or _EvictionTally()
        self.bus.publish(
            WaveProgress(
                self.ref(wave),
                phase,
                nodes_total,
                counters.nodes_cordoned,
                counters.nodes_drained,
                pods_total,
                len(self.repos.timings.pods(wave.id)),
                pods_ready,
                new_ready,
                left,
                evictions_retried=tally.retried,
                pods_refused=tally.refused,
                evictions_failed=tally.failed,
            )
        )

    # ---- drift -------------------------------------------------------------------------------------

    def _execute_drift(
        self,
        wave: WaveView,
        pw: PlanWave,
        inventory: Inventory,
        prepared: JSON,
        kube: KubeAdapter,
        should_stop: Callable[[], bool],
    ) -> bool:
        for name in pw.selector.nodepools:
            original = (prepared.get("nodepools") or {}).get(name) or {}
            self._step(
                wave,
                f"drift:nodepool/{name}",
                "drift-nodepool",
                name,
                functools.partial(_patch_pool, kube, name, drift_patch(self.plan, pw, original)),
            )
            self._set_drift_budget(kube, name, str(pw.max_parallel_nodes))
        pool_nodes = [
            n
            for n in inventory.nodes.values()
            if n.owner_kind is NodeOwnerKind.KARPENTER and n.owner_name in pw.selector.nodepools
        ]
        al2 = [n for n in pool_nodes if n.os_family is OsFamily.AL2]
        held = [p.key for n in al2 for p in inventory.pods_on(n.name) if p.do_not_disrupt and not p.finished]
        if held:
            self._alert(
                wave,
                "held",
                f"Karpenter won't replace nodes running pods annotated karpenter.sh/do-not-disrupt: "
                f"{', '.join(held)} — remove the annotation (or move the workload) to let the wave finish",
                [f"pod {k}" for k in held],
            )
        total = len(prepared.get("nodes") or []) or len(pool_nodes)
        counters = _Counters(
            nodes_cordoned=sum(1 for n in al2 if n.unschedulable), nodes_drained=max(0, total - len(al2))
        )
        self._progress(wave, "replacing", total, counters, 0, list(pw.selector.nodepools), inventory)
        if al2:
            return True
        self._fire(self.repos.migrations.wave(wave.id), Trigger.VERIFY)
        return True

    def _set_drift_budget(self, kube: KubeAdapter, pool: str, nodes: str) -> None:
        """Make the pool's Drifted budget `nodes` ("0" while paused), keeping its other budgets."""
        current = kube.get_nodepool(pool)
        budgets = list(((current.get("spec") or {}).get("disruption") or {}).get("budgets") or [])
        drift = [b for b in budgets if DRIFTED in (b.get("reasons") or ())]
        if drift and all(b.get("nodes") == nodes for b in drift):
            return
        others = [b for b in budgets if DRIFTED not in (b.get("reasons") or ())]
        kube.patch_nodepool(
            pool, {"spec": {"disruption": {"budgets": [{"nodes": nodes, "reasons": [DRIFTED]}, *others]}}}
        )

    def _on_paused(self, wave: WaveView, should_stop: Callable[[], bool]) -> bool:
        pw = self.plan_wave(wave)
        by_window = [
            s for s in self.repos.journal.journal(wave.id) if s.kind == "window-pause" and not s.done
        ]
        if by_window and window_hold(self.plan.change_windows, self.clock()) is None:
            # Paused by the window's end, not by a person: the next window resumes it.
            self._fire(wave, Trigger.RESUME, {"reason": "change window open again", "by": "change window"})
            for step in by_window:
                self.repos.journal.journal_finish(wave.id, step.key, StepStatus.SUCCEEDED, {"resumed": True})
            return True
        if pw.strategy is Strategy.DRIFT and self._done(wave, "prepare") is not None:
            # Karpenter does drift's evictions: a zero Drifted budget stops new ones at once.
            for name in pw.selector.nodepools:
                if self._done(wave, f"drift:nodepool/{name}") is not None:
                    self._set_drift_budget(self._mutating(wave), name, "0")
        return False

    # ---- verifying → baking ------------------------------------------------------------------------

    def _on_verifying(self, wave: WaveView, should_stop: Callable[[], bool]) -> bool:
        self._release_headroom(wave)  # normally done before the drain; again here after a crash
        pw = self.plan_wave(wave)
        inventory = Inventory.build(self.kube)
        prepared = self._done(wave, "prepare") or {}
        wave_node_names = set(prepared.get("nodes") or [])
        left = [n for n in wave_node_names if n in inventory.nodes and not _drained(inventory, n)]
        if pw.strategy is Strategy.DRIFT:
            left = [
                n.name
                for n in inventory.nodes.values()
                if n.owner_kind is NodeOwnerKind.KARPENTER
                and n.owner_name in pw.selector.nodepools
                and n.os_family is OsFamily.AL2
            ]
        pods = self.repos.timings.pods(wave.id)
        replaced = _match_replacements(pods, inventory, self.kube)
        # A pod nothing recreates (evicted with force_unreplicated) has no replacement to wait for.
        not_ready = [p for p in replaced if p.ready_at is None and p.workload]
        since = wave.entered_at(WaveState.VERIFYING) or self.clock()
        if left or not_ready:
            waited = (self.clock() - since).total_seconds()
            if waited > self.settings.settle_timeout:
                what = [f"node {n}" for n in left[:5]] + [
                    f"pod {p.namespace}/{p.name}" for p in not_ready[:5]
                ]
                self._alert(
                    wave,
                    "node_not_ready" if left else "pods_pending",
                    f"{wave.label} has not settled after {int(waited)} s: {len(left)} AL2 node(s) left, "
                    f"{len(not_ready)} displaced pod(s) not Ready",
                    what,
                )
            counters = _Counters(nodes_drained=len(wave_node_names) - len(left))
            self._progress(
                wave,
                "waiting for pods",
                len(wave_node_names),
                counters,
                len(pods),
                _pool_names(self.plan, pw, inventory, prepared),
                inventory,
                pods_ready=len(replaced) - len(not_ready),
            )
            return True
        self.repos.timings.record_pods(wave.id, replaced)
        before = set(prepared.get("bottlerocket_before") or [])
        new_nodes = [
            n
            for n in inventory.nodes.values()
            if n.os_family is OsFamily.BOTTLEROCKET and n.name not in before
        ]
        timings = [t for t in (_node_timing(n, inventory, self.kube) for n in new_nodes) if t is not None]
        self.repos.timings.record_nodes(wave.id, timings)
        fresh = self._fire(self.repos.migrations.wave(wave.id), Trigger.BAKE)
        al2_left = sum(1 for n in inventory.nodes.values() if n.os_family is OsFamily.AL2)
        self.bus.publish(
            WaveFinished(
                self.ref(wave),
                WaveState.BAKING.value,
                f"{wave.label}: {len(wave_node_names)} AL2 node(s) moved, {len(pods)} pod(s) rescheduled "
                f"and Ready, {len(timings)} Bottlerocket node(s) up; baking for {_human(pw.bake)}; "
                f"{al2_left} AL2 node(s) left in the cluster",
            )
        )
        self._hand_over_bake(fresh, pw)
        return True

    def _hand_over_bake(self, wave: WaveView, pw: PlanWave) -> None:
        """Give the baking wave to whoever watches bakes (the canary), once and journalled: a crash
        between the wave entering `baking` and the hand-over is finished on the next pass."""
        if self.on_baking is None or self._done(wave, "bake-handover") is not None:
            return
        on_baking = self.on_baking

        def run() -> JSON:
            on_baking(wave, pw)
            return {}

        try:
            self._step(wave, "bake-handover", "hand-over-bake", wave.label, run)
        except StepError as failed:  # journalled; the next pass tries again
            log.warning("%s: the bake was not handed over yet: %s", wave.label, failed)

    def _on_baking(self, wave: WaveView, should_stop: Callable[[], bool]) -> bool:
        if not self.settings.manage_bake:
            self._hand_over_bake(wave, self.plan_wave(wave))
            return False
        pw = self.plan_wave(wave)
        since = wave.entered_at(WaveState.BAKING)
        if since is None or self.clock() - since < pw.bake:
            return True
        self._fire(wave, Trigger.COMPLETE)
        return True

    # ---- completed: retire the AL2 capacity --------------------------------------------------------

    def _on_completed(self, wave: WaveView, should_stop: Callable[[], bool]) -> bool:
        if self._done(wave, "retire") is not None:
            return False
        pw = self.plan_wave(wave)
        prepared = self._done(wave, "prepare") or {}
        kube = self._mutating(wave)
        if pw.strategy is Strategy.DRAIN:
            groups: Mapping[str, JSON] = prepared.get("nodegroups") or {}
            inventory = Inventory.build(self.kube)
            for group in groups:
                members = [
                    n
                    for n in inventory.nodes.values()
                    if n.owner_kind is NodeOwnerKind.NODE_GROUP and n.owner_name == group
                ]
                outside = [n.name for n in members if n.name not in set(prepared.get("nodes") or [])]
                if outside:
                    continue  # the group has nodes outside the wave: leave it as it is
                if self.aws is None:
                    raise StepError(f"can't retire node group {group}: no AWS adapter configured")
                aws = self.aws
                self._step(
                    wave,
                    f"retire:scale/{group}",
                    "scale-nodegroup",
                    group,
                    functools.partial(_scale_down, aws, self.cluster, group),
                )
                if members:
                    return True  # wait until its nodes are gone
                if self.settings.retire_delete_nodegroups:
                    self._step(
                        wave,
                        f"retire:delete/{group}",
                        "delete-nodegroup",
                        group,
                        functools.partial(_delete_nodegroup, aws, self.cluster, group),
                    )
            claims = {
                str((c.get("status") or {}).get("nodeName", "")): str(c["metadata"]["name"])
                for c in self.kube.list_nodeclaims()
            }
            for node in prepared.get("nodes") or []:
                claim = claims.get(node)
                if claim:
                    self._step(
                        wave,
                        f"retire:nodeclaim/{claim}",
                        "delete-nodeclaim",
                        claim,
                        functools.partial(_delete_claim, kube, claim),
                    )
        self._step(wave, "retire", "retire", wave.label, functools.partial(dict, retired=True))
        return False

    # ---- rolling back ------------------------------------------------------------------------------

    def _on_rolling_back(self, wave: WaveView, should_stop: Callable[[], bool]) -> bool:
        self._release_headroom(wave)  # a wave rolled back while its capacity came up
        pw = self.plan_wave(wave)
        prepared = self._done(wave, "prepare") or {}
        kube = self._mutating(wave)
        cycle = (wave.entered_at(WaveState.ROLLING_BACK) or self.clock()).strftime("%Y%m%dT%H%M%S")
        inventory = Inventory.build(self.kube)
        if pw.strategy is Strategy.DRIFT:
            for name, original in (prepared.get("nodepools") or {}).items():
                self._step(
                    wave,
                    f"rollback-{cycle}:nodepool/{name}",
                    "restore-nodepool",
                    name,
                    functools.partial(_patch_pool, kube, name, restore_patch(original)),
                )
            left = [
                n
                for n in inventory.nodes.values()
                if n.owner_kind is NodeOwnerKind.KARPENTER
                and n.owner_name in pw.selector.nodepools
                and n.os_family is OsFamily.BOTTLEROCKET
            ]
            if left:
                return True
        else:
            for group, record in (prepared.get("nodegroups") or {}).items():
                if self.aws is None or "desired" not in record:
                    continue
                aws = self.aws
                self._step(
                    wave,
                    f"rollback-{cycle}:scale/{group}",
                    "scale-nodegroup",
                    group,
                    functools.partial(_restore_nodegroup, aws, self.cluster, group, record),
                )
            for name in prepared.get("nodes") or []:
                node = inventory.nodes.get(name)
                if node is not None and node.unschedulable and node.os_family is OsFamily.AL2:
                    kube.uncordon(name)
            expected = sum(
                int(r.get("desired", r.get("nodes", 0))) for r in (prepared.get("nodegroups") or {}).values()
            )
            present = [
                n
                for n in inventory.nodes.values()
                if n.owner_kind is NodeOwnerKind.NODE_GROUP
                and n.owner_name in (prepared.get("nodegroups") or {})
                and n.ready
                and not n.unschedulable
            ]
            if len(present) < expected:
                return True  # AL2 capacity still coming back
            # Move the wave's workloads back: drain the Bottlerocket nodes the wave's pools brought up.
            pools = {
                str(s.target)
                for s in self.repos.journal.journal(wave.id)
                if s.kind == "ensure-nodepool" and s.done and s.detail.get("created")
            }
            for pool in sorted(pools):
                self._step(
                    wave,
                    f"rollback-{cycle}:cap/{pool}",
                    "cap-nodepool",
                    pool,
                    functools.partial(_patch_pool, kube, pool, {"spec": {"limits": {"cpu": "0"}}}),
                )
            back = [
                n
                for n in inventory.nodes.values()
                if n.os_family is OsFamily.BOTTLEROCKET and n.owner_name in pools
            ]
            if back:
                plans = plan_drain(inventory, [n.name for n in back], force=pw.force_unreplicated)
                results = Drainer(
                    kube,
                    DrainSettings(
                        max_parallel_nodes=pw.max_parallel_nodes,
                        retry_interval=self.settings.retry_interval,
                        pod_timeout=self.settings.pod_timeout,
                    ),
                    budgets=inventory.budget_allowances(),
                    should_stop=should_stop,
                ).drain(plans)
                if any(r.outcome is not NodeOutcome.DRAINED for r in results):
                    return True
        self._fire(self.repos.migrations.wave(wave.id), Trigger.FINISH_ROLLBACK)
        self.bus.publish(
            WaveFinished(
                self.ref(wave), WaveState.ROLLED_BACK.value, f"{wave.label} rolled back: AL2 capacity is back"
            )
        )
        return False

    _handlers: Mapping[WaveState, Callable[[Engine, WaveView, Callable[[], bool]], bool]] = {
        WaveState.APPROVED: _on_approved,
        WaveState.EXECUTING: _on_executing,
        WaveState.PAUSED: _on_paused,
        WaveState.VERIFYING: _on_verifying,
        WaveState.BAKING: _on_baking,
        WaveState.COMPLETED: _on_completed,
        WaveState.ROLLING_BACK: _on_rolling_back,
    }


# ---- pure-ish helpers -----------------------------------------------------------------------------


def _ensure(
    get: Callable[[str], JSON],
    create: Callable[[JSON], JSON],
    patch: Callable[[str, JSON], JSON],
    desired: JSON,
) -> JSON:
    name = desired["metadata"]["name"]
    try:
        current = get(name)
    except NotFound:
        create(desired)
        return {"created": True}
    if differs({"spec": desired["spec"]}, current):
        patch(name, spec_patch(desired))
        return {"created": False, "patched": True}
    return {"created": False, "patched": False}


def _either(a: threading.Event, b: threading.Event) -> bool:
    return a.is_set() or b.is_set()


def _cordon(kube: KubeAdapter, name: str, *, already: bool = False) -> JSON:
    if already:
        return {"unschedulable": True, "observed": True}
    kube.cordon(name)
    return {"unschedulable": True}


def _patch_pool(kube: KubeAdapter, name: str, patch: JSON) -> JSON:
    kube.patch_nodepool(name, patch)
    return {"patch": patch}


def _scale_down(aws: AwsAdapter, cluster: str, group: str) -> JSON:
    return {"update": aws.scale_nodegroup(cluster, group, desired=0, min_size=0)}


def _delete_claim(kube: KubeAdapter, name: str) -> JSON:
    with contextlib.suppress(NotFound):
        kube.delete_nodeclaim(name)
    return {"deleted": True}


def _delete_nodegroup(aws: AwsAdapter, cluster: str, name: str) -> JSON:
    with contextlib.suppress(NotFound):
        aws.delete_nodegroup(cluster, name)
    return {"deleted": True}


def _restore_nodegroup(aws: AwsAdapter, cluster: str, name: str, record: JSON) -> JSON:
    try:
        aws.scale_nodegroup(
            cluster,
            name,
            desired=int(record["desired"]),
            min_size=int(record["min"]),
            max_size=int(record["max"]),
        )
    except NotFound as gone:
        raise AdapterError(
            f"node group {name} was deleted when the wave retired its AL2 capacity; it can't be scaled "
            "back — create it again (eksctl/Terraform) or roll forward"
        ) from gone
    return {"restored": record}


def _blockers(plan: DrainPlan) -> list[str]:
    return sorted(d.pod.key for d in (*plan.refuse, *plan.hold))


def _needs_drain(plan: DrainPlan, step: StepView | None) -> bool:
    """A node is drained again unless it finished, or it is held or refused by the very same pods as
    last time (nothing changed: trying again would only count attempts)."""
    if step is None:
        return True
    if step.done:
        return bool(plan.evict)
    if plan.refuse:  # kubectl's rule: a node with a refused pod evicts nothing
        return step.detail.get("blockers") != _blockers(plan)
    if plan.hold:
        return bool(plan.evict) or step.detail.get("blockers") != _blockers(plan)
    return True


def _drained(inventory: Inventory, node: str) -> bool:
    info = inventory.nodes[node]
    if info.os_family is not OsFamily.AL2:
        return True
    return info.unschedulable and not any(
        not p.is_daemonset and not p.is_mirror and not p.finished for p in inventory.pods_on(node)
    )


def _pool_names(plan: Plan, pw: PlanWave, inventory: Inventory, prepared: JSON) -> list[str]:
    if pw.strategy is Strategy.DRIFT:
        return list(pw.selector.nodepools)
    nodes = [inventory.nodes[n] for n in prepared.get("nodes") or [] if n in inventory.nodes]
    return list(replacement_pools(plan, nodes)) or [plan.target.nodepool.name]


def _workload(pod: JSON) -> str:
    """ "Deployment/shop/cart", "StatefulSet/data/pg": what recreates the pod, across template changes
    (a Deployment's new ReplicaSet still replaces its old one's pods); "" for a bare pod."""
    info = pod_from_json(pod)
    if not info.workload_kind:
        return ""
    return f"{info.workload_kind}/{info.namespace}/{info.workload_name}"


def _condition_time(obj: JSON, kind: str) -> dt.datetime | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def _node_timing(node: NodeInfo, inventory: Inventory, kube: KubeAdapter | None = None) -> NodeTiming | None:
    """launch (the NodeClaim's Launched condition, else its creation) → registered (the Node's creation)
    → Ready (the Node's Ready transition), all in the cluster's own clock."""
    launched: dt.datetime | None = None
    ready: dt.datetime | None = None
    if kube is not None:
        try:
            obj = kube.get_node(node.name)
            ready = _condition_time(obj, "Ready")
        except AdapterError:
            return None
        if node.owner_kind is NodeOwnerKind.KARPENTER:
            for claim in _claims(kube):
                if (claim.get("status") or {}).get("nodeName") == node.name:
                    launched = _condition_time(claim, "Launched") or parse_time(
                        (claim.get("metadata") or {}).get("creationTimestamp")
                    )
    return NodeTiming(
        node.name,
        os_family(node.os_image).value.lower(),
        node.instance_type or None,
        launched,
        node.created,
        ready,
    )


_claims_cache: dict[int, tuple[float, list[JSON]]] = {}


def _claims(kube: KubeAdapter) -> list[JSON]:
    cached = _claims_cache.get(id(kube))
    if cached is not None and time.monotonic() - cached[0] < 2.0:
        return cached[1]
    claims = kube.list_nodeclaims()
    _claims_cache[id(kube)] = (time.monotonic(), claims)
    return claims


def _match_replacements(
    pods: Sequence[PodTiming], inventory: Inventory, kube: KubeAdapter
) -> list[PodTiming]:
    """For each evicted pod, the pod that took its place: same name with a new uid (StatefulSet), or a
    pod of the same workload created after the eviction (one replacement per evicted pod, oldest first)."""
    live: dict[str, list[tuple[dt.datetime, JSON]]] = {}
    wanted = {p.workload for p in pods}
    for page in kube.pod_pages():
        for obj in page:
            meta = obj.get("metadata") or {}
            name = str(meta.get("name", ""))
            workload = _workload(obj)
            if workload in wanted:
                created = parse_time(meta.get("creationTimestamp"))
                if created is not None and not meta.get("deletionTimestamp"):
                    live.setdefault(workload, []).append((created, obj))
    taken: set[str] = set()
    out: list[PodTiming] = []
    for p in sorted(pods, key=lambda t: (t.evicted_at or dt.datetime.min.replace(tzinfo=dt.UTC), t.name)):
        match: JSON | None = None
        for created, obj in sorted(live.get(p.workload, []), key=lambda x: x[0]):
            name = str(obj["metadata"]["name"])
            if name in taken:
                continue
            if p.evicted_at is None or created >= p.evicted_at - dt.timedelta(seconds=1):
                match = obj
                break
        if match is None:
            out.append(p)
            continue
        taken.add(str(match["metadata"]["name"]))
        out.append(
            PodTiming(
                p.namespace,
                p.name,
                p.workload,
                p.evicted_at,
                str(match["metadata"]["name"]),
                _condition_time(match, "PodScheduled"),
                _condition_time(match, "Ready"),
                str((match.get("spec") or {}).get("nodeName") or "") or None,
            )
        )
    return out


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"
