"""The Slack story `migratebot demo` plays, in-process: the sandbox (Kubernetes, AWS, Slack) and the
bot's own ASGI app under uvicorn (as `migratebot serve` runs it), people sending signed requests.

A composition root like bot/app.py: it may import the sandbox and the bot's Slack surface, which
bot/services may not (see the import contracts). bot/services/demo.py calls it through `Story`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import uvicorn
from pydantic import SecretStr
from rich.console import Console

from bot.adapters.aws import AwsAdapter
from bot.adapters.kube import KubeAdapter
from bot.app import MigrateBot, build_bot
from bot.domain.errors import DomainError
from bot.engine.events import Event, EventBus, WaveProgress
from bot.engine.executor import Engine, EngineSettings
from bot.engine.inventory import Inventory
from bot.engine.pods import OsFamily
from bot.services.demo import StoryOutcome
from bot.settings import Settings
from bot.views.console import engine_event_line
from sandbox.main import Sandbox
from sandbox.slack import SlackEmulator, Workspace

T = TypeVar("T")
STEP_TIMEOUT = 15.0
SRE = "U0SRE00001"
TEAM_LEAD = "U0LEAD0001"


class DemoFailed(DomainError):
    """A step of the story did not happen in time: the message says which."""


class BotServer:
    """The bot's ASGI app under uvicorn on 127.0.0.1 (ephemeral port) in a thread, with its lifespan."""

    def __init__(self, bot: MigrateBot) -> None:
        self.bot = bot
        self.base = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BotServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(
            uvicorn.Config(self.bot.asgi, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        )
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name="migratebot-demo", daemon=True
        )
        self._thread.start()
        _until(lambda: server.started or not self._thread_alive(), "migratebot to start")
        if not server.started:
            raise DemoFailed("migratebot's HTTP server did not start (see the log above)")
        return self

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._server is not None:
                self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
        finally:
            self.bot.close()


def _until(probe: Callable[[], T | None], what: str, timeout: float = STEP_TIMEOUT) -> T:
    """Poll `probe` until it is truthy; DemoFailed naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise DemoFailed(f"demo: waited {timeout:.0f} s for {what}; it did not happen")
        time.sleep(0.01)


def _ephemeral(slack: SlackEmulator, channel: str, user: str, count: int, what: str) -> str:
    """The user's `count`-th ephemeral answer in `channel`, waiting for it on the workspace."""

    def arrived(ws: Workspace) -> str | None:
        answers = ws.ephemerals(channel, user)
        return answers[count - 1].text if len(answers) >= count else None

    try:
        return slack.workspace.wait_for(arrived, timeout=STEP_TIMEOUT)
    except TimeoutError:
        raise DemoFailed(f"demo: waited {STEP_TIMEOUT:.0f} s for {what}; it did not come") from None


def play_slack_story(settings: Settings, plan_file: Path, console: Console) -> StoryOutcome:
    """Sandbox up, bot up; an SRE requests the next wave, can't approve it herself, a team lead does."""
    console.rule("sandbox")
    started = time.monotonic()
    # Emulated time runs 20x: Karpenter's ~55 s to a Ready node takes under 3 real seconds.
    with Sandbox("demo", time_scale=20.0) as sandbox:
        info = sandbox.info()
        slack_info = info["slack"]
        slack = sandbox.slack
        assert slack is not None
        cluster = str(info["cluster"]["name"])
        console.print(
            f"sandbox 'demo' up in {time.monotonic() - started:.1f} s: cluster {cluster}, "
            f"{info['nodes']} nodes, {info['pods']} pods; Slack {slack.api_url}",
            markup=False,
        )
        bot_settings = settings.model_copy(
            update={
                "slack_api_url": str(slack_info["apiUrl"]),
                "slack_bot_token": SecretStr(str(slack_info["botToken"])),
                "slack_signing_secret": SecretStr(str(slack_info["signingSecret"])),
                "slack_app_token": None,
                "plan": plan_file,
            }
        )
        channel = str(slack_info["channels"]["migration"])
        with BotServer(build_bot(bot_settings, plan_file)) as server:
            bot = server.bot
            slack.request_url = f"{server.base}/slack/events"
            console.print(f"migratebot serving {slack.request_url}", markup=False)
            people = slack.people()
            sre, lead = people[SRE], people[TEAM_LEAD]
            channel_name = slack.workspace.channel(channel).name

            def wave_one() -> str:
                return next(w.state.value for w in bot.repositories.migrations.waves(cluster) if w.index == 1)

            console.rule("readiness")
            admin = KubeAdapter.from_kubeconfig(str(sandbox.kubeconfig), sandbox.context)
            console.print(
                "An SRE reads the readiness report and fixes what blocks Bottlerocket: the ad-hoc bare pod "
                "analytics/adhoc-backfill is finished, the host-tuning DaemonSet platform-tools/node-tuner "
                "retired (Bottlerocket sets sysctls in its settings), shop/image-resizer's cache moved "
                "from /usr (read-only on Bottlerocket) to /var/lib, fraud-scorer's do-not-disrupt lifted.",
                markup=False,
            )
            fix_demo_workloads(admin)

            console.rule("slack")
            console.print(
                f"{sre.name} ({SRE}, SRE) types `/migrate next-wave` in #{channel_name}", markup=False
            )
            sre.command("/migrate", "next-wave", channel=channel)
            answer = _ephemeral(slack, channel, SRE, 1, f"the answer to {sre.name}'s /migrate next-wave")
            console.print(f"  → {sre.name} sees: {answer}", markup=False)
            _until(lambda: wave_one() == "requested", "wave 1 to be requested in the database")
            request_ts = _until(
                lambda: next(
                    (m.ts for m in slack.workspace.channel_messages(channel) if m.bot_id and m.blocks),
                    None,
                ),
                f"the wave request to be posted in #{channel_name}",
            )

            console.print(f"{sre.name} clicks Approve on her own request", markup=False)
            sre.click(channel=channel, ts=request_ts, action_id="wave_request.approve")
            refusal = _ephemeral(slack, channel, SRE, 2, f"the answer to {sre.name}'s approval")
            console.print(f"  → refused, {sre.name} sees: {refusal}", markup=False)

            console.print(f"{lead.name} ({TEAM_LEAD}, team lead) clicks Approve", markup=False)
            lead.click(channel=channel, ts=request_ts, action_id="wave_request.approve")
            approval = _ephemeral(slack, channel, TEAM_LEAD, 1, f"the answer to {lead.name}'s approval")
            console.print(f"  → {lead.name} sees: {approval}", markup=False)

            def decided() -> str | None:
                state = wave_one()
                return state if state != "requested" else None

            state = _until(decided, "wave 1's decision to reach the database")
            _until(lambda: not bot.background.pending, "the bot's answers to be sent")
            wave = next(w for w in bot.repositories.migrations.waves(cluster) if w.index == 1)
            completed = 0
            if state == "approved":
                completed = _run_engine(sandbox, bot, admin, cluster, console)
            approvers = tuple(
                a.user_id
                for a in bot.repositories.approvals.approvals(wave.id)
                if a.decision.value == "approve"
            )

        console.rule(f"#{channel_name} transcript")
        console.print(slack.transcript(channel), markup=False, end="")

        kube = KubeAdapter.from_kubeconfig(str(sandbox.kubeconfig), sandbox.bot_context)
        al2 = len(Inventory.build(kube).nodes_of(OsFamily.AL2))
        wave = bot.repositories.migrations.wave(wave.id)
    return StoryOutcome(
        wave=wave.label, state=state, approved_by=approvers, al2_nodes=al2, completed=completed
    )


def _run_engine(sandbox: Sandbox, bot: MigrateBot, admin: KubeAdapter, cluster: str, console: Console) -> int:
    """The engine executes the approved wave (as `migratebot engine` does), its progress in the
    request's thread and here; on-call answers a do-not-disrupt hold. Returns waves completed."""
    console.rule("engine")
    env = sandbox.info()["aws"]["env"]
    # The bot reaches AWS the way it does in production: boto3's own chain, pointed at the sandbox.
    os.environ.update(env)
    bus = EventBus()
    shown: list[str] = []

    def show(event: Event) -> None:
        line = engine_event_line(event)
        if not isinstance(event, WaveProgress) or not shown or shown[-1] != line:
            shown.append(line)
            console.print(f"  {line}", markup=False)

    bus.subscribe(show)
    if bot.upkeep is not None:
        bot.upkeep.notifier.attach(bus)
    kube = KubeAdapter.from_kubeconfig(str(sandbox.kubeconfig), sandbox.bot_context)
    engine = Engine(
        bot.plans.latest(), cluster, kube=kube,
        aws=AwsAdapter(env["AWS_REGION"]),
        repos=bot.repositories, bus=bus,
        settings=EngineSettings(poll_interval=0.2, retry_interval=0.25, settle_timeout=120.0),
    )  # fmt: skip
    deadline = time.monotonic() + 150
    try:
        while True:
            engine.tick()
            wave = next(w for w in bot.repositories.migrations.waves(cluster) if w.index == 1)
            if wave.state.value == "completed" and engine.retired(wave):
                break
            if any(line for line in shown if "ALERT held" in line) and lift_do_not_disrupt(admin):
                console.print("  on-call lifts the do-not-disrupt hold the engine reported", markup=False)
            if time.monotonic() > deadline:
                raise DemoFailed(f"demo: wave 1 did not complete in 150 s (it is {wave.state.value})")
            time.sleep(0.1)
        _until(lambda: bot.upkeep is None or bot.upkeep.notifier.idle, "the progress posts to be sent")
    finally:
        kube.close()
    return 1


def fix_demo_workloads(kube: KubeAdapter) -> None:
    """What an SRE does after reading the demo's readiness report, with cluster-admin rights:
    the ad-hoc bare pod is finished by hand, the host-tuning DaemonSet is retired (Bottlerocket takes
    sysctls from its settings), the image cache moves from /usr (read-only on Bottlerocket) to /var,
    and fraud-scorer's one-off do-not-disrupt hold is lifted."""
    kube.request("DELETE", "/api/v1/namespaces/analytics/pods/adhoc-backfill", what="delete bare pod")
    kube.request(
        "DELETE", "/apis/apps/v1/namespaces/platform-tools/daemonsets/node-tuner", what="delete node-tuner"
    )
    path = "/apis/apps/v1/namespaces/shop/deployments/image-resizer"
    deployment = kube.request("GET", path, what="get image-resizer")
    for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
        host = volume.get("hostPath")
        if host and host["path"].startswith("/usr"):
            host["path"] = "/var/lib/resizer-cache"
    kube.request("PUT", path, body=deployment, content_type="application/json", what="move resizer cache")
    lift_do_not_disrupt(kube)


def lift_do_not_disrupt(kube: KubeAdapter) -> int:
    """Remove karpenter.sh/do-not-disrupt from every pod that carries it (what on-call does when the
    engine reports a held node); returns how many pods it lifted."""
    lifted = 0
    for pod in kube.list_pods():
        annotations = pod["metadata"].get("annotations") or {}
        if annotations.get("karpenter.sh/do-not-disrupt") == "true":
            meta = pod["metadata"]
            kube.request(
                "PATCH",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                body={"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": None}}},
                content_type="application/merge-patch+json",
                what="lift do-not-disrupt",
            )
            lifted += 1
    return lifted
