"""A wave's progress and results show in its request's thread; requests nobody decides expire; App Home.

The engine is another issue's: these tests publish its events on an EventBus from a thread of their
own, as the engine's workers will, and read what people see through conversations.replies.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

from bot_world import CLUSTER, EXAMPLE_PLAN, MIGRATION, PEOPLE, World, buttons, eventually, open_world
from slack_sdk import WebClient

from bot.domain.waves import Trigger
from bot.engine.events import EventBus, StepFailed, WaveFinished, WavePaused, WaveProgress, WaveRef


def _requested(world: World) -> tuple[WaveRef, str]:
    world.people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    world.wait_for_ephemeral("alice")
    [request] = world.requests()
    wave = world.bot.repositories.migrations.waves(CLUSTER)[0]
    return WaveRef(CLUSTER, wave.id, wave.index, wave.name), str(request["ts"])


def _replies(world: World, ts: str) -> list[dict[str, Any]]:
    client = WebClient(token=world.slack.bot_token, base_url=world.slack.api_url)
    messages = client.conversations_replies(channel=MIGRATION, ts=ts)["messages"]
    assert isinstance(messages, list)
    return messages[1:]  # the parent first, as Slack answers


def _at_least(count: int, messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return messages if len(messages) >= count else None


def _progress(wave: WaveRef, drained: int, *, total: int = 30) -> WaveProgress:
    return WaveProgress(
        wave=wave,
        phase="draining",
        nodes_total=total,
        nodes_cordoned=min(total, drained + 1),
        nodes_drained=drained,
        pods_total=3 * total,
        pods_evicted=3 * drained,
        pods_ready=3 * drained - 1 if drained else 0,
        new_nodes_ready=drained,
        al2_nodes_left=total - drained,
        held=("pod payments/fraud-scorer-0: karpenter.sh/do-not-disrupt",),
    )


def _publish_from_engine_thread(bus: EventBus, events: list[Any]) -> float:
    """Publish on another thread, as the engine does; returns the longest single publish (seconds)."""
    longest = [0.0]

    def engine() -> None:
        for event in events:
            started = dt.datetime.now(dt.UTC)
            bus.publish(event)
            longest[0] = max(longest[0], (dt.datetime.now(dt.UTC) - started).total_seconds())

    worker = threading.Thread(target=engine, name="engine")
    worker.start()
    worker.join(timeout=10)
    return longest[0]


def test_progress_is_one_message_in_the_request_thread_edited_in_place_then_results_and_a_channel_line(
    world: World,
) -> None:
    wave, request_ts = _requested(world)
    bus = EventBus()
    world.bot.upkeep.notifier.attach(bus)  # type: ignore[union-attr]
    finished = WaveFinished(
        wave, "baking", "30 nodes moved to Bottlerocket, 90 pods rescheduled, 0 PDB violations"
    )

    longest = _publish_from_engine_thread(bus, [_progress(wave, drained) for drained in range(16)])
    first = eventually(lambda: _replies(world, request_ts), timeout=15)
    longest = max(longest, _publish_from_engine_thread(bus, [_progress(wave, d) for d in range(16, 31)]))

    # The last state gets through without another event to carry it (throttled, not dropped).
    eventually(lambda: "*30/30 nodes* drained" in str(_replies(world, request_ts)), timeout=15)
    _publish_from_engine_thread(bus, [finished])

    assert longest < 0.05  # the publisher never waits for Slack or the database
    replies = eventually(lambda: _at_least(2, _replies(world, request_ts)), timeout=15)
    progress = [m for m in replies if "nodes* drained" in str(m.get("blocks"))]
    results = [m for m in replies if "Results" in str(m.get("blocks"))]
    assert len(progress) == 1 and len(results) == 1, [m.get("text") for m in replies]
    assert progress[0]["ts"] == first[0]["ts"] and progress[0].get("edited")  # one message, in place
    assert "100%" in str(progress[0]["blocks"]) and "fraud-scorer-0" in str(progress[0]["blocks"])
    assert "90 pods rescheduled" in str(results[0]["blocks"])
    # Throttled: a handful of writes for 31 progress events (at most ~1 a second per wave).
    writes = world.slack.calls_to("chat.update") + [
        c for c in world.slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == request_ts
    ]
    assert len(writes) <= 5, len(writes)
    [summary] = eventually(
        lambda: [m for m in world.history() if "of sandbox-demo: *baking*" in str(m.get("text"))], timeout=10
    )
    assert not summary.get("thread_ts") and "details in the thread" in summary["text"]


def test_pauses_and_failed_steps_are_replies_in_the_thread(world: World) -> None:
    wave, request_ts = _requested(world)
    bus = EventBus()
    world.bot.upkeep.notifier.attach(bus)  # type: ignore[union-attr]
    _publish_from_engine_thread(
        bus,
        [
            StepFailed(wave, "drain", "node ip-10-0-1-5", "eviction blocked by PDB shop/web", 3, True),
            WavePaused(wave, "paused by U0SRE00001"),
        ],
    )
    replies = eventually(lambda: _at_least(2, _replies(world, request_ts)), timeout=15)
    texts = [str(m.get("text")) for m in replies]
    assert any("step drain on node ip-10-0-1-5 failed (attempt 3)" in t for t in texts)
    assert any("paused: paused by U0SRE00001" in t and "/migrate resume" in t for t in texts)


def test_a_progress_update_slack_refused_is_kept_and_shown_once_slack_answers_again(world: World) -> None:
    wave, request_ts = _requested(world)
    bus = EventBus()
    notifier = world.bot.upkeep.notifier  # type: ignore[union-attr]
    notifier.attach(bus)
    world.slack.fail("chat.postMessage", times=None, status=500)
    _publish_from_engine_thread(bus, [_progress(wave, 7)])
    slack = world.bot.repositories.slack
    [pending] = eventually(lambda: [m for m in slack.undelivered() if m.last_error], timeout=15)
    assert pending.kind == "progress" and "7/30" in pending.text
    assert _replies(world, request_ts) == []

    world.slack.clear_faults()

    [shown] = eventually(lambda: _replies(world, request_ts), timeout=20)
    assert "*7/30 nodes* drained" in str(shown["blocks"])
    assert eventually(lambda: slack.undelivered() == [] or None, timeout=10) is True


def test_a_request_nobody_decides_expires_its_message_says_so_and_its_buttons_are_refused(
    tmp_path: Path,
) -> None:
    text = EXAMPLE_PLAN.read_text().replace("expires_after: 30m", "expires_after: 2s")
    with open_world(tmp_path, plan_text=text) as world:
        world.people["alice"].command("/migrate", "next-wave", channel="eks-migration")
        world.wait_for_ephemeral("alice")
        [request] = world.requests()
        assert buttons(request)
        late_click = world.people["carol"].build_click(
            channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve"
        )

        expired = eventually(
            lambda: next((m for m in world.history() if m["ts"] == request["ts"] and not buttons(m)), None),
            timeout=15,
        )

        assert "ask again with `/migrate next-wave`" in str(expired["blocks"])
        assert world.waves()["stateless-web"] == "expired"
        assert world.bot.metrics.value("migratebot_requests_expired_total") == 1
        world.people.send(late_click)  # a click from a screen that still showed the buttons
        assert "expired" in world.wait_for_ephemeral("carol")[-1]
        assert world.waves()["stateless-web"] == "expired"
        assert world.bot.repositories.approvals.approvals(1) == []


def test_app_home_shows_each_clusters_waves_al2_nodes_left_and_the_last_canary(world: World) -> None:
    wave, _ = _requested(world)
    bus = EventBus()
    world.bot.upkeep.notifier.attach(bus)  # type: ignore[union-attr]
    _publish_from_engine_thread(bus, [_progress(wave, 12)])
    eventually(lambda: world.bot.repositories.slack.latest_facts(CLUSTER), timeout=10)

    opened = {"type": "app_home_opened", "user": PEOPLE["erin"], "channel": "D0ERIN0001", "tab": "home"}
    [delivery] = world.people.deliver_event(world.people.build_event(opened))
    assert delivery.acked_in_time

    home = eventually(lambda: world.slack.workspace.home_view(PEOPLE["erin"]), timeout=10)
    shown = str(home["blocks"])
    assert "sandbox-demo" in shown and "stateless-web" in shown and "requested" in shown
    assert "*AL2 nodes left:* 18 (from wave 1 (stateless-web)'s progress" in shown
    assert "*Last canary:* none yet" in shown

    # The wave bakes and the canary's first run fails a check: the next look at the Home says so.
    canary = world.bot.repositories.canary
    bake = canary.start_bake(
        wave.wave_id, interval=dt.timedelta(minutes=1), until=dt.datetime(2099, 1, 1, 12, 30, tzinfo=dt.UTC)
    )
    run = canary.claim_run(wave.wave_id, bake.analysis, "tick-0", runner="test")
    assert run is not None
    checks = [{"check": "pods_ready", "verdict": "pass"}, {"check": "crash_loops", "verdict": "fail"}]
    canary.finish_run(run.id, "fail", {"checks": checks})
    canary.open_episode(
        wave.wave_id, kind="canary", summary="fluent-bit crash-loops on 2 nodes", details={}, actor="canary"
    )
    world.people.deliver_event(world.people.build_event(opened))

    def redrawn() -> str | None:
        view = str(world.slack.workspace.home_view(PEOPLE["erin"]))
        return view if "Last canary:* wave 1" in view else None

    shown = eventually(redrawn, timeout=10)
    assert "*Last canary:* wave 1 (stateless-web): fail (crash_loops) at " in shown, shown
    assert "baking until 12:30 UTC" in shown and "alert open: fluent-bit crash-loops on 2 nodes" in shown


def test_a_request_slack_refused_to_post_is_posted_once_slack_answers_and_can_be_approved(
    world: World,
) -> None:
    world.slack.fail("chat.postMessage", times=None, status=500)
    world.people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    answer = world.wait_for_ephemeral("alice")[-1]
    assert "Slack refused the request message" in answer and "posted in <#C0MIGRATION>" in answer
    assert world.requests() == []

    world.slack.clear_faults()

    request = eventually(lambda: next((m for m in world.requests() if buttons(m)), None), timeout=20)
    world.people["carol"].click(channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve")
    assert "you approved wave 1" in world.wait_for_ephemeral("carol")[-1].lower()
    assert world.waves()["stateless-web"] == "approved"


def test_a_refused_request_message_is_never_posted_once_the_request_was_aborted(world: World) -> None:
    world.slack.fail("chat.postMessage", times=None, status=500)
    world.people["alice"].command("/migrate", "next-wave", channel="eks-migration")
    world.wait_for_ephemeral("alice")
    world.people["alice"].command("/migrate", "abort", channel="eks-migration")
    assert "aborted" in world.wait_for_ephemeral("alice", 2)[-1]
    world.slack.clear_faults()

    slack = world.bot.repositories.slack
    eventually(lambda: slack.undelivered() == [] or None, timeout=20)
    assert world.requests() == []
    gave_up = slack.latest(1, "request")
    assert gave_up is not None and gave_up.ts is None and "given up" in str(gave_up.last_error)


def test_the_request_message_follows_its_wave_through_execution_to_completion(world: World) -> None:
    wave, request_ts = _requested(world)
    world.people["carol"].click(channel=MIGRATION, ts=request_ts, action_id="wave_request.approve")
    assert "you approved wave 1" in world.wait_for_ephemeral("carol")[-1].lower()
    bus = EventBus()
    world.bot.upkeep.notifier.attach(bus)  # type: ignore[union-attr]
    repos = world.bot.repositories

    def fire(trigger: Trigger) -> None:
        now = repos.migrations.wave(wave.wave_id)
        repos.migrations.transition(now.id, trigger, actor="engine", expected_version=now.version)

    def header() -> str:
        [request] = [m for m in world.history() if m["ts"] == request_ts]
        return str(request["blocks"][0]["text"]["text"])

    assert header() == "Wave 1 (stateless-web) approved"
    # The engine starts the wave: the notifier's next round redraws the request (no event needed).
    fire(Trigger.START)
    eventually(lambda: header() == "Wave 1 (stateless-web) executing", timeout=15)
    fire(Trigger.VERIFY)
    fire(Trigger.BAKE)
    _publish_from_engine_thread(bus, [WaveFinished(wave, "baking", "30 nodes moved")])
    eventually(lambda: header() == "Wave 1 (stateless-web) baking", timeout=5)
    fire(Trigger.COMPLETE)
    eventually(lambda: header() == "Wave 1 (stateless-web) completed", timeout=15)
    [request] = [m for m in world.history() if m["ts"] == request_ts]
    shown = str(request["blocks"])
    assert "Approved* by <@U0LEAD0001>" in shown and "The wave is now *completed*" in shown, shown
    assert buttons(request) == {}

    # Drawn once per state: a round with nothing new (the same event again) writes nothing.
    def redraws() -> int:
        return sum(1 for c in world.slack.calls_to("chat.update") if c.params.get("ts") == request_ts)

    drawn = redraws()
    _publish_from_engine_thread(bus, [WaveFinished(wave, "baking", "30 nodes moved")])
    eventually(lambda: world.bot.upkeep.notifier.idle, timeout=5)  # type: ignore[union-attr]
    assert redraws() == drawn


def test_a_denial_slack_refused_to_show_is_shown_once_slack_answers_again(world: World) -> None:
    _, request_ts = _requested(world)
    world.slack.fail("chat.update", times=None, status=500)
    world.people["dave"].click(channel=MIGRATION, ts=request_ts, action_id="wave_request.deny")
    assert "you denied wave 1" in world.wait_for_ephemeral("dave")[-1].lower()
    assert world.waves()["stateless-web"] == "denied"

    def request() -> dict[str, Any]:
        return next(m for m in world.history() if m["ts"] == request_ts)

    assert buttons(request())  # Slack still shows the buttons of a request that is decided
    world.slack.clear_faults()
    shown = eventually(lambda: request() if not buttons(request()) else None, timeout=15)
    assert "Denied* by <@U0LEAD0002>" in str(shown["blocks"])
