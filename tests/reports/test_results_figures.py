"""p50/p90 as numpy computes them, and comparisons that say "unknown" rather than invent a baseline."""

from __future__ import annotations

import datetime as dt

import numpy
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.timings import NodeTiming, PodTiming
from bot.reports.results import percentile, results

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@given(st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_agree_with_numpy(values: list[float]) -> None:
    for q in (0.5, 0.9):
        expected = float(numpy.percentile(values, q * 100))
        got = percentile(values, q)
        assert got is not None and abs(got - expected) <= 1e-6 * max(1.0, abs(expected))


def _node(name: str, os: str, seconds: float) -> NodeTiming:
    return NodeTiming(name, os, "m5.large", T0, T0, T0 + dt.timedelta(seconds=seconds))


def _pod(name: str, scheduled: float, ready: float) -> PodTiming:
    return PodTiming(
        "shop", name, "Deployment/shop/cart", T0, name + "-new",
        T0 + dt.timedelta(seconds=scheduled), T0 + dt.timedelta(seconds=ready), "br-1",
    )  # fmt: skip


def test_the_case_study_comparisons_use_the_baselines_given() -> None:
    report = results(
        2,
        "general",
        [_node("br-1", "bottlerocket", 20), _node("br-2", "bottlerocket", 22)],
        [_pod("a", 1, 6), _pod("b", 60, 64)],
        al2_baseline=[_node("al2-1", "al2", 26), _node("al2-2", "al2", 27)],
        al2_pod_baseline=[_pod("c", 1, 42), _pod("d", 60, 104)],
    )
    node, pod, waited = report.comparisons
    assert node.observed == 26.5 - 21.0 and node.case_study == 5.0
    assert pod.observed == (42 + 104) / 2 - (6 + 64) / 2 and pod.case_study == 36.0
    assert waited.observed == 104 - 64 and waited.case_study == 40.0
    assert report.waited_for_node.count == 1


def test_without_a_baseline_the_comparison_is_unknown_and_says_why() -> None:
    report = results(1, "web", [_node("br-1", "bottlerocket", 20)], [])
    assert all(c.observed is None and c.detail.startswith("unknown: ") for c in report.comparisons)
