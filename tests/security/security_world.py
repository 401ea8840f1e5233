"""The hostile-input suite's world: bot_world's emulated Slack and migratebot over HTTP, with the alert
buttons wired the way the composition root wires them (handlers.alerts.register with the canary's
AlertDesk), and a plan with one cluster per scenario so every scenario starts from its own wave.

Waves are put into the state a scenario needs through the same services Slack would reach (an SRE's
signed `/migrate next-wave`, WaveService as the engine's SYSTEM, the AlertDesk as the canary) — never by
writing rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

# The end-to-end harness lives beside the handler tests (tests/app does the same).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))

from bot_world import ALERTS, EXAMPLE_PLAN, MIGRATION, PEOPLE, World, plan_seed

from bot.adapters.slack import build_client
from bot.app import build_bot
from bot.canary.alerts import AlertDesk
from bot.canary.checks import Assessment, CheckResult, Phase, Verdict
from bot.canary.runner import CanaryRunner
from bot.demo import BotServer
from bot.domain.policy import Actor, Role
from bot.domain.waves import Trigger, WaveState
from bot.services.waves import WaveService
from bot.settings import Settings
from handlers import alerts
from sandbox.slack import SlackActors, SlackEmulator
from storage.repositories import EpisodeView, WaveView
from storage.schema import upgrade

__all__ = ["ALERTS", "MIGRATION", "PEOPLE", "Alerted", "GuardedWorld", "guarded_world", "scenario_plan"]

SRE = Actor(PEOPLE["bob"], frozenset({Role.SRE}))
LEAD = Actor(PEOPLE["dave"], frozenset({Role.TEAM_LEAD}))
SYSTEM = Actor.system()


def scenario_plan(clusters: list[str]) -> str:
    """examples/plan.yaml with one cluster per name, each with a single wave named after it."""
    data: Any = YAML(typ="safe").load(EXAMPLE_PLAN.read_text())
    template = data["waves"][0]
    data["clusters"] = [{"name": c, "region": "us-west-2", "kube_context": c} for c in clusters]
    data["waves"] = [{**template, "name": f"{c}-wave", "cluster": c} for c in clusters]
    # JSON is YAML: the loader reads it with line and column like any plan file.
    return json.dumps(data, indent=1)


def _no_cluster(cluster: str) -> Any:
    raise AssertionError(f"the security suite reads no cluster (asked for {cluster})")


@dataclass(frozen=True)
class Alerted:
    """An open alert: the episode and the message migratebot posted for it."""

    episode: int
    ts: str


@dataclass
class GuardedWorld:
    world: World
    desk: AlertDesk
    waves: WaveService
    log: io.StringIO = field(default_factory=io.StringIO)

    # ---- reading ----------------------------------------------------------------------------

    def wave(self, cluster: str) -> WaveView:
        [wave] = self.world.bot.repositories.migrations.waves(cluster)
        return wave

    def episode(self, episode: int) -> EpisodeView:
        return self.world.bot.repositories.canary.episode(episode)

    def audit(self) -> list[tuple[str, str, str]]:
        return [(e.actor, e.action, e.subject) for e in self.world.bot.repositories.audit.events()]

    # ---- bringing a cluster's wave where a scenario starts ----------------------------------

    def requested(self, cluster: str) -> str:
        """bob (SRE) asks for the cluster's wave in Slack; returns the request message's ts."""
        world = self.world
        before = len(world.ephemerals("bob"))
        world.people["bob"].command("/migrate", f"next-wave --cluster {cluster}", channel=MIGRATION)
        answer = world.wait_for_ephemeral("bob", before + 1)[-1]
        assert "Requested" in answer, answer
        world.settle()
        [message] = [
            m for m in world.history() if f"{cluster}-wave" in str(m.get("text")) and m.get("blocks")
        ]
        return str(message["ts"])

    def executing(self, cluster: str) -> WaveView:
        """Requested by an SRE, approved by a team lead, started by the engine."""
        name = f"{cluster}-wave"
        self.waves.fire(cluster, name, Trigger.REQUEST, SRE)
        self.waves.fire(cluster, name, Trigger.APPROVE, LEAD)
        return self.waves.fire(cluster, name, Trigger.START, SYSTEM)

    def paused(self, cluster: str) -> WaveView:
        self.executing(cluster)
        return self.waves.fire(cluster, f"{cluster}-wave", Trigger.PAUSE, SYSTEM)

    def alerted(self, cluster: str) -> Alerted:
        """The wave baked, its canary failed: the AlertDesk paused it and posted the alert."""
        self.executing(cluster)
        for trigger in (Trigger.VERIFY, Trigger.BAKE):
            wave = self.waves.fire(cluster, f"{cluster}-wave", trigger, SYSTEM)
        failing = CheckResult(
            "crashloop", Verdict.FAIL, "node-tuner is in CrashLoopBackOff", objects=("pod tools/node-tuner",)
        )
        alert = self.desk.canary_failed(
            wave, Assessment(Phase.FAILED, "crashloop failed 2 times (limit 1)"), [failing]
        )
        assert alert.episode.message_ts, "the alert was not posted"
        assert self.wave(cluster).state is WaveState.CANARY_FAILED
        return Alerted(alert.episode.id, alert.episode.message_ts)


@contextlib.contextmanager
def guarded_world(tmp_path: Path, clusters: list[str]) -> Iterator[GuardedWorld]:
    """migratebot serving /slack/events on the scenario plan, Slack-only (no engine), alert buttons on.

    Every log record at WARNING or above lands in `.log`, so tests can say no traceback was logged."""
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(scenario_plan(clusters))
    url = f"sqlite:///{tmp_path / 'db' / 'migratebot.db'}"
    upgrade(url)
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # uvicorn's own loggers (an exception in the ASGI app) do not propagate to the root logger.
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with SlackEmulator(plan_seed()) as slack:
            values: dict[str, Any] = {
                "database_url": url,
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": slack.signing_secret,
                "slack_api_url": slack.api_url,
                "plan": plan_file,
            }
            if "executor" in Settings.model_fields:
                values["executor"] = False  # Slack only: the engine and the canary need a cluster
            settings = Settings.model_validate(values)
            bot = build_bot(settings)
            repos = bot.repositories
            waves = WaveService(repos.migrations, repos.audit)
            notifier = alerts.SlackNotifier(
                build_client(slack.bot_token, base_url=slack.api_url), bot.plans.latest
            )
            desk = AlertDesk(repos, waves, notifier, reminder_base=dt.timedelta(hours=1))
            runner = CanaryRunner(repos, waves, bot.plans.latest, _no_cluster, desk)
            # As bot/app.py's create_bolt_app does when the canary runs in this process.
            alerts.register(bot.bolt, alerts.CanaryDeps(desk, runner))
            try:
                with BotServer(bot) as server:
                    people = SlackActors(slack.workspace, f"{server.base}/slack/events")
                    yield GuardedWorld(World(slack, server, people, plan_file), desk, waves, sink)
            finally:
                desk.close()
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
