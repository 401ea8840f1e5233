"""What holds a wave back: the plan's change windows and blocking conditions (kured's semantics).

- Change windows: a wave starts only inside one; at the window's end an executing wave pauses
  unless the wave (finish_outside_window) or the windows (finish_running_wave) say finish.
- Blocking alerts: any firing Prometheus alert whose name does NOT match `blocking.prometheus_alerts`
  holds the wave (kured's --alert-filter-regexp names the alerts to ignore); unset, alerts don't block.
- Blocking pods: a pod matching one of `blocking.pod_selectors` on a node of the wave holds that node
  (kured's --blocking-pod-selector): it is not drained while the pod runs there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot.domain.windows import WindowStatus, both_zones, window_status
from bot.engine.pods import LabelSelector, PodInfo
from bot.plan.models import Blocking, ChangeWindow
from bot.plan.models import Wave as PlanWave


@dataclass(frozen=True)
class Hold:
    """Why a wave (or a node of it) may not move now, said so a person can act on it."""

    kind: str  # "window" | "alert" | "pod"
    reason: str
    objects: tuple[str, ...] = ()


def window_hold(windows: Sequence[ChangeWindow], now: dt.datetime) -> Hold | None:
    """None inside a change window (or when the plan has none); otherwise when the next one opens."""
    if not windows:
        return None
    status = window_status(windows, now)
    if status.open:
        return None
    return Hold("window", _closed(status))


def must_pause_at_window_end(
    wave: PlanWave, windows: Sequence[ChangeWindow], now: dt.datetime
) -> Hold | None:
    """An executing wave pauses when the window has closed, unless it is to finish."""
    hold = window_hold(windows, now)
    if hold is None:
        return None
    finish = wave.finish_outside_window
    if finish is None:
        finish = all(w.finish_running_wave for w in windows)
    return None if finish else hold


def _closed(status: WindowStatus) -> str:
    if status.next_opens_at is None:
        return "outside every change window, and none opens again — check change_windows in the plan"
    tz = status.window.timezone if status.window is not None else "UTC"
    return f"outside the change windows; the next opens at {both_zones(status.next_opens_at, tz)}"


def alert_hold(blocking: Blocking, firing: Callable[[], Iterable[str]]) -> Hold | None:
    """A firing alert not in the ignore filter holds the wave. `firing()` reads the alerts (I/O) and
    is not called when the plan doesn't block on alerts."""
    if blocking.prometheus_alerts is None:
        return None
    ignore = re.compile(blocking.prometheus_alerts)
    blockers = [a for a in firing() if not ignore.search(a.split("{", 1)[0])]
    if not blockers:
        return None
    shown = ", ".join(blockers[:5]) + (f" and {len(blockers) - 5} more" if len(blockers) > 5 else "")
    return Hold(
        "alert",
        f"alert {shown} firing: the wave holds until it resolves "
        "(or add it to blocking.prometheus_alerts to ignore it)",
        tuple(f"alert {a}" for a in blockers),
    )


def blocking_selectors(blocking: Blocking) -> list[LabelSelector]:
    return [parse_selector(s) for s in blocking.pod_selectors]


def pod_hold(node: str, pods: Iterable[PodInfo], selectors: Sequence[LabelSelector]) -> Hold | None:
    """A running pod matching a blocking selector holds its node."""
    if not selectors:
        return None
    blockers = [
        p.key
        for p in pods
        if not p.finished and not p.terminating and any(s.matches(p.labels) for s in selectors)
    ]
    if not blockers:
        return None
    return Hold(
        "pod",
        f"node {node} runs {', '.join(blockers)}, which blocking.pod_selectors says must not be disrupted: "
        "the node waits until it finishes",
        tuple(f"pod {k}" for k in blockers),
    )


_REQ = re.compile(
    r"^\s*(?P<neg>!)?(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9_.-]*))?\s*$"
)


def parse_selector(text: str) -> LabelSelector:
    """A selector as `kubectl -l` takes it (the plan validated it): app=db, tier in (a,b), !canary."""
    labels: list[tuple[str, str]] = []
    exprs: list[tuple[str, str, frozenset[str]]] = []
    for part in _split(text):
        m = _REQ.match(part)
        if m is None:
            raise ValueError(f"blocking pod selector {text!r}: can't read {part!r}")
        key, op, val = m["key"], (m["op"] or "").strip(), m["val"] or ""
        if m["neg"]:
            exprs.append((key, "DoesNotExist", frozenset()))
        elif not op:
            exprs.append((key, "Exists", frozenset()))
        elif op in ("=", "=="):
            labels.append((key, val))
        elif op == "!=":
            exprs.append((key, "NotIn", frozenset({val})))
        else:
            values = frozenset(v.strip() for v in val.strip("()").split(",") if v.strip())
            exprs.append((key, "In" if op == "in" else "NotIn", values))
    return LabelSelector(tuple(sorted(labels)), tuple(exprs))


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts
