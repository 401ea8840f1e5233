"""Change windows and blocking conditions hold a wave: it starts only inside a window, a firing
blocking alert holds it and says which alert, a blocking pod holds its node (kured's semantics). And
with the plan's `impersonation:`, a wave nobody on it is mapped for never changes the cluster as the
bot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_world import demo_plan, demo_plan_text, engine_world, fix_demo_workloads
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.domain.policy import Actor
from bot.domain.waves import Trigger, WaveState
from bot.engine.events import EngineAlert, WavePaused
from bot.engine.guards import alert_hold, must_pause_at_window_end, parse_selector, pod_hold, window_hold
from bot.plan import parse_plan, plan_hash
from sandbox.main import BOT_NAMESPACE, BOT_SERVICE_ACCOUNT
from sandbox.serving import serve_on_loopback
from storage.models import ApprovalDecision

TUESDAY_NIGHT = dt.datetime(2026, 11, 24, 22, 30, tzinfo=dt.UTC)
TUESDAY_NOON = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
WORKING_HOURS = """change_windows:
  - schedule: "0 9 * * 1-4"
    duration: 8h
    timezone: UTC
    finish_running_wave: false
"""


def _with_windows(text: str, windows: str = WORKING_HOURS) -> str:
    head, _, rest = text.partition("change_windows:")
    tail = rest.split("\ncanary:", 1)[1]
    return head + windows + "\ncanary:" + tail


def test_outside_the_window_a_wave_holds_and_says_when_the_next_one_opens() -> None:
    plan = parse_plan(_with_windows(demo_plan_text()), "plan.yaml")
    hold = window_hold(plan.change_windows, TUESDAY_NIGHT)
    assert hold is not None and "2026-11-25 09:00 UTC" in hold.reason
    assert window_hold(plan.change_windows, TUESDAY_NOON) is None
    wave = plan.waves[0]
    assert must_pause_at_window_end(wave, plan.change_windows, TUESDAY_NIGHT) is not None
    finishing = wave.model_copy(update={"finish_outside_window": True})
    assert must_pause_at_window_end(finishing, plan.change_windows, TUESDAY_NIGHT) is None


def test_a_firing_alert_outside_the_ignore_filter_holds_and_is_named() -> None:
    blocking = demo_plan().blocking.model_copy(update={"prometheus_alerts": "^(Watchdog|InfoInhibitor)$"})
    hold = alert_hold(blocking, lambda: ["Watchdog", "HighErrorRate{severity=critical}"])
    assert hold is not None and "HighErrorRate{severity=critical}" in hold.reason
    assert "Watchdog" not in hold.reason
    assert alert_hold(blocking, lambda: ["Watchdog"]) is None
    unset = demo_plan().blocking
    assert alert_hold(unset, lambda: pytest.fail("alerts are not read when they don't block")) is None


def test_blocking_pod_selectors_read_like_kubectl_and_hold_the_node() -> None:
    selector = parse_selector("app in (backup, restore),!canary")
    assert selector.matches({"app": "backup"}) and not selector.matches({"app": "backup", "canary": "x"})
    assert not selector.matches({"app": "web"})
    assert parse_selector("tier!=db").matches({"tier": "web"})
    assert parse_selector("app=db").matches({"app": "db"})
    assert pod_hold("n1", [], [selector]) is None


class _Alerts:
    def __init__(self) -> None:
        self.firing: list[str] = ["HighErrorRate"]

    async def query(self, request: Request) -> JSONResponse:
        result: list[dict[str, Any]] = [
            {"metric": {"__name__": "ALERTS", "alertname": n, "alertstate": "firing"}} for n in self.firing
        ]
        return JSONResponse({"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.fixture
def prometheus() -> Iterator[tuple[_Alerts, str]]:
    fake = _Alerts()
    with serve_on_loopback(Starlette(routes=[Route("/api/v1/query", fake.query)]), name="prometheus") as url:
        yield fake, url


def test_a_firing_blocking_alert_holds_an_approved_wave_until_it_resolves(
    tmp_path: Path, prometheus: tuple[_Alerts, str]
) -> None:
    fake, url = prometheus
    text = (
        demo_plan_text()
        .replace(
            "blocking:\n  pod_selectors: []",
            'blocking:\n  prometheus_alerts: "^Watchdog$"\n  pod_selectors: []',
        )
        .replace("  pending_timeout: 5m\n", f"  pending_timeout: 5m\n  prometheus:\n    url: {url}\n")
    )
    with engine_world(tmp_path, plan_text=text) as world:
        engine = world.engine()
        fix_demo_workloads(world.admin)
        world.approve(1)
        for _ in range(5):
            engine.tick()
        assert world.state(1) is WaveState.APPROVED
        told = [e for e in world.events if isinstance(e, WavePaused)]
        assert len(told) == 1 and "alert HighErrorRate firing" in told[0].reason
        fake.firing = ["Watchdog"]
        world.run_until(engine, lambda: world.state(1) is WaveState.EXECUTING, "wave 1 to start")


BOT = f"system:serviceaccount:{BOT_NAMESPACE}:{BOT_SERVICE_ACCOUNT}"
BOB, DAVE = "U0SRE00002", "U0LEAD0002"  # an SRE and a team lead examples/plan.yaml does not map


def test_with_impersonation_a_wave_nobody_on_it_is_mapped_for_never_changes_the_cluster_as_the_bot(
    tmp_path: Path,
) -> None:
    with engine_world(tmp_path) as world:
        assert BOB not in world.plan.impersonation and DAVE not in world.plan.impersonation
        engine = world.engine()
        requested = world.fire(1, Trigger.REQUEST, actor=BOB)
        world.repos.approvals.record_approval(
            requested.id, user_id=DAVE, decision=ApprovalDecision.APPROVE, plan_hash=plan_hash(world.plan),
            cycle=requested.version,
        )  # fmt: skip
        world.fire(1, Trigger.APPROVE, actor=DAVE)
        log = world.sandbox.kube_server.api.log
        start = len(log.since(0)[0])

        for _ in range(3):
            engine.tick()
        assert world.state(1) is WaveState.APPROVED  # not started: nothing of it has been changed
        (alert,) = [e for e in world.events if isinstance(e, EngineAlert)]  # once, however many passes
        assert alert.kind == "no_identity"
        for named in ("wave 1 (stateless-web)", f"<@{BOB}>", f"<@{DAVE}>", "`impersonation:`", "approve"):
            assert named in alert.summary, alert.summary

        # Started anyway (an engine without this check, a wave approved before the plan mapped people):
        # its steps refuse to run as the bot, and the alert stays the one already raised.
        world.fire(1, Trigger.START, actor=Actor.system().id)
        for _ in range(3):
            engine.tick()
        assert world.state(1) is WaveState.EXECUTING
        assert [e.kind for e in world.events if isinstance(e, EngineAlert)] == ["no_identity"]
        assert not any(n.unschedulable for n in world.inventory().nodes.values())  # read as the bot
        mine = [e for e in log.since(start)[0] if BOT in (e.get("user"), e.get("impersonatedBy"))]
        assert mine and [e for e in mine if e["verb"] not in ("get", "list", "watch")] == []
