"""The Slack story `migratebot demo` plays, in-process: the sandbox (Kubernetes, AWS, Slack) and the
bot's own ASGI app under uvicorn (as `migratebot serve` runs it), people sending signed requests.

A composition root like bot/app.py: it may import the sandbox and the bot's Slack surface, which
bot/services may not (see the import contracts). bot/services/demo.py calls it through `Story`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
from pydantic import SecretStr
from rich.console import Console

from bot.adapters.kube import KubeAdapter
from bot.app import MigrateBot, build_bot
from bot.domain.errors import DomainError
from bot.engine.events import Event, WaveProgress
from bot.engine.inventory import Inventory
from bot.engine.pods import OsFamily
from bot.services.demo import StoryOutcome
from bot.settings import Settings
from bot.views.console import engine_event_line
from sandbox.main import Sandbox
from sandbox.pagerduty import PagerDutyReceiver
from sandbox.slack import SlackEmulator, Workspace
from sandbox.slack.workspace import Message
from storage.repositories import WaveView

JSON = dict[str, Any]

T = TypeVar("T")
STEP_TIMEOUT = 15.0
SRE = "U0SRE00001"
TEAM_LEAD = "U0LEAD0001"
# An SRE examples/plan.yaml does not map to a Kubernetes identity: the engine makes the changes of a
# wave he requests as the team lead who approves it.
UNMAPPED_SRE = "U0SRE00002"


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


@dataclass
class DemoStack:
    """Everything the story runs on: the sandbox, PagerDuty's emulation, and `migratebot serve`'s app
    (engine and canary included) under uvicorn, configured the way an operator configures it."""

    sandbox: Sandbox
    pagerduty: PagerDutyReceiver
    server: BotServer
    slack: SlackEmulator
    admin: KubeAdapter  # cluster-admin: what the SREs and the platform team use by hand
    cluster: str

    @property
    def bot(self) -> MigrateBot:
        return self.server.bot

    def sandbox_admin(self, method: str, path: str, body: JSON | None = None) -> JSON:
        """The sandbox's admin API (faults, ground truth): what the demo's "platform team" does."""
        answer: JSON = self.sandbox.admin_request(method, path, body, timeout=10)
        return answer


@contextlib.contextmanager
def demo_stack(
    settings: Settings,
    plan_file: Path,
    console: Console,
    *,
    prepare: Callable[[Sandbox], None] | None = None,
    executor: bool = True,
) -> Iterator[DemoStack]:
    """Sandbox, PagerDuty and the bot, the bot reaching them through its ordinary configuration:
    KUBECONFIG (a kubeconfig whose context for the plan's cluster carries the bot's service-account
    token), AWS_ENDPOINT_URL and credentials (boto3's own chain), MIGRATEBOT_SLACK_API_URL, Slack's
    token and secret, MIGRATEBOT_PAGERDUTY_URL. Emulated time runs 20x: Karpenter's ~55 s to a Ready
    node takes under 3 real seconds. `prepare(sandbox)` runs before the bot starts (the chart's RBAC
    in place of the sandbox's cluster-admin grant, in tests/deploy)."""
    started = time.monotonic()
    with Sandbox("demo", time_scale=20.0) as sandbox, PagerDutyReceiver() as pagerduty:
        if prepare is not None:
            prepare(sandbox)
        info = sandbox.info()
        slack_info = info["slack"]
        slack = sandbox.slack
        assert slack is not None
        cluster = str(info["cluster"]["name"])
        console.print(
            f"sandbox 'demo' up in {time.monotonic() - started:.1f} s: cluster {cluster}, "
            f"{info['nodes']} nodes, {info['pods']} pods; Slack {slack.api_url}; PagerDuty {pagerduty.url}",
            markup=False,
        )
        # As the bot's kubeconfig would be on an operator's machine: the plan's context, the bot's own
        # service-account token.
        kubeconfig = sandbox.write_bot_kubeconfig(
            (settings.data_dir / "demo-kubeconfig").resolve(), sandbox.bot_kube_token
        )
        environment = {**info["aws"]["env"], "KUBECONFIG": str(kubeconfig)}
        bot_settings = settings.model_copy(
            update={
                "slack_api_url": str(slack_info["apiUrl"]),
                "slack_bot_token": SecretStr(str(slack_info["botToken"])),
                "slack_signing_secret": SecretStr(str(slack_info["signingSecret"])),
                "slack_app_token": None,
                "plan": plan_file,
                "executor": executor,
                "pagerduty_routing_key": SecretStr(pagerduty.routing_key),
                "pagerduty_url": pagerduty.url,
                "engine_poll_interval": 0.2,
                "engine_retry_interval": 0.25,
            }
        )
        admin = KubeAdapter.from_kubeconfig(str(sandbox.kubeconfig), sandbox.context)
        try:
            with _environment(environment), BotServer(build_bot(bot_settings, plan_file)) as server:
                slack.request_url = f"{server.base}/slack/events"
                runs = (
                    f"engine and canary on the replica holding Lease "
                    f"{bot_settings.lease_namespace}/{bot_settings.lease_name}"
                    if executor
                    else "Slack only (MIGRATEBOT_EXECUTOR=off)"
                )
                console.print(f"migratebot serve: {slack.request_url}; {runs}", markup=False)
                yield DemoStack(sandbox, pagerduty, server, slack, admin, cluster)
        finally:
            admin.close()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Story:
    """The people of the demo acting through Slack, and what they see; the console shows it live."""

    def __init__(self, stack: DemoStack, console: Console) -> None:
        self.stack = stack
        self.console = console
        self.slack = stack.slack
        self.people = stack.slack.people()
        self.plan = stack.bot.plans.latest()
        self.migration_channel = self.plan.channels.migration
        self.alerts_channel = self.plan.channels.alerts
        self._shown: list[str] = []
        self._progress: tuple[int, str, int, int] | None = None
        self._handled: set[str] = set()  # alerts on-call has answered
        self._seen_ephemerals: dict[tuple[str, str], int] = {}
        self._states: dict[int, str] = {}
        operations = stack.bot.operations
        assert operations is not None, "the demo runs serve's engine and canary"
        operations.bus.subscribe(self._show_event)

    def say(self, text: str) -> None:
        self.console.print(text, markup=False)

    def _show_event(self, event: Event) -> None:
        line = engine_event_line(event)
        if isinstance(event, WaveProgress):
            # One line per phase and per node drained or brought up, not one per eviction.
            key = (event.wave.index, event.phase, event.nodes_drained, event.new_nodes_ready)
            if key == self._progress:
                return
            self._progress = key
        self._shown.append(line)
        self.say(f"  engine: {line}")

    # ---- reading the world -----------------------------------------------------------------------

    def wave(self, index: int) -> WaveView:
        return next(
            w for w in self.stack.bot.repositories.migrations.waves(self.stack.cluster) if w.index == index
        )

    def answer(self, user: str, channel: str, what: str) -> str:
        """The user's next ephemeral answer in `channel`."""
        key = (channel, user)
        count = self._seen_ephemerals.get(key, 0) + 1
        text = _ephemeral(self.slack, channel, user, count, what)
        self._seen_ephemerals[key] = count
        return text

    def _watch_state(self, index: int) -> str:
        wave = self.wave(index)
        if self._states.get(index) != wave.state.value:
            self._states[index] = wave.state.value
            self.say(f"  database: {wave.label} is {wave.state.value}")
        return wave.state.value

    # ---- the acts -------------------------------------------------------------------------------

    def request_and_approve(
        self, index: int, *, requester: str = SRE, approver: str = TEAM_LEAD, try_self_approval: bool = False
    ) -> None:
        sre, lead = self.people[requester], self.people[approver]
        channel = self.migration_channel
        name = self.slack.workspace.channel(channel).name
        self.say(f"{sre.name} ({requester}, SRE) types `/migrate next-wave` in #{name}")
        before = {m.ts for m in self.slack.workspace.channel_messages(channel)}
        sre.command("/migrate", "next-wave", channel=channel)
        self.say(
            f"  → {sre.name} sees: {self.answer(requester, channel, 'the answer to /migrate next-wave')}"
        )
        _until(lambda: self._watch_state(index) == "requested", f"wave {index} to be requested")
        request_ts = _until(
            lambda: next(
                (
                    m.ts
                    for m in self.slack.workspace.channel_messages(channel)
                    if m.bot_id and m.blocks and m.ts not in before and not m.is_reply
                ),
                None,
            ),
            f"wave {index}'s request to be posted in #{name}",
        )
        if try_self_approval:
            self.say(f"{sre.name} clicks Approve on her own request")
            sre.click(channel=channel, ts=request_ts, action_id="wave_request.approve")
            refused = self.answer(requester, channel, "the answer to her approval")
            self.say(f"  → refused, {sre.name} sees: {refused}")
        # The lead approves what the request shows: its readiness, read after it was posted (the
        # approval is checked against that reading).
        verdict = _until(
            lambda: next(
                (
                    m.text
                    for m in self.slack.workspace.thread(channel, request_ts)
                    if m.text.startswith("Readiness of")
                ),
                None,
            ),
            f"wave {index}'s readiness to be posted in its request's thread",
            timeout=60.0,  # the reports read the cluster and AWS; on a loaded machine that takes a while
        )
        self.say(f"{lead.name} ({approver}, team lead) reads the thread — {verdict} — and clicks Approve")
        lead.click(channel=channel, ts=request_ts, action_id="wave_request.approve")
        self.say(f"  → {lead.name} sees: {self.answer(approver, channel, 'the answer to the approval')}")
        acting = self.plan.impersonation
        if acting and requester not in acting and approver in acting:
            self.say(
                f"  {sre.name} has no Kubernetes identity in the plan's `impersonation:`: the engine makes "
                f"the changes of {self.wave(index).label} as {acting[approver].user}, the approving team lead"
            )

    def run_to_completion(self, index: int, *, on_canary_failure: Callable[[], None] | None = None) -> None:
        """Wait while the engine executes the wave and the canary bakes it, until its AL2 capacity is
        retired; on-call answers the engine's do-not-disrupt hold and, once, a failed canary."""
        deadline = time.monotonic() + WAVE_TIMEOUT
        while True:
            state = self._watch_state(index)
            if state == "completed" and self._retired(index):
                return
            if state == "canary_failed" and on_canary_failure is not None:
                on_canary_failure()
                on_canary_failure = None
            elif state == "paused":
                self.on_call_lifts_the_hold()
            elif state in ("rolled_back", "aborted", "canary_failed"):
                raise DemoFailed(f"demo: {self.wave(index).label} ended {state}")
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"demo: wave {index} did not complete in {WAVE_TIMEOUT:.0f} s (it is {state})"
                )
            time.sleep(0.1)

    def _retired(self, index: int) -> bool:
        wave = self.wave(index)
        return any(
            step.key == "retire" and step.done
            for step in self.stack.bot.repositories.journal.journal(wave.id)
        )

    def _open_alert(self, what: str) -> Message:
        """The newest alert in the alerts channel that still has its buttons and nobody handled."""

        def found() -> Message | None:
            for m in reversed(self.slack.workspace.channel_messages(self.alerts_channel)):
                if m.bot_id and "alert.resume" in _action_ids(m.blocks) and m.ts not in self._handled:
                    return m
            return None

        alert = _until(found, what)
        self._handled.add(alert.ts)
        self.say(f"  alert in #{self.slack.workspace.channel(self.alerts_channel).name}: {alert.text}")
        return alert

    def on_call_lifts_the_hold(self) -> None:
        """The engine held a node for a do-not-disrupt pod: it paused the wave and alerted on-call, who
        checks with the owning team, lifts the one-off hold and resumes from the alert."""
        erin = self.people[ONCALL]
        alert = self._open_alert("the engine's hold alert in the alerts channel")
        lifted = lift_do_not_disrupt(self.stack.admin)
        self.say(f"{erin.name} (on-call) checks with the owning team and lifts the hold on {lifted} pod(s)")
        self.say(f"{erin.name} clicks Resume")
        erin.click(channel=self.alerts_channel, ts=alert.ts, action_id="alert.resume")
        self.say(f"  → {erin.name} sees: {self.answer(ONCALL, self.alerts_channel, 'the answer to Resume')}")

    def break_logging_on_bottlerocket(self) -> None:
        self.say(
            "The platform team ships a fluent-bit config that buffers under /usr/local/fluent-bit — "
            "read-only on Bottlerocket (a sandbox fault makes fluent-bit crash-loop there)"
        )
        self.stack.sandbox_admin("POST", "/faults", {"crash_on_bottlerocket": {**FLUENT_BIT, "path": BUFFER}})

    def on_call_answers_the_canary(self) -> None:
        """The canary failed: the migration is paused and on-call is alerted in Slack and paged."""
        erin = self.people[ONCALL]
        bot = self.stack.bot
        migration = bot.repositories.migrations.get(self.stack.cluster)
        self.say(
            f"  database: migration {self.stack.cluster} is {migration.status.value if migration else '?'}"
        )
        alert = self._open_alert("the canary alert in the alerts channel")
        incident = _until(
            lambda: next(iter(self.stack.pagerduty.incidents.values()), None), "the PagerDuty page"
        )
        self.say(f"  PagerDuty: incident {incident.status} — {incident.summary}")
        self.say(f"{erin.name} ({ONCALL}, on-call) clicks Acknowledge")
        erin.click(channel=self.alerts_channel, ts=alert.ts, action_id="alert.acknowledge")
        self.say(f"  → {erin.name} sees: {self.answer(ONCALL, self.alerts_channel, 'the acknowledgement')}")
        _until(lambda: incident.status == "acknowledged", "the page to be acknowledged in PagerDuty")
        self.say(f"  PagerDuty: incident {incident.status}")
        self.say("The platform team moves fluent-bit's buffer to /var/fluent-bit and restarts it")
        self.stack.sandbox_admin("DELETE", "/faults")
        _restart_fluent_bit(self.stack.admin)
        _until(lambda: _fluent_bit_ready(self.stack.admin), "fluent-bit to be Ready everywhere", timeout=60)

        def resolved() -> Message | None:
            for m in self.slack.workspace.channel_messages(self.alerts_channel):
                if m.ts == alert.ts and "Resolved" in json.dumps(m.blocks):
                    return m
            return None

        _until(resolved, "the canary to pass again and resolve the alert", timeout=60)
        self.say("  the canary's checks pass again: the alert resolves itself; the wave waits for a person")
        alerts = self.slack.workspace.channel(self.alerts_channel).name
        self.say(f"{erin.name} types `/migrate resume` in #{alerts}")
        erin.command("/migrate", "resume", channel=self.alerts_channel)
        resumed = self.answer(ONCALL, self.alerts_channel, "the answer to /migrate resume")
        self.say(f"  → {erin.name} sees: {resumed}")


FLUENT_BIT = {"namespace": "logging", "selector": "app.kubernetes.io/name=fluent-bit"}
BUFFER = "/usr/local/fluent-bit"
ONCALL = "U0ONCALL01"
WAVE_TIMEOUT = 120.0


def _action_ids(blocks: list[JSON] | None) -> set[str]:
    return {
        str(element.get("action_id"))
        for block in blocks or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    }


def _fluent_bit_pods(kube: KubeAdapter) -> list[JSON]:
    return [
        p
        for p in kube.list_pods(namespace="logging")
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "fluent-bit"
    ]


def _restart_fluent_bit(kube: KubeAdapter) -> None:
    for pod in _fluent_bit_pods(kube):
        kube.request("DELETE", f"/api/v1/namespaces/logging/pods/{pod['metadata']['name']}", what="restart")


def _fluent_bit_ready(kube: KubeAdapter) -> bool:
    pods = _fluent_bit_pods(kube)
    return bool(pods) and all(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
    )


def play_slack_story(
    settings: Settings,
    plan_file: Path,
    console: Console,
    *,
    prepare: Callable[[Sandbox], None] | None = None,
    inspect: Callable[[DemoStack], None] | None = None,
    waves: int | None = None,
) -> StoryOutcome:
    """The whole migration through Slack: readiness fixes; each wave requested by an SRE, approved by a
    team lead (the requester's own approval refused; wave 3's requester has no Kubernetes identity in
    the plan, so the engine acts as the approving lead), executed with live progress, baked by the
    canary; one canary failure pauses the migration and pages on-call, who acknowledges and resumes.
    `prepare(sandbox)` runs before the bot starts, `inspect(stack)` after the story, before anything
    stops (tests read the sandbox's request log there). `waves` stops after that many waves."""
    console.rule("sandbox")
    with demo_stack(settings, plan_file, console, prepare=prepare) as stack:
        story = Story(stack, console)
        bot = stack.bot
        console.rule("readiness")
        story.say(
            "An SRE reads the readiness report and fixes what blocks Bottlerocket: the ad-hoc bare pod "
            "analytics/adhoc-backfill is finished, the host-tuning DaemonSet platform-tools/node-tuner "
            "retired (Bottlerocket sets sysctls in its settings), shop/image-resizer's cache moved "
            "from /usr (read-only on Bottlerocket) to /var/lib, fraud-scorer's do-not-disrupt lifted."
        )
        fix_demo_workloads(stack.admin)
        planned = bot.repositories.migrations.waves(stack.cluster)
        played = planned[:waves] if waves is not None else planned
        completed = 0
        for wave in played:
            console.rule(f"{wave.label}")
            if wave.index == 2:
                story.break_logging_on_bottlerocket()
            # Wave 3 is requested by an SRE the plan does not map: the engine acts as its approver.
            story.request_and_approve(
                wave.index,
                requester=UNMAPPED_SRE if wave.index == 3 else SRE,
                try_self_approval=wave.index == 1,
            )
            story.run_to_completion(
                wave.index, on_canary_failure=story.on_call_answers_the_canary if wave.index == 2 else None
            )
            completed += 1
        _until(lambda: bot.upkeep is None or bot.upkeep.notifier.idle, "the progress posts to be sent")
        _until(lambda: not bot.background.pending, "the bot's answers to be sent")
        first = story.wave(1)
        approvers = tuple(
            a.user_id for a in bot.repositories.approvals.approvals(first.id) if a.decision.value == "approve"
        )
        for channel in (story.migration_channel, story.alerts_channel):
            console.rule(f"#{stack.slack.workspace.channel(channel).name} transcript")
            console.print(stack.slack.transcript(channel), markup=False, end="")
        kube = KubeAdapter.from_kubeconfig(str(stack.sandbox.kubeconfig), stack.sandbox.bot_context)
        try:
            al2 = len(Inventory.build(kube).nodes_of(OsFamily.AL2))
        finally:
            kube.close()
        last = story.wave(len(played))
        if inspect is not None:
            inspect(stack)
    return StoryOutcome(
        wave=first.label, state=first.state.value, approved_by=approvers, al2_nodes=al2,
        completed=completed, last_state=last.state.value,
    )  # fmt: skip


def fix_demo_workloads(kube: KubeAdapter) -> None:
    """What an SRE does after reading the demo's readiness report, with cluster-admin rights:
    the ad-hoc bare pod is finished by hand, the host-tuning DaemonSet is retired (Bottlerocket takes
    sysctls from its settings), the image cache moves from /usr (read-only on Bottlerocket) to /var,
    and fraud-scorer's one-off do-not-disrupt hold is lifted."""
    kube.request("DELETE", "/api/v1/namespaces/analytics/pods/adhoc-backfill", what="delete bare pod")
    kube.request(
        "DELETE", "/apis/apps/v1/namespaces/platform-tools/daemonsets/node-tuner", what="delete node-tuner"
    )
    move_resizer_cache(kube)
    lift_do_not_disrupt(kube)


def move_resizer_cache(kube: KubeAdapter) -> None:
    """shop/image-resizer keeps its cache in a hostPath under /usr, read-only on Bottlerocket: move it
    to /var/lib (writable there), as the readiness report says."""
    path = "/apis/apps/v1/namespaces/shop/deployments/image-resizer"
    deployment = kube.request("GET", path, what="get image-resizer")
    for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
        host = volume.get("hostPath")
        if host and host["path"].startswith("/usr"):
            host["path"] = "/var/lib/resizer-cache"
    kube.request("PUT", path, body=deployment, content_type="application/json", what="move resizer cache")


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
