"""The people of the story — an SRE, a team lead, on-call and the platform team — acting through the
sandbox's Slack (correctly signed requests to the bot's Request URL) and through kubectl-like admin
calls, while the bot keeps dying under them.

What is modelled, and why (Slack's own delivery rules):
- Slack never redelivers a slash command or a button click. When the app does not answer (a dead
  replica: connection refused; a 5xx; no answer in 3 s) the person sees "didn't respond" and tries
  again; when it answered but then died before doing the work, the person sees nothing happen.
  Either way a person re-sends an action only after checking that it did not happen — here by
  reading the database (what `/migrate status` would show) after a patience period; never blindly.
- Events API deliveries are redelivered by Slack itself on timeout (X-Slack-Retry-Num); the story
  does not depend on events, the bot's delivery ledger is covered by the handler tests.
- A kill can land between a person's click and its effect: the scenario's chaos hook runs right after
  every action the people send (`after_action`) and may kill -9 the bot there.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bench.chaos.world import World
from bot.demo import fix_demo_workloads, lift_do_not_disrupt
from bot.domain.waves import WaveState
from bot.plan import load_plan
from sandbox.slack.actors import Delivery
from sandbox.slack.workspace import Message
from storage.models import MigrationStatus
from storage.repositories import WaveView

T = TypeVar("T")
SRE = "U0SRE00001"
TEAM_LEAD = "U0LEAD0001"
ONCALL = "U0ONCALL01"
FLUENT_BIT = {"namespace": "logging", "selector": "app.kubernetes.io/name=fluent-bit"}
BUFFER = "/usr/local/fluent-bit"
PATIENCE = 12.0  # seconds a person waits for an acknowledged action to show before checking and retrying
WAVE_TIMEOUT = 300.0
ENDED_BADLY = {WaveState.FAILED, WaveState.ROLLING_BACK, WaveState.ROLLED_BACK, WaveState.ABORTED}


class StoryFailed(Exception):
    """Something a person waited for never happened: the message says what."""


def until(probe: Callable[[], T | None], what: str, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise StoryFailed(f"waited {timeout:.0f} s for {what}; it did not happen")
        time.sleep(0.1)


def poll(probe: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def action_ids(blocks: list[dict[str, object]] | None) -> set[str]:
    found: set[str] = set()
    for block in blocks or []:
        if block.get("type") == "actions":
            for element in block.get("elements", []) or []:  # type: ignore[attr-defined]
                found.add(str(element.get("action_id")))
    return found


def mentions(message: Message, label: str) -> bool:
    return label.lower() in (message.text + json.dumps(message.blocks or [])).lower()


@dataclass
class People:
    world: World
    after_action: Callable[[], None] = lambda: None
    say: Callable[[str], None] = print
    retries: int = 0  # actions a person sent again after checking they had not happened
    actions: int = 0
    crash_fault: int | None = None
    crash_wave: int | None = None  # the wave whose new nodes the fault breaks
    uncaught: list[str] = field(default_factory=list)  # breakages the canary let through
    handled_alerts: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.slack = self.world.slack
        self.people = self.slack.people()
        self.plan = load_plan(self.world.plan_file)
        self.migration_channel = self.plan.channels.migration
        self.alerts_channel = self.plan.channels.alerts

    # ---- reading the world -----------------------------------------------------------------------

    def wave(self, index: int) -> WaveView:
        return next(w for w in self.world.repos.migrations.waves(self.world.cluster) if w.index == index)

    def waves(self) -> list[WaveView]:
        return list(self.world.repos.migrations.waves(self.world.cluster))

    def retired(self, wave: WaveView) -> bool:
        return any(s.key == "retire" and s.done for s in self.world.repos.journal.journal(wave.id))

    # ---- acting ----------------------------------------------------------------------------------

    def act(
        self,
        who: str,
        what: str,
        send: Callable[[], Delivery],
        happened: Callable[[], bool],
        *,
        timeout: float = 240,
    ) -> None:
        """Send a person's request; if it has not taken effect after a while (and the database says
        so), send it again, as the person would after "didn't respond" or silence."""
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            self.actions += 1
            try:
                status: int | None = send().status
            except (OSError, urllib.error.URLError, http.client.HTTPException):
                status = None  # the Request URL did not answer: Slack shows "didn't respond"
            self.after_action()
            if poll(happened, PATIENCE if status == 200 else 1.5):
                return
            if time.monotonic() > deadline:
                raise StoryFailed(
                    f"{who}: {what} never took effect ({attempt} attempts, last answer {status})"
                )
            self.retries += 1
            self.say(f"  {who} sees no effect of {what} (answer {status or 'none'}): tries again")

    def request_and_approve(self, index: int) -> None:
        sre, lead = self.people[SRE], self.people[TEAM_LEAD]
        label = self.wave(index).label
        self.say(f"alice (SRE) types `/migrate next-wave` for {label}")
        self.act(
            "alice",
            "/migrate next-wave",
            lambda: sre.command("/migrate", "next-wave", channel=self.migration_channel),
            lambda: self.wave(index).state is not WaveState.PLANNED,
        )
        until(lambda: self._request_message(label), f"{label}'s request to be posted in Slack", timeout=120)

        def approve() -> Delivery:
            # The request shown now: a refused approval (the readiness changed under it) renews it.
            request = until(lambda: self._request_message(label), f"{label}'s open request", timeout=120)
            return lead.click(channel=self.migration_channel, ts=request.ts, action_id="wave_request.approve")

        self.say(f"carol (team lead) clicks Approve on {label}")
        self.act(
            "carol",
            f"Approve on {label}",
            approve,
            lambda: self.wave(index).state not in (WaveState.PLANNED, WaveState.REQUESTED),
        )

    def _request_message(self, label: str) -> Message | None:
        for m in self.slack.workspace.channel_messages(self.migration_channel):
            if (
                m.bot_id
                and not m.is_reply
                and "wave_request.approve" in action_ids(m.blocks)
                and mentions(m, label)
            ):
                return m
        return None

    def run_to_completion(self, index: int) -> None:
        """Wait while the engine executes the wave and the canary bakes it, until its AL2 capacity is
        retired; on-call answers whatever pauses it."""
        deadline = time.monotonic() + WAVE_TIMEOUT
        seen: WaveState | None = None
        while True:
            wave = self.wave(index)
            if wave.state is not seen:
                seen = wave.state
                self.say(f"  database: {wave.label} is {wave.state.value}")
            if wave.state is WaveState.COMPLETED and self.retired(wave):
                if self.crash_fault is not None and self.crash_wave == index:
                    self.uncaught.append(
                        f"{wave.label} completed although fluent-bit crash-loops on its Bottlerocket nodes: "
                        "the canary never failed it"
                    )
                    self.say(f"  !! {self.uncaught[-1]}")
                return
            if wave.state is WaveState.CANARY_FAILED:
                self.answer_canary(wave)
            elif wave.state is WaveState.PAUSED:
                self.answer_pause(wave)
            elif wave.state in ENDED_BADLY:
                raise StoryFailed(f"{wave.label} ended {wave.state.value}")
            if time.monotonic() > deadline:
                raise StoryFailed(
                    f"{wave.label} did not complete in {WAVE_TIMEOUT:.0f} s (it is {wave.state.value})"
                )
            time.sleep(0.2)

    def _alert_for(self, wave: WaveView) -> tuple[int, Message]:
        """The open alert episode of the wave and its message in the alerts channel, as on-call finds it."""

        def found() -> tuple[int, Message] | None:
            episode = self.world.repos.canary.open_episode_of(wave.id)
            if episode is None or not episode.message_ts:
                return None
            for m in self.slack.workspace.channel_messages(self.alerts_channel):
                if m.ts == episode.message_ts and "alert.resume" in action_ids(m.blocks):
                    return episode.id, m
            return None

        return until(found, f"the alert on {wave.label} in the alerts channel", timeout=120)

    def answer_pause(self, wave: WaveView) -> None:
        """The engine paused the wave and alerted on-call (a do-not-disrupt hold, or a step failing
        again and again): on-call lifts the hold if that is the cause and resumes from the alert."""
        erin = self.people[ONCALL]
        episode_id, alert = self._alert_for(wave)
        episode = self.world.repos.canary.episode(episode_id)
        self.say(f"  alert in #eks-alerts: {alert.text[:140]}")
        if episode.kind == "held":
            lifted = lift_do_not_disrupt(self.world.admin)
            self.say(f"erin (on-call) checks with the owning team and lifts the hold on {lifted} pod(s)")
        self.say("erin clicks Resume")
        self.act(
            "erin",
            f"Resume on the alert for {wave.label}",
            lambda: erin.click(channel=self.alerts_channel, ts=alert.ts, action_id="alert.resume"),
            lambda: (
                self.wave(wave.index).state is not WaveState.PAUSED
                or self.world.repos.canary.episode(episode_id).resolved_at is not None
            ),
        )

    def answer_canary(self, wave: WaveView) -> None:
        """The canary failed: the migration is paused, on-call is alerted and paged; they acknowledge,
        the platform team fixes the cause, the checks pass again, on-call resumes."""
        erin = self.people[ONCALL]
        episode_id, alert = self._alert_for(wave)
        self.say(f"  alert in #eks-alerts: {alert.text[:140]}")
        self.say("erin (on-call) clicks Acknowledge")
        self.act(
            "erin",
            f"Acknowledge on the alert for {wave.label}",
            lambda: erin.click(channel=self.alerts_channel, ts=alert.ts, action_id="alert.acknowledge"),
            lambda: self.world.repos.canary.episode(episode_id).acknowledged_by is not None,
        )
        if self.crash_fault is not None:
            self.say("the platform team moves fluent-bit's buffer to /var/fluent-bit and restarts it")
            self.world.sandbox_admin("POST", "/faults", {"clear": self.crash_fault})
            self.crash_fault = None
            self._restart_fluent_bit()
            until(self._fluent_bit_ready, "fluent-bit to be Ready everywhere", timeout=120)
            until(
                lambda: self.world.repos.canary.episode(episode_id).resolved_at is not None,
                "the canary to pass again and resolve the alert",
                timeout=120,
            )
            self.say("  the canary passes again: the alert resolves itself; erin types `/migrate resume`")
            self.act(
                "erin",
                "/migrate resume",
                lambda: erin.command("/migrate", "resume", channel=self.alerts_channel),
                lambda: self.wave(wave.index).state is not WaveState.CANARY_FAILED,
            )
        else:
            self.say("erin clicks Resume")
            self.act(
                "erin",
                f"Resume on the alert for {wave.label}",
                lambda: erin.click(channel=self.alerts_channel, ts=alert.ts, action_id="alert.resume"),
                lambda: self.wave(wave.index).state is not WaveState.CANARY_FAILED,
            )

    # ---- the platform team -------------------------------------------------------------------------

    def fix_readiness(self) -> None:
        self.say("an SRE fixes what blocks Bottlerocket (the demo's readiness fixes)")
        fix_demo_workloads(self.world.admin)

    def break_logging_on_bottlerocket(self) -> None:
        self.say(
            "the platform team ships a fluent-bit config that buffers under /usr (read-only on Bottlerocket)"
        )
        added = self.world.sandbox_admin(
            "POST", "/faults", {"crash_on_bottlerocket": {**FLUENT_BIT, "path": BUFFER}}
        )
        self.crash_fault = int(added["added"]["crash_on_bottlerocket"])
        self.crash_wave = 2

    def _fluent_bit_pods(self) -> list[dict[str, object]]:
        return [
            p
            for p in self.world.admin.list_pods(namespace="logging")
            if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "fluent-bit"
        ]

    def _restart_fluent_bit(self) -> None:
        for pod in self._fluent_bit_pods():
            name = pod["metadata"]["name"]  # type: ignore[index]
            self.world.admin.request(
                "DELETE", f"/api/v1/namespaces/logging/pods/{name}", what="restart fluent-bit"
            )

    def _fluent_bit_ready(self) -> bool:
        pods = [p for p in self._fluent_bit_pods() if not p["metadata"].get("deletionTimestamp")]  # type: ignore[attr-defined]
        return bool(pods) and all(
            any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p.get("status", {}).get("conditions", [])  # type: ignore[attr-defined]
            )
            for p in pods
        )

    # ---- the whole story ---------------------------------------------------------------------------

    def migrate(self) -> int:
        """Every wave requested, approved, executed, baked and retired; returns waves completed."""
        self.fix_readiness()
        completed = 0
        for wave in self.waves():
            if wave.index == 2:
                self.break_logging_on_bottlerocket()
            self.request_and_approve(wave.index)
            self.run_to_completion(wave.index)
            completed += 1
            self.say(f"{wave.label} completed and its AL2 capacity retired")
        migration = self.world.repos.migrations.get(self.world.cluster)
        if migration is None or migration.status is not MigrationStatus.ACTIVE:
            raise StoryFailed(f"the migration ended {migration.status.value if migration else 'missing'}")
        return completed
