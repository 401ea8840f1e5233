"""Issue 7 in Slack, over the wire: the sandbox's demo cluster, AWS and Slack, migratebot serving
/slack/events with a ReportSource (its kubeconfig and boto3's chain pointed at the sandbox).

A wave request shows the wave's readiness verdict and security headline, and its thread holds both
summaries and the full tables as files; `/migrate readiness|security [wave]` answer with the reports;
a wave that finished moving gets its results and chart in the thread; a cluster that can't be read
never fails the request — the request says why."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bot_world import EXAMPLE_PLAN, MIGRATION, eventually, plan_seed
from slack_sdk import WebClient

from bot.adapters.kube import KubeAdapter
from bot.app import MigrateBot, build_bot, create_asgi, create_bolt_app
from bot.demo import BotServer, lift_do_not_disrupt
from bot.domain.timings import NodeTiming, PodTiming
from bot.engine.events import EventBus, WaveFinished
from bot.engine.events import WaveRef as EventWave
from bot.services.reports import ReportSource
from bot.services.requests import WaveMessages
from bot.settings import Settings
from handlers import middleware
from handlers.ids import WaveBlock
from handlers.upkeep import Upkeep
from sandbox.main import Sandbox
from sandbox.slack import SlackActors, SlackEmulator
from sandbox.slack.blockkit import validate_blocks
from storage.schema import upgrade

JSON = dict[str, Any]


@dataclass
class ReportWorld:
    bot: MigrateBot
    slack: SlackEmulator
    people: SlackActors
    bus: EventBus

    def settle(self, timeout: float = 30.0) -> None:
        """The bot's answers sent (the reports run after the ack, in the background)."""
        eventually(lambda: not self.bot.background.pending, timeout)
        upkeep = self.bot.upkeep
        if upkeep is not None:
            eventually(lambda: upkeep.notifier.idle, timeout)

    def web(self) -> WebClient:
        return WebClient(token=self.slack.bot_token, base_url=self.slack.api_url)

    def requested(self) -> JSON:
        """Wave 1's request, asked for by alice if nobody has yet (tests of this module run in any order)."""
        if not self.requests():
            self.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
            eventually(self.requests, 30)
            self.settle()
            answers = [m.text for m in self.slack.workspace.ephemerals(MIGRATION, "alice")]
            assert any("Requested wave 1 (stateless-web)" in a for a in answers), answers
        return self.request()

    def requests(self) -> list[JSON]:
        return [
            dict(m)
            for m in self.web().conversations_history(channel=MIGRATION)["messages"]
            if _block(m, WaveBlock.READINESS)
        ]

    def request(self) -> JSON:
        [request] = self.requests()
        return request

    def thread(self, ts: str) -> list[JSON]:
        return list(self.web().conversations_replies(channel=MIGRATION, ts=ts)["messages"])[1:]

    def download(self, file: JSON) -> str:
        ask = urllib.request.Request(
            str(file["url_private"]), headers={"Authorization": f"Bearer {self.slack.bot_token}"}
        )
        with urllib.request.urlopen(ask, timeout=10) as answer:
            return str(answer.read().decode())

    def ephemeral(self, name: str, count: int) -> Any:
        self.slack.workspace.wait_for(
            lambda ws: len(ws.ephemerals(MIGRATION, name)) >= count or None, timeout=30
        )
        return self.slack.workspace.ephemerals(MIGRATION, name)[count - 1]


def _block(message: JSON, block_id: str) -> JSON | None:
    return next((b for b in message.get("blocks") or [] if b.get("block_id") == block_id), None)


def with_reports(bot: MigrateBot, source: ReportSource, bus: EventBus) -> None:
    """What build_bot wires when it runs with the cluster (the lines the report gives for
    bot/app.py), for a bot built Slack-only: the listeners' Deps and the upkeep's notifier get the
    ReportSource; `bus` stands in for the engine's."""
    client = bot.bolt.client
    deps = middleware.Deps(
        requests=bot.requests,
        roles=bot.roles,
        metrics=bot.metrics,
        background=bot.background,
        deliveries=middleware.DeliveryLedger(bot.requests),
        messages=WaveMessages(bot.plans, bot.repositories),
        reports=source,
    )
    secret = bot.settings.slack_signing_secret
    assert secret is not None
    bot.bolt = create_bolt_app(signing_secret=secret.get_secret_value(), client=client, deps=deps)
    bot.upkeep = Upkeep(
        bot.requests, deps.messages, client, bot.metrics, background=bot.background, bus=bus, reports=source
    )
    bot.asgi = create_asgi(bot)


def serve(tmp: Path, slack: SlackEmulator, kubeconfig: str) -> Iterator[ReportWorld]:
    plan_file = tmp / "plan.yaml"
    shutil.copy(EXAMPLE_PLAN, plan_file)
    url = f"sqlite:///{tmp / 'migratebot.db'}"
    upgrade(url)
    settings = Settings.model_validate(
        {
            "database_url": url,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "slack_api_url": slack.api_url,
            "plan": plan_file,
            "executor": False,  # no engine: the reports are what is under test
        }
    )
    bot = build_bot(settings)
    source = ReportSource.over(bot.plans.latest, bot.repositories, kubeconfig=kubeconfig)
    bus = EventBus()
    with_reports(bot, source, bus)
    try:
        with BotServer(bot) as server:
            people = SlackActors(slack.workspace, f"{server.base}/slack/events")
            yield ReportWorld(bot, slack, people, bus)
    finally:
        source.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportWorld]:
    with Sandbox("demo", time_scale=10.0) as sandbox, pytest.MonkeyPatch.context() as env:
        assert sandbox.aws is not None and sandbox.slack is not None
        for name, value in sandbox.aws.client_env().items():  # boto3's own chain, as in production
            env.setenv(name, value)
        yield from serve(
            tmp_path_factory.mktemp("reports-in-slack"), sandbox.slack, kubeconfig=str(sandbox.kubeconfig)
        )


def test_a_wave_request_shows_its_verdict_and_its_thread_holds_both_reports_and_their_tables(
    demo: ReportWorld,
) -> None:
    request = demo.requested()
    verdict = _block(request, WaveBlock.READINESS)
    assert verdict is not None
    shown = verdict["text"]["text"]
    # The demo's wave 1 runs shop/image-resizer (a hostPath under /usr) and node-tuner: blocked.
    assert "Readiness: BLOCKED" in shown and "4 blocker(s)" in shown, shown
    assert "AL2 (10 node(s)): 3 answer IMDSv1" in shown and "Bottlerocket: no node runs yet" in shown, shown
    assert validate_blocks(request["blocks"]) == []

    thread = demo.thread(request["ts"])
    readiness, security, files = thread[0], thread[1], thread[2]
    assert readiness["text"] == "Readiness of wave 1 (stateless-web): BLOCKED"
    body = str(readiness["blocks"])
    assert "Deployment shop/image-resizer" in body and "/usr/share/resizer-cache" in body
    assert "AL2 vs Bottlerocket" in security["text"] and "IMDSv2" in str(security["blocks"])
    for message in (readiness, security):
        assert validate_blocks(message["blocks"]) == []
    names = {f["name"]: f for f in files["files"]}
    assert set(names) == {
        "wave-1-readiness.csv",
        "wave-1-readiness.json",
        "wave-1-security.csv",
        "wave-1-security.json",
    }
    rows = list(csv.DictReader(io.StringIO(demo.download(names["wave-1-readiness.csv"]))))
    assert any("image-resizer" in str(row) and "/usr/share/resizer-cache" in str(row) for row in rows)

    # A click redraws the request from the database: the verdict stays.
    demo.people["carol"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.deny")
    demo.settle()
    redrawn = demo.request()
    assert "Denied" in str(redrawn["blocks"]) and "Readiness: BLOCKED" in str(redrawn["blocks"])


def test_migrate_security_and_readiness_answer_with_the_report_or_name_the_waves_there_are(
    demo: ReportWorld,
) -> None:
    alice = demo.people["alice"]
    before = len(demo.slack.workspace.ephemerals(MIGRATION, "alice"))
    alice.command("/migrate", "security 1", channel=MIGRATION)
    security = demo.ephemeral("alice", before + 1)
    assert security.text == "Security of wave 1 (stateless-web): AL2 vs Bottlerocket"
    assert "IMDSv2" in str(security.blocks) and "CVEs by severity" in str(security.blocks)
    assert validate_blocks(security.blocks) == []

    alice.command("/migrate", "readiness stateless-web", channel=MIGRATION)
    readiness = demo.ephemeral("alice", before + 2)
    assert readiness.text == "Readiness of wave 1 (stateless-web): BLOCKED"

    alice.command("/migrate", "readiness", channel=MIGRATION)  # the wave in flight or next: wave 1
    assert demo.ephemeral("alice", before + 3).text == "Readiness of wave 1 (stateless-web): BLOCKED"

    alice.command("/migrate", "readiness 9", channel=MIGRATION)
    unknown = demo.ephemeral("alice", before + 4).text
    assert "no wave 9 in cluster sandbox-demo" in unknown and "1 (stateless-web)" in unknown, unknown
    assert "Nothing was done" in unknown


def test_a_wave_that_moved_gets_its_results_and_chart_in_its_thread(demo: ReportWorld) -> None:
    demo.requested()
    # The engine's part, played here: the timings it records, then WaveFinished on its bus.
    wave = demo.bot.repositories.migrations.waves("sandbox-demo")[0]
    t0 = _at(0)
    demo.bot.repositories.timings.record_nodes(
        wave.id,
        [NodeTiming(f"br-{i}", "bottlerocket", "m5.large", t0, _at(20 + i), _at(30 + i)) for i in range(4)],
    )
    demo.bot.repositories.timings.record_pods(
        wave.id,
        [
            PodTiming("shop", "cart-1", "Deployment/shop/cart", t0, "cart-2", _at(5), _at(12), "br-0"),
            PodTiming("shop", "web-1", "Deployment/shop/web", t0, None, None, None, None),
        ],
    )
    demo.bus.publish(
        WaveFinished(EventWave("sandbox-demo", wave.id, 1, wave.name), "baking", "wave 1: 10 nodes moved")
    )
    demo.settle()
    request = demo.requested()

    def results() -> JSON | None:
        return next(
            (m for m in demo.thread(request["ts"]) if str(m.get("text", "")).startswith("Results of")), None
        )

    posted = eventually(results, 30)
    body = str(posted["blocks"])
    assert "Bottlerocket node launch → Ready:* p50 31.5 s, p90 32.7 s (n=4)" in body, body
    assert "pod shop/web-1" in body  # still pending
    assert validate_blocks(posted["blocks"]) == []
    uploads = [
        m for m in demo.thread(request["ts"]) if any(f["name"].endswith(".png") for f in m.get("files", []))
    ]
    [chart] = uploads
    assert {f["name"] for f in chart["files"]} >= {"wave-1-results.png", "wave-1-results.csv"}


def test_a_cluster_that_cant_be_read_never_fails_the_request_the_request_says_why(tmp_path: Path) -> None:
    with SlackEmulator(plan_seed()) as slack:
        for world in serve(tmp_path, slack, kubeconfig=str(tmp_path / "no-such-kubeconfig")):
            world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
            assert "Requested wave 1" in world.ephemeral("alice", 1).text
            world.settle()
            request = world.request()
            verdict = str(_block(request, WaveBlock.READINESS))
            assert "could not be computed" in verdict and "cluster sandbox-demo can't be reached" in verdict
            assert "no-such-kubeconfig" in verdict and "KUBECONFIG" in verdict, verdict
            assert "wave_request.approve" in str(request["blocks"])  # the request stands
            assert world.bot.repositories.migrations.waves("sandbox-demo")[0].state.value == "requested"


def _at(seconds: float) -> dt.datetime:
    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def test_an_approval_is_bound_to_the_readiness_its_request_showed_a_change_refuses_it_and_renews_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Sandbox("demo", time_scale=10.0) as sandbox:
        assert sandbox.aws is not None and sandbox.slack is not None
        for name, value in sandbox.aws.client_env().items():
            monkeypatch.setenv(name, value)
        for world in serve(tmp_path, sandbox.slack, kubeconfig=str(sandbox.kubeconfig)):
            repos = world.bot.repositories
            first = world.requested()
            [wave, *_] = repos.migrations.waves("sandbox-demo")
            bound = wave.request_snapshot_hash
            assert bound, "the request's readiness was shown but not kept"

            # Between the request and the approval, a pod on one of the wave's nodes is marked as not
            # to be interrupted: the drain would hold its node. The request did not show that.
            admin = KubeAdapter.from_kubeconfig(str(sandbox.kubeconfig), sandbox.context)
            try:
                held = _hold_a_pod_of_wave_1(admin)
                _approve(world, first, 1)
                answer = world.ephemeral("carol", 1).text
                world.settle()
                assert "readiness changed since it was requested" in answer, answer
                assert f"new: warning do-not-disrupt Pod {held}" in answer and "not recorded" in answer
                assert "fresh request" in answer, answer
                assert repos.approvals.approvals(wave.id) == []

                fresh, old = world.requests()  # newest first
                assert old["ts"] == first["ts"] and "wave_request.approve" not in str(old["blocks"])
                assert "readiness changed after this request" in str(old["blocks"])
                assert "wave_request.approve" in str(fresh["blocks"])
                renewed = repos.migrations.wave(wave.id)
                assert renewed.state.value == "requested" and renewed.requested_by == wave.requested_by
                assert renewed.request_snapshot_hash not in (None, bound), "the fresh request was not re-read"
                readiness = next(m for m in world.thread(fresh["ts"]) if m["text"].startswith("Readiness"))
                assert f"Pod {held}" in str(readiness["blocks"]), "the fresh request doesn't show the hold"
                kept = {
                    e.payload["version"]: str(e.payload["reasons"])
                    for e in repos.audit.events(action="wave.readiness_bound")
                }
                assert held in kept[renewed.version] and held not in kept[wave.version]

                # The fresh request, read again and unchanged since, is approved, bound to what it showed.
                _approve(world, fresh, 2)
                assert "you approved wave 1" in world.ephemeral("carol", 2).text.lower()
            finally:
                lift_do_not_disrupt(admin)
                admin.close()
            assert repos.migrations.wave(wave.id).state.value == "approved"
            [approval] = repos.approvals.approvals(wave.id)
            assert approval.snapshot_hash == renewed.request_snapshot_hash


def _approve(world: ReportWorld, request: JSON, count: int) -> None:
    world.people["carol"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    world.ephemeral("carol", count)


def _hold_a_pod_of_wave_1(kube: KubeAdapter) -> str:
    """karpenter.sh/do-not-disrupt on a Deployment's pod on wave 1's nodes (node group ng-web)."""
    nodes = {
        n["metadata"]["name"]
        for n in kube.list_nodes()
        if n["metadata"].get("labels", {}).get("eks.amazonaws.com/nodegroup") == "ng-web"
    }
    pod = next(
        p
        for p in kube.list_pods()
        if p["spec"].get("nodeName") in nodes
        and any(o.get("kind") == "ReplicaSet" for o in p["metadata"].get("ownerReferences") or [])
    )
    meta = pod["metadata"]
    kube.request(
        "PATCH",
        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
        body={"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}},
        content_type="application/merge-patch+json",
        what="hold a pod",
    )
    return f"{meta['namespace']}/{meta['name']}"
