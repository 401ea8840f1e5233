"""The issue's acceptance on the demo: node-tuner (a DaemonSet writing /usr/local/bin) crash-loops on the
new Bottlerocket nodes; the canary fails within one interval of its limit, the migration pauses itself,
on-call is alerted once (plus reminders) in Slack and paged once, acknowledges, and a team lead rolls
the wave back from the alert."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from canary_world import CLUSTER, eventually, fast_plan
from pydantic import SecretStr
from slack_sdk import WebClient

from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.adapters.slack import build_client
from bot.app import build_bot
from bot.canary.setup import CanaryStack, build_canary
from bot.demo import BotServer, move_resizer_cache
from bot.domain.waves import Trigger, WaveState
from bot.engine.events import EventBus
from bot.engine.executor import Engine, EngineSettings
from bot.services.waves import WaveService
from bot.settings import Settings
from handlers import alerts
from sandbox.main import Sandbox
from sandbox.pagerduty import PagerDutyReceiver
from sandbox.scenarios import Scenario, load_scenario
from storage.models import MigrationStatus
from storage.schema import upgrade

ALERTS, MIGRATION = "C0ALERTS01", "C0MIGRATION"
ALICE, CAROL, ERIN = "U0SRE00001", "U0LEAD0001", "U0ONCALL01"


def demo_with_lead_in_alerts() -> Scenario:
    """The demo, with team lead carol in the alerts channel (she rolls waves back from alerts there), and
    without the do-not-disrupt pod that would hold wave 1 (the engine alerts on it: another story)."""
    data = load_scenario("demo").model_dump()
    for namespace in data["namespaces"]:
        for workload in namespace["workloads"]:
            workload["pod_annotations"] = {
                k: v
                for k, v in (workload.get("pod_annotations") or {}).items()
                if k != "karpenter.sh/do-not-disrupt"
            }
    for channel in data["slack"]["channels"]:
        if channel["id"] == ALERTS:
            channel["members"] = [*channel["members"], CAROL]
    return Scenario.model_validate(data)


def messages(slack: WebClient, channel: str) -> list[dict[str, Any]]:
    found = slack.conversations_history(channel=channel)["messages"]
    assert isinstance(found, list)
    return found


def thread(slack: WebClient, channel: str, ts: str) -> list[dict[str, Any]]:
    found = slack.conversations_replies(channel=channel, ts=ts)["messages"]
    assert isinstance(found, list)
    return [m for m in found if m.get("ts") != ts]


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        str(e["action_id"]): str(e.get("value", ""))
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b.get("elements") or []
    }


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyReceiver]:
    with PagerDutyReceiver() as receiver:
        yield receiver


@pytest.mark.slow
def test_a_crashing_workload_on_bottlerocket_fails_the_canary_pauses_alerts_once_and_is_rolled_back(
    tmp_path: Path, pagerduty: PagerDutyReceiver
) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'migratebot.db'}"
    upgrade(url)
    plan_file = fast_plan(
        tmp_path / "plan.yaml",
        interval="1s",
        bake="10m",
        failure_limit=1,
        inconclusive_limit=1000,
        force_unreplicated=True,
    )
    with Sandbox(demo_with_lead_in_alerts(), time_scale=40) as sb:
        added = sb.admin_request(
            "POST",
            "/faults",
            {"crash_on_bottlerocket": {"namespace": "platform-tools", "selector": "app=node-tuner"}},
        )
        assert added["added"]["crash_on_bottlerocket"]
        # image-resizer's /usr cache would keep its pod from ever being Ready on Bottlerocket (the wave
        # would wait in verifying): this story is about node-tuner, so the cache is moved first.
        owner = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.context)
        try:
            move_resizer_cache(owner)
        finally:
            owner.close()
        slack_info = sb.info()["slack"]
        settings = Settings.model_validate(
            {
                "database_url": url,
                "plan": plan_file,
                "slack_api_url": slack_info["apiUrl"],
                "SLACK_BOT_TOKEN": slack_info["botToken"],
                "SLACK_SIGNING_SECRET": slack_info["signingSecret"],
                "pagerduty_routing_key": SecretStr(pagerduty.routing_key),
                "pagerduty_url": pagerduty.url,
                "executor": False,  # this test composes its own canary and engine (fast timings)
            }
        )
        bot = build_bot(settings)
        repos = bot.repositories
        kube = KubeAdapter.from_kubeconfig(str(sb.kubeconfig), sb.bot_context)
        waves = WaveService(repos.migrations, repos.audit)
        bus = EventBus()
        canary = build_canary(
            settings,
            repos,
            bot.plans.latest,
            waves,
            alerts.SlackNotifier(
                build_client(str(slack_info["botToken"]), base_url=slack_info["apiUrl"]), bot.plans.latest
            ),
            kube_for=lambda _cluster: kube,
            elect=False,
            bus=bus,
            reminder_base=dt.timedelta(seconds=1),
            poll_every=dt.timedelta(seconds=0.2),
            remind_every=dt.timedelta(seconds=0.5),
        )
        alerts.register(bot.bolt, alerts.CanaryDeps(canary.desk, canary.runner))
        env = sb.info()["aws"]["env"]
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        engine = Engine(
            bot.plans.latest(),
            CLUSTER,
            kube=kube,
            aws=AwsAdapter("us-west-2", session=session, endpoint_url=sb.aws_endpoint),
            repos=repos,
            bus=bus,
            settings=EngineSettings(
                poll_interval=0.2, retry_interval=0.5, settle_timeout=120.0, manage_bake=False
            ),
            on_baking=lambda wave, _planned: canary.runner.schedule_bake(CLUSTER, wave.id),
        )
        stop = threading.Event()
        worker = threading.Thread(target=engine.run, args=(stop,), name="engine", daemon=True)
        with BotServer(bot) as server:
            assert sb.slack is not None
            sb.slack.request_url = f"{server.base}/slack/events"
            people = sb.slack.people()
            slack = WebClient(token=str(slack_info["botToken"]), base_url=str(slack_info["apiUrl"]))
            canary.start()
            worker.start()
            try:
                _story(sb, bot.repositories, canary, waves, people, slack, pagerduty, stop)
            finally:
                stop.set()
                worker.join(timeout=30)
                canary.stop()
                kube.close()


def _story(
    sb: Sandbox,
    repos: Any,
    canary: CanaryStack,
    waves: WaveService,
    people: Any,
    slack: WebClient,
    pagerduty: PagerDutyReceiver,
    stop: threading.Event,
) -> None:
    from canary_world import LEAD, SRE

    wave = waves.fire(CLUSTER, "stateless-web", Trigger.REQUEST, SRE)
    wave = waves.fire(CLUSTER, "stateless-web", Trigger.APPROVE, LEAD)
    settled = (WaveState.BAKING, WaveState.CANARY_FAILED, WaveState.PAUSED, WaveState.FAILED)
    eventually(lambda: repos.migrations.wave(wave.id).state in settled, timeout=240, what="wave 1 drained")
    assert repos.canary.episodes() == [] or repos.canary.episodes()[0].kind == "canary", (
        repos.canary.episodes()
    )
    failed = eventually(
        lambda: repos.migrations.wave(wave.id).state is WaveState.CANARY_FAILED,
        timeout=30,
        what="the canary failing",
    )
    assert failed
    stop.set()  # the engine has nothing more to do until someone acts

    # Within one interval of the limit: failure_limit 1 → the second failing run fails the canary.
    runs = repos.canary.runs(wave.id)
    failing = [r for r in runs if r.verdict == "fail"]
    assert len(failing) >= 2
    bake = repos.canary.bake(wave.id)
    assert bake is not None and bake.outcome == "failed"
    assert (bake.ended_at - failing[1].started_at) < dt.timedelta(seconds=1)
    seen = str([r.results for r in failing])
    assert "node-tuner" in seen and "read-only file system" in seen and "CrashLoopBackOff" in seen, seen

    # The migration paused itself, as migratebot.
    migration = repos.migrations.get(CLUSTER)
    assert migration is not None and migration.status is MigrationStatus.PAUSED

    # On-call alerted once, by usergroup and user, with what failed; paged once.
    [alert] = eventually(lambda: [m for m in messages(slack, ALERTS) if buttons(m)] or None, what="the alert")
    assert "<!subteam^S0ONCALL01>" in alert["text"] and "<@U0ONCALL01>" in alert["text"]
    shown = str(alert["blocks"])
    assert "node-tuner" in shown and "read-only file system" in shown and "Since" in shown
    assert set(buttons(alert)) == {"alert.acknowledge", "alert.resume", "alert.rollback"}
    [episode] = repos.canary.episodes(wave.id)
    assert set(buttons(alert).values()) == {f"e{episode.id}"}
    [incident] = eventually(lambda: list(pagerduty.incidents.values()) or None, what="the page")
    assert incident.dedup_key == episode.dedup_key and incident.status == "triggered"

    # Reminders with backoff in the alert's thread until someone acknowledges.
    eventually(lambda: len(thread(slack, ALERTS, alert["ts"])) >= 2, timeout=15, what="two reminders")
    reminders = thread(slack, ALERTS, alert["ts"])
    assert all("reminder" in m["text"] for m in reminders)

    # Someone without the role can't acknowledge; on-call can.
    people[ALICE].click(channel=ALERTS, ts=alert["ts"], action_id="alert.acknowledge")
    eventually(
        lambda: any("on-call" in t.text for t in sb.slack.workspace.ephemerals(ALERTS, ALICE)),
        what="alice (SRE) refused",
    )
    assert repos.canary.episode(episode.id).acknowledged_by is None
    people[ERIN].click(channel=ALERTS, ts=alert["ts"], action_id="alert.acknowledge")
    eventually(
        lambda: repos.canary.episode(episode.id).acknowledged_by == ERIN, what="erin's acknowledgement"
    )
    updated = eventually(
        lambda: next(
            (
                m
                for m in messages(slack, ALERTS)
                if m["ts"] == alert["ts"] and "Acknowledged by" in str(m["blocks"])
            ),
            None,
        ),
        what="the alert redrawn",
    )
    assert "alert.acknowledge" not in buttons(updated)
    eventually(
        lambda: pagerduty.incidents[episode.dedup_key].status == "acknowledged", what="the page acknowledged"
    )
    reminded = len(thread(slack, ALERTS, alert["ts"]))

    # Anyone in the migration channel can ask for the canary's status, or run it now.
    ws = sb.slack.workspace
    people["alice"].command("/migrate", "canary status", channel="eks-migration")
    [status] = eventually(
        lambda: [m.text for m in ws.ephemerals(MIGRATION, "alice") if "Canary of" in m.text] or None,
        what="the canary status",
    )
    assert "wave 1 (stateless-web)" in status and "canary_failed" in status
    assert "Open alert" in status and "acknowledged by <@U0ONCALL01>" in status
    people["alice"].command("/migrate", "canary run", channel="eks-migration")
    [ran] = eventually(
        lambda: [m.text for m in ws.ephemerals(MIGRATION, "alice") if "Canary run" in m.text] or None,
        what="a canary run on demand",
    )
    assert "*fail*" in ran and "crashloop: fail" in ran

    # The checks keep failing: still one alert, one incident, and no more reminders once acknowledged.
    after = len(repos.canary.runs(wave.id))
    eventually(lambda: len(repos.canary.runs(wave.id)) >= after + 3, what="more failing runs")
    assert len([m for m in messages(slack, ALERTS) if buttons(m)]) == 1
    assert len(pagerduty.incidents) == 1
    assert len(thread(slack, ALERTS, alert["ts"])) == reminded

    # A team lead rolls the wave back from the alert: the engine takes it from rolling_back.
    people[CAROL].click(channel=ALERTS, ts=alert["ts"], action_id="alert.rollback")
    eventually(lambda: repos.migrations.wave(wave.id).state is WaveState.ROLLING_BACK, what="the rollback")
    eventually(lambda: pagerduty.incidents[episode.dedup_key].status == "resolved", what="the page resolved")
    assert pagerduty.incidents[episode.dedup_key].actions == ["trigger", "acknowledge", "resolve"]
    final = eventually(
        lambda: next((m for m in messages(slack, ALERTS) if m["ts"] == alert["ts"] and not buttons(m)), None),
        what="the alert closed",
    )
    assert "Resolved" in str(final["blocks"])
    assert "wave.rollback" in [e.action for e in repos.audit.events()]
