"""The checks are pure: what a run saw decides pass / fail / inconclusive, and Argo Rollouts' limits
decide what the runs of a bake add up to."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.canary.checks import (
    CheckResult,
    Observation,
    Phase,
    PromSample,
    Verdict,
    assess,
    evaluate,
    wave_nodes,
)
from bot.plan.models import Canary, Check, Prometheus

EXECUTING = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
NOW = EXECUTING + dt.timedelta(minutes=20)


def stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def node(
    name: str,
    *,
    os: str = "Bottlerocket OS 1.26.2 (aws-k8s-1.31)",
    ready: str = "True",
    created: dt.datetime = EXECUTING + dt.timedelta(minutes=1),
    pressure: str | None = None,
) -> dict[str, Any]:
    conditions = [
        {"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "NotReady"}
    ]
    if pressure:
        conditions.append({"type": pressure, "status": "True"})
    return {
        "metadata": {"name": name, "creationTimestamp": stamp(created)},
        "status": {"nodeInfo": {"osImage": os}, "conditions": conditions},
    }


def pod(
    name: str,
    node_name: str | None,
    *,
    ready: bool = True,
    phase: str = "Running",
    restarts: int = 0,
    waiting: str | None = None,
    created: dt.datetime = NOW - dt.timedelta(minutes=2),
) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "creationTimestamp": stamp(created),
            "labels": {"pod-template-hash": "7f9"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "cart-7f9"}],
        },
        "spec": {"nodeName": node_name} if node_name else {},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "app", "restartCount": restarts, "state": state}],
        },
    }


def warning(reason: str, message: str, *, pod_name: str = "cart-1", host: str = "br-1") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{pod_name}.abc", "namespace": "shop"},
        "type": "Warning",
        "reason": reason,
        "message": message,
        "count": 1,
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": pod_name},
        "source": {"component": "kubelet", "host": host},
    }


def seen(**kwargs: Any) -> Observation:
    return Observation(now=NOW, since=EXECUTING, **kwargs)


CANARY = Canary()


def verdicts(observation: Observation, canary: Canary = CANARY) -> dict[str, Verdict]:
    return {r.check: r.verdict for r in evaluate(canary, observation).results}


def test_healthy_bottlerocket_nodes_and_pods_pass_every_default_check() -> None:
    outcome = evaluate(CANARY, seen(nodes=[node("br-1")], pods=[pod("cart-1", "br-1")]))
    assert outcome.verdict is Verdict.PASS
    assert {r.check for r in outcome.results} == {c.value for c in CANARY.checks}


def test_the_waves_nodes_are_bottlerocket_nodes_created_after_it_started_executing() -> None:
    nodes = [
        node("br-new"),
        node("br-old", created=EXECUTING - dt.timedelta(minutes=5)),
        node("al2-new", os="Amazon Linux 2"),
    ]
    assert [n["metadata"]["name"] for n in wave_nodes(nodes, EXECUTING)] == ["br-new"]


def test_no_bottlerocket_node_yet_is_inconclusive_not_a_pass() -> None:
    result = verdicts(seen(nodes=[node("al2", os="Amazon Linux 2")]))
    assert result["nodes_ready"] is Verdict.INCONCLUSIVE


def test_a_cluster_that_cant_be_read_makes_every_cluster_check_inconclusive_with_the_reason() -> None:
    outcome = evaluate(CANARY, seen(kube_error="list nodes: connection refused"))
    assert outcome.verdict is Verdict.INCONCLUSIVE
    assert all("connection refused" in r.summary for r in outcome.results)


def test_a_node_not_ready_or_under_pressure_fails_and_is_named() -> None:
    outcome = evaluate(
        CANARY, seen(nodes=[node("br-1", ready="False"), node("br-2", pressure="DiskPressure")])
    )
    [nodes_ready] = [r for r in outcome.results if r.check == "nodes_ready"]
    assert nodes_ready.verdict is Verdict.FAIL
    assert nodes_ready.objects == ("node br-1: not Ready (NotReady)", "node br-2: DiskPressure")


def test_a_crashlooping_pod_fails_workloads_ready_and_crashloop_with_the_pod_named() -> None:
    crashing = pod("cart-1", "br-1", ready=False, waiting="CrashLoopBackOff", restarts=1)
    outcome = evaluate(CANARY, seen(nodes=[node("br-1")], pods=[crashing]))
    failing = {r.check: r for r in outcome.failing()}
    assert set(failing) == {"workloads_ready", "crashloop"}
    assert failing["crashloop"].objects == ("pod shop/cart-1 container app: CrashLoopBackOff",)
    assert "shop/Deployment/cart" in failing["workloads_ready"].objects[0]


def test_restarts_count_from_the_first_run_that_saw_the_pod() -> None:
    restarted = pod("cart-1", "br-1", restarts=7)
    assert (
        verdicts(seen(nodes=[node("br-1")], pods=[restarted], baseline={"uid-cart-1": 5}))["restarts"]
        is Verdict.PASS
    )
    assert (
        verdicts(seen(nodes=[node("br-1")], pods=[restarted], baseline={"uid-cart-1": 4}))["restarts"]
        is Verdict.FAIL
    )


def test_a_pod_of_the_waves_workloads_pending_past_the_timeout_fails() -> None:
    stuck = pod("cart-2", None, phase="Pending", ready=False, created=NOW - dt.timedelta(minutes=6))
    fresh = pod("cart-3", None, phase="Pending", ready=False, created=NOW - dt.timedelta(minutes=1))
    result = evaluate(CANARY, seen(nodes=[node("br-1")], pods=[pod("cart-1", "br-1"), stuck, fresh]))
    [pending] = [r for r in result.results if r.check == "pending"]
    assert pending.verdict is Verdict.FAIL
    assert pending.objects == ("pod shop/cart-2: Pending since 10:14:00 UTC",)


def test_a_read_only_file_system_event_on_a_wave_node_fails_once_and_not_again_when_seen() -> None:
    event = warning("FailedMount", "MountVolume.SetUp failed : mkdir /usr/local/bin: read-only file system")
    first = evaluate(CANARY, seen(nodes=[node("br-1")], pods=[pod("cart-1", "br-1")], events=[event]))
    [events] = [r for r in first.results if r.check == "events"]
    assert events.verdict is Verdict.FAIL
    assert "read-only file system" in events.events[0]
    again = evaluate(
        CANARY,
        seen(
            nodes=[node("br-1")],
            pods=[pod("cart-1", "br-1")],
            events=[event],
            seen_events=frozenset(first.event_keys),
        ),
    )
    assert again.verdict is Verdict.PASS


def test_warnings_about_other_nodes_do_not_count() -> None:
    elsewhere = warning("FailedCreatePodSandBox", "failed to create sandbox", pod_name="other", host="al2-1")
    assert verdicts(seen(nodes=[node("br-1")], events=[elsewhere]))["events"] is Verdict.PASS


def test_prometheus_query_over_the_threshold_fails_and_no_data_is_inconclusive() -> None:
    canary = Canary(
        checks=(Check.PROMETHEUS_QUERY, Check.PROMETHEUS_ALERTS),
        prometheus=Prometheus(url="http://prom:9090", query="sum(rate(errors[5m]))", threshold=1.0),
    )
    assert verdicts(seen(query=PromSample(value=2.5), alerts=PromSample()), canary) == {
        "prometheus_query": Verdict.FAIL,
        "prometheus_alerts": Verdict.PASS,
    }
    assert verdicts(
        seen(query=PromSample(value=None), alerts=PromSample(alerts=("HighErrorRate",))), canary
    ) == {
        "prometheus_query": Verdict.INCONCLUSIVE,
        "prometheus_alerts": Verdict.FAIL,
    }
    assert verdicts(
        seen(query=PromSample(error="HTTP 503"), alerts=PromSample(error="HTTP 503")), canary
    ) == {
        "prometheus_query": Verdict.INCONCLUSIVE,
        "prometheus_alerts": Verdict.INCONCLUSIVE,
    }


# ---- Argo Rollouts' limits ----------------------------------------------------------------------


def runs(*verdicts_: str) -> list[list[CheckResult]]:
    return [[CheckResult("crashloop", Verdict(v), "")] for v in verdicts_]


def test_an_analysis_fails_when_failures_exceed_the_failure_limit_not_when_they_reach_it() -> None:
    limits = {"failure_limit": 2, "inconclusive_limit": 3, "bake_over": False}
    assert assess(runs("fail", "fail"), **limits).phase is Phase.RUNNING  # type: ignore[arg-type]
    failed = assess(runs("fail", "pass", "fail", "fail"), **limits)  # type: ignore[arg-type]
    assert failed.phase is Phase.FAILED
    assert failed.reason == "crashloop failed 3 times (failure limit 2)"


def test_failures_count_over_the_whole_analysis_not_only_consecutive_ones() -> None:
    assert (
        assess(
            runs("fail", "pass", "pass", "fail"), failure_limit=1, inconclusive_limit=3, bake_over=False
        ).phase
        is Phase.FAILED
    )


def test_too_many_inconclusive_runs_make_the_analysis_inconclusive_and_failure_wins_over_it() -> None:
    assert (
        assess(runs(*["inconclusive"] * 4), failure_limit=1, inconclusive_limit=3, bake_over=False).phase
        is Phase.INCONCLUSIVE
    )
    mixed = [[CheckResult("a", Verdict.FAIL, ""), CheckResult("b", Verdict.INCONCLUSIVE, "")]] * 4
    assert assess(mixed, failure_limit=1, inconclusive_limit=1, bake_over=False).phase is Phase.FAILED


def test_a_bake_that_ends_within_the_limits_is_successful() -> None:
    assert (
        assess(runs("fail", "pass"), failure_limit=1, inconclusive_limit=1, bake_over=True).phase
        is Phase.SUCCESSFUL
    )
