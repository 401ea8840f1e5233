"""/metrics as Prometheus scrapes it from the running bot: the waves by state, how fast Slack got its
acks, the outside APIs' errors, and the engine's and the canary's outcomes."""

from __future__ import annotations

import urllib.request
from types import SimpleNamespace

from bot_world import CLUSTER, MIGRATION, World
from prometheus_client.parser import text_string_to_metric_families

from bot.canary.checks import Verdict
from bot.engine.events import EventBus, WaveFinished, WaveProgress, WaveRef

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(world: World) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"{world.server.base}/metrics", timeout=10) as response:
        assert response.status == 200
        content_type = response.headers["content-type"]
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return content_type, samples


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def wire(world: World) -> None:
    """What bot/app.py's build_bot does with the bot's Metrics (both calls are idempotent)."""
    world.bot.metrics.watch_waves(world.bot.repositories.migrations.state_counts)
    world.bot.metrics.watch_api_errors()


def test_after_a_wave_request_the_page_shows_the_wave_requested_its_ack_time_and_slack_failures(
    world: World,
) -> None:
    wire(world)
    # Slack fails the request's first post; slack_sdk's retry gets it through.
    world.slack.fail("chat.postMessage", times=1, status=500)
    asked = world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    assert asked.acked_in_time
    world.wait_for_ephemeral("alice")
    world.settle()
    assert len(world.requests()) == 1

    content_type, samples = scrape(world)
    assert content_type.startswith("text/plain; version=0.0.4")
    waves = {
        state: sample(samples, "migratebot_waves", cluster=CLUSTER, state=state)
        for state in ("planned", "requested", "approved", "executing", "completed")
    }
    assert waves == {"planned": 2, "requested": 1, "approved": 0, "executing": 0, "completed": 0}
    assert sample(samples, "migratebot_slack_ack_seconds_count", kind="command") == 1
    assert sample(samples, "migratebot_slack_ack_seconds_bucket", kind="command", le="3.0") == 1
    assert sample(samples, "migratebot_commands_total", verb="next-wave") == 1
    assert (
        sample(samples, "migratebot_api_errors_total", target="slack", status="500", error="temporary") == 1
    )


def test_interactions_are_timed_beside_commands(world: World) -> None:
    world.people["alice"].command("/migrate", "next-wave", channel=MIGRATION)
    world.wait_for_ephemeral("alice")
    [request] = world.requests()
    click = world.people["carol"].build_click(
        channel=MIGRATION, ts=request["ts"], action_id="wave_request.approve"
    )
    assert world.people.send(click).status == 200
    world.wait_for_ephemeral("carol")
    _, samples = scrape(world)
    assert sample(samples, "migratebot_slack_ack_seconds_count", kind="command") == 1
    assert sample(samples, "migratebot_slack_ack_seconds_count", kind="interaction") == 1


def test_evictions_count_what_the_engine_reports_once_even_when_progress_arrives_late(world: World) -> None:
    bus = EventBus()
    bus.subscribe(world.bot.metrics.on_engine_event)
    wave = WaveRef(CLUSTER, 1, 1, "stateless-web")

    def progress(evicted: int, retried: int = 0, refused: int = 0, failed: int = 0) -> WaveProgress:
        return WaveProgress(
            wave, "draining", 4, 4, 1, 20, evicted, 0, 0, 8,
            evictions_retried=retried, pods_refused=refused, evictions_failed=failed,
        )  # fmt: skip

    bus.publish(progress(3))  # 3 pods were evicted before this process started: not counted again
    bus.publish(progress(4))
    bus.publish(progress(6, retried=2))
    bus.publish(progress(5, retried=1))  # an older count, published late by another drain thread
    bus.publish(progress(7, retried=2, refused=1, failed=1))
    bus.publish(WaveFinished(wave, "baking", "drained"))

    _, samples = scrape(world)
    counted = {
        outcome: sample(samples, "migratebot_evictions_total", cluster=CLUSTER, outcome=outcome)
        for outcome in ("evicted", "retried", "refused", "failed")
    }
    assert counted == {"evicted": 4, "retried": 2, "refused": 1, "failed": 1}


def test_canary_runs_are_counted_by_verdict(world: World) -> None:
    metrics = world.bot.metrics
    for verdict in (Verdict.PASS, Verdict.PASS, Verdict.FAIL):
        metrics.on_canary_run(
            SimpleNamespace(wave=SimpleNamespace(cluster=CLUSTER), outcome=SimpleNamespace(verdict=verdict))  # type: ignore[arg-type]
        )
    _, samples = scrape(world)
    assert sample(samples, "migratebot_canary_runs_total", cluster=CLUSTER, result="pass") == 2
    assert sample(samples, "migratebot_canary_runs_total", cluster=CLUSTER, result="fail") == 1


def test_the_page_still_answers_when_the_wave_counts_cannot_be_read(world: World) -> None:
    def unreadable() -> dict[tuple[str, str], int]:
        raise RuntimeError("database unavailable")

    world.bot.metrics.watch_waves(unreadable)
    world.people["alice"].command("/migrate", "status", channel=MIGRATION)
    world.wait_for_ephemeral("alice")
    _, samples = scrape(world)
    assert sample(samples, "migratebot_commands_total", verb="status") == 1
    assert not [key for key in samples if key[0] == "migratebot_waves"]
