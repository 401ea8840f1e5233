"""The scenarios: which chaos runs beside the people, and the run that ties world, people, chaos and
checks together. Every random choice comes from `random.Random(seed)` streams, one per agent, so a
seed names a run (timing on a shared machine still varies: the kill moments are reproducible, what
the bot was doing at them is not)."""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.checks import Findings, check
from bench.chaos.people import People, StoryFailed
from bench.chaos.replica import Replica
from bench.chaos.world import World, open_world
from bot.domain.waves import WaveState
from sandbox.slack.faults import FaultPlan


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    kills: int = 0  # kill -9 of the (single) replica at seeded moments, restarted at once
    kill_gap: tuple[float, float] = (0.2, 6.0)  # seconds from the moment a kill is due to the kill
    kill_after_action: float = 0.0  # chance that a person's action is followed at once by kill -9 (at most 3)
    api_faults: bool = False  # 10% Kubernetes API errors (429/500/503), watches cut every 5 s
    slack_faults: bool = False  # Slack Web API: 10% 429 + Retry-After, 5% 500, 3% 503
    postgres: bool = False
    pg_cuts: int = 0  # every PostgreSQL connection dropped, this many times
    pg_gap: tuple[float, float] = (4.0, 15.0)
    replicas: int = 1
    kill_leader: bool = False  # with replicas: kill -9 the executor-lock holder once mid-wave


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "kill9", "kill -9 of `migratebot serve` at seeded moments (SQLite)", kills=9,
            kill_after_action=0.3,
        ),
        Scenario("kube-faults", "10% Kubernetes API errors and watch drops (SQLite)", api_faults=True),
        Scenario("slack-faults", "Slack Web API 429s and 5xx (SQLite)", slack_faults=True),
        Scenario("pg-cuts", "PostgreSQL connections cut mid-wave by a TCP proxy", postgres=True, pg_cuts=14),
        Scenario(
            "replicas",
            "two replicas on one PostgreSQL behind one Request URL; the leader killed mid-wave",
            postgres=True, replicas=2, kill_leader=True,
        ),
        Scenario(
            "storm",
            "kill -9 + 10% Kubernetes API errors and watch drops + Slack 429s/5xx (SQLite)",
            kills=9, kill_after_action=0.3, api_faults=True, slack_faults=True,
        ),
        Scenario(
            "ha",
            "two replicas behind one Request URL on PostgreSQL through a proxy that cuts every "
            "connection; the leader killed mid-wave",
            postgres=True, pg_cuts=14, replicas=2, kill_leader=True,
        ),
    )
}  # fmt: skip

# `make soak`: every ingredient at least once, in combined runs — kill -9 on two seeds, being where
# most goes wrong (about 12 minutes here).
DEFAULT_RUNS: tuple[tuple[str, int], ...] = (("storm", 20261125), ("ha", 20261125), ("storm", 7))


MAX_ACTION_KILLS = 3
IN_FLIGHT = {
    WaveState.APPROVED,
    WaveState.EXECUTING,
    WaveState.VERIFYING,
    WaveState.BAKING,
    WaveState.PAUSED,
    WaveState.CANARY_FAILED,
}


def _identity(replica: Replica) -> str:
    """The executor lock's holder name for the replica's current process (bot/services/engine.py)."""
    import socket

    return f"{socket.gethostname()}-{replica.pid}"


@dataclass
class Result:
    scenario: str
    seed: int
    kills: int = 0
    restarts: int = 0
    duration: float = 0.0
    findings: Findings = field(default_factory=Findings)
    failure: str | None = None  # the story could not finish: what did not happen
    retries: int = 0
    actions: int = 0
    chaos: list[str] = field(default_factory=list)  # what the chaos did, for the summary
    workdir: Path = Path()

    @property
    def ok(self) -> bool:
        f = self.findings
        return (
            self.failure is None
            and f.outcome.startswith("completed")
            and f.pdb_violations == 0
            and not f.duplicates
            and not f.lost
            and f.audit_ok
            and f.exclusive_ok
        )


class Chaos:
    """The agents that break things while the people work; each runs in its own thread."""

    def __init__(self, world: World, scenario: Scenario, seed: int, say: Callable[[str], None]) -> None:
        self.world = world
        self.scenario = scenario
        self.say = say
        self.done = threading.Event()
        self.kills = 0
        self.action_kills = 0
        self.restarts = 0
        self.lock = threading.Lock()  # one kill/restart at a time
        self.timeline: list[tuple[float, str | None]] = []
        self.events: list[str] = []
        self.takeover: float | None = None
        self._kill_rng = random.Random(seed)
        self._action_rng = random.Random(seed + 1)
        self._pg_rng = random.Random(seed + 2)
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def start(self) -> None:
        s = self.scenario
        if s.kills:
            self._spawn("killer", self._killer)
        if s.pg_cuts:
            self._spawn("pg-cutter", self._pg_cutter)
        if s.replicas > 1:
            self._spawn("lock-sampler", self._sample_lock)
        if s.kill_leader:
            self._spawn("leader-killer", self._leader_killer)

    def stop(self) -> None:
        self.done.set()
        for thread in self._threads:
            thread.join(30)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception:
                self.errors.append(f"{name}: {traceback.format_exc(limit=3)}")

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ---- kill -9 ------------------------------------------------------------------------------------

    def kill_and_restart(self, replica: Replica, why: str) -> None:
        with self.lock:
            if self.done.is_set() or not replica.alive():
                return
            replica.kill()
            self.kills += 1
            self.say(f"  ☠ kill -9 {replica.name} (pid {replica.pids[-1]}) {why}")
            replica.start()
            self.restarts += 1

    def _killer(self) -> None:
        """`kills` kills spread over the waves: for each wave in turn, once it is approved, wait until
        this replica's engine holds the executor lock (or not, one time in three: a kill during
        start-up or while it waits for the Lease), then kill -9 at a seeded moment within seconds."""
        replica = self.world.replicas[0]
        repos = self.world.repos
        waves = repos.migrations.waves(self.world.cluster)
        per_wave = [self.scenario.kills // len(waves)] * len(waves)
        for i in range(self.scenario.kills % len(waves)):
            per_wave[i] += 1
        lo, hi = self.scenario.kill_gap
        for wave, budget in zip(waves, per_wave, strict=True):
            for _ in range(budget):
                while not self.done.wait(0.1):
                    state = repos.migrations.wave(wave.id).state
                    if state is WaveState.COMPLETED or state in IN_FLIGHT:
                        break
                if self.done.is_set():
                    return
                if self._kill_rng.random() < 2 / 3:
                    while not self.done.wait(0.1) and self.world.holder() != _identity(replica):
                        pass
                if self.done.wait(self._kill_rng.uniform(lo, hi)):
                    return
                now = repos.migrations.wave(wave.id).state.value
                self.kill_and_restart(replica, f"while {wave.label} is {now} (kill {self.kills + 1})")

    def after_action(self) -> None:
        """Right after a person's click or command: maybe kill -9 before its effect lands."""
        chance = self.scenario.kill_after_action
        if not chance or self.action_kills >= MAX_ACTION_KILLS:
            return
        if self._action_rng.random() < chance:
            self.action_kills += 1
            time.sleep(self._action_rng.uniform(0.0, 0.3))
            self.kill_and_restart(self.world.replicas[0], "between a person's action and its effect")

    # ---- PostgreSQL cuts ------------------------------------------------------------------------------

    def _pg_cutter(self) -> None:
        proxy = self.world.pg_proxy
        assert proxy is not None
        lo, hi = self.scenario.pg_gap
        while proxy.cuts < self.scenario.pg_cuts and not self.done.wait(self._pg_rng.uniform(lo, hi)):
            dropped = proxy.cut()
            self.say(f"  ✂ PostgreSQL: {dropped} connection(s) cut")

    # ---- two replicas ---------------------------------------------------------------------------------

    def _sample_lock(self) -> None:
        while not self.done.wait(0.05):
            try:
                self.timeline.append((time.time(), self.world.holder()))
            except Exception:  # the driver's own connection is direct: this is only a missed sample
                continue

    def _leader_killer(self) -> None:
        """A seeded 1-6 s after wave 3 (a drain wave of 10 nodes) starts executing, kill -9 the
        executor-lock holder; the other replica must take over (once the Lease and the lock expire)
        and finish the wave."""
        repos = self.world.repos
        wave = next(w for w in repos.migrations.waves(self.world.cluster) if w.index == 3)
        while not self.done.wait(0.1) and repos.migrations.wave(wave.id).state is not WaveState.EXECUTING:
            pass
        if self.done.wait(self._kill_rng.uniform(1.0, 6.0)):
            return
        while not self.done.wait(0.1):
            holder = self.world.holder()
            leader = self.world.replica_of_pid(int(holder.rsplit("-", 1)[1])) if holder else None
            if leader is not None and leader.alive():
                break
        else:
            return
        drained = [s for s in repos.journal.journal(wave.id) if s.key.startswith("drain:") and s.done]
        with self.lock:
            leader.kill()
            self.kills += 1
        killed_at = time.monotonic()
        self.say(
            f"  ☠ kill -9 the leader {leader.name} (pid {leader.pids[-1]}) mid-wave: "
            f"{len(drained)} node(s) drained"
        )
        while not self.done.wait(0.1):
            now = self.world.holder()
            other = self.world.replica_of_pid(int(now.rsplit("-", 1)[1])) if now else None
            if other is not None and other is not leader:
                self.takeover = time.monotonic() - killed_at
                self.say(f"  {other.name} took the executor lock over {self.takeover:.1f} s after the kill")
                break
        with self.lock:
            leader.start()
            self.restarts += 1
        return


def run(scenario: Scenario, seed: int, workdir: Path, say: Callable[[str], None] = print) -> Result:
    result = Result(scenario.name, seed, workdir=workdir)
    started = time.monotonic()
    with open_world(
        workdir, postgres=scenario.postgres, replicas=scenario.replicas, pg_cuts=bool(scenario.pg_cuts)
    ) as world:
        database = "PostgreSQL" if scenario.postgres else "SQLite"
        say(
            f"[{scenario.name} seed {seed}] sandbox up; database {database}; "
            f"{scenario.replicas} replica(s); logs in {workdir}"
        )
        chaos = Chaos(world, scenario, seed, say)
        people = People(world, after_action=chaos.after_action, say=say)
        if scenario.api_faults:
            world.sandbox_admin(
                "POST",
                "/faults",
                {
                    "api": {
                        "error_fraction": 0.1,
                        "watch_disconnect_seconds": 5,
                        "retry_after_seconds": 1,
                        "random_seed": seed,
                    }
                },
            )
        if scenario.slack_faults:
            slack = world.slack
            slack.api.faults = FaultPlan(seed)  # the emulator's fault plan, seeded with this run's seed
            slack.rate_limit("*", times=None, fraction=0.10, retry_after=1)
            slack.fail("*", times=None, fraction=0.05, status=500)
            slack.fail("*", times=None, fraction=0.03, status=503)
        for replica in world.replicas:
            replica.start()
        for replica in world.replicas:
            replica.wait_healthy()
        chaos.start()
        try:
            people.migrate()
            settle(world, people)
        except StoryFailed as failed:
            result.failure = str(failed)
        except Exception as error:  # a bug in the suite or the world: reported, never hidden
            result.failure = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=6)}"
        finally:
            chaos.stop()
            result.kills, result.restarts = chaos.kills, chaos.restarts
        world.sandbox_admin("DELETE", "/faults")
        world.slack.clear_faults()
        for replica in world.replicas:
            replica.stop()
        result.findings = check(world, chaos.timeline)
        result.findings.lost += people.uncaught
        result.retries, result.actions = people.retries, people.actions
        result.chaos = _chaos_lines(world, chaos)
        if chaos.errors:
            result.failure = (result.failure or "") + "chaos agent failed: " + "; ".join(chaos.errors)
    result.duration = time.monotonic() - started
    return result


def settle(world: World, people: People, timeout: float = 90.0) -> None:
    """After the last wave: what the bot still owes Slack is sent (its outbox drained), as a person
    would wait before reading the channel."""
    from bench.chaos.people import until

    def drained() -> bool:
        with world.db.engine.connect() as connection:
            from sqlalchemy import text

            pending = connection.execute(
                text("SELECT count(*) FROM slack_messages WHERE delivered_rev < rev")
            ).scalar()
        return pending == 0

    until(drained, "the bot's outbox (slack_messages) to drain", timeout)
    time.sleep(3.0)  # posts made straight after a transition (alerts, canary results) land too


def _chaos_lines(world: World, chaos: Chaos) -> list[str]:
    lines = []
    if chaos.scenario.api_faults:
        counts = world.sandbox.api_faults.counts
        lines.append(
            f"kube API errors {sum(counts.failed.values())} ({dict(counts.failed)}), "
            f"watches cut {counts.watches_cut}"
        )
    if chaos.scenario.slack_faults:
        calls = world.slack.api.calls
        limited = sum(1 for c in calls if getattr(c, "status", 200) == 429)
        errors = sum(1 for c in calls if getattr(c, "status", 200) >= 500)
        lines.append(f"Slack answers 429: {limited}, 5xx: {errors} of {len(calls)} calls")
    if world.pg_proxy is not None:
        lines.append(f"PostgreSQL cuts {world.pg_proxy.cuts} ({world.pg_proxy.dropped} connections dropped)")
    if chaos.scenario.kill_leader:
        lines.append(
            f"leader killed mid-wave; takeover {chaos.takeover:.1f} s"
            if chaos.takeover is not None
            else "leader kill: no takeover seen"
        )
    if world.balancer is not None:
        lines.append("requests per replica " + ", ".join(f"{n}" for n in world.balancer.forwarded.values()))
    return lines
