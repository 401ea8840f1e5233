"""Change windows: when waves may start.

A window opens at each firing of its 5-field cron `schedule` (read in the window's `timezone`, so
"0 9 * * 1-4" in Europe/Berlin is 09:00 Berlin time, summer and winter) and stays open for
`duration`. Several windows, or one whose firings overlap their own durations, form one open
stretch: `closes_at` is the end of the whole stretch, not of the firing that opened it.

Pure: the same answer for the same windows and instant. APScheduler's CronTrigger computes fire
times (it handles DST gaps and folds); nothing is scheduled. Two of its differences from cron are
undone here (measured with APScheduler 3.11): `CronTrigger.from_crontab` reads day-of-week numbers
Monday-first (cron's "1" became Tuesday), and it requires day-of-month AND day-of-week where cron
fires when either matches.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# A schedule that fires every minute with a day-long duration never closes; stop chaining firings
# after this many steps and report the stretch as open at least that long (the caller asks again).
_MAX_STEPS = 2_000
_TICK = dt.timedelta(microseconds=1)


class WindowSpec(Protocol):
    """What a change window is made of (bot.plan.ChangeWindow has exactly these fields)."""

    @property
    def schedule(self) -> str: ...
    @property
    def duration(self) -> dt.timedelta: ...
    @property
    def timezone(self) -> str: ...
    @property
    def finish_running_wave(self) -> bool: ...


@dataclass(frozen=True)
class WindowStatus:
    """Open now (and until when), or closed (and when the next window opens).

    `window` is the window that is open now (the one whose firing lasts longest), or the one that
    opens next. `next_opens_at` is None while open; `closes_at` is None while closed.
    """

    open: bool
    closes_at: dt.datetime | None
    next_opens_at: dt.datetime | None
    window: WindowSpec | None

    def describe(self, at: dt.datetime | None = None) -> str:
        """A sentence for people: the instant in UTC and in the window's own time zone."""
        if self.window is None:
            return (
                "no change window is configured, so no wave can start — add one to the plan's change_windows"
            )
        if self.open and self.closes_at is not None:
            return f"a change window is open until {both_zones(self.closes_at, self.window.timezone)}"
        assert self.next_opens_at is not None
        return f"the next change window opens {both_zones(self.next_opens_at, self.window.timezone)}"


def both_zones(at: dt.datetime, timezone: str) -> str:
    """ "2026-11-26 08:00 UTC (09:00 CET Europe/Berlin)"; just UTC for a UTC window."""
    utc = at.astimezone(dt.UTC)
    text = f"{utc:%Y-%m-%d %H:%M} UTC"
    if timezone in ("UTC", "Etc/UTC"):
        return text
    local = at.astimezone(ZoneInfo(timezone))
    same_day = local.date() == utc.date()
    shown = f"{local:%H:%M}" if same_day else f"{local:%Y-%m-%d %H:%M}"
    return f"{text} ({shown} {local.tzname()} {timezone})"


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_weekdays(field: str) -> frozenset[int]:
    """Cron's day-of-week field as day numbers, Sunday = 0 (7 is Sunday too; names allowed)."""

    def day(token: str) -> int:
        token = token.strip().lower()
        if token[:3] in _DAY_NAMES and not token.isdigit():
            return _DAY_NAMES.index(token[:3])
        value = int(token)
        if not 0 <= value <= 7:
            raise ValueError(f"day of week {value} is out of range (0-7, 0 and 7 are Sunday)")
        return value

    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step} in day of week {part!r} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-", 1)
            first, last = day(low), day(high)
        else:
            first = last = day(span)
            if step_text:
                last = 6
        days.update(d % 7 for d in range(first, last + 1, step))
    return frozenset(days)


@functools.lru_cache(maxsize=256)
def _triggers(schedule: str, timezone: str) -> tuple[CronTrigger, ...]:
    minute, hour, dom, month, dow = schedule.split()
    zone = ZoneInfo(timezone)

    def trigger(day: str, weekdays: str) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekdays, timezone=zone
        )

    names = ",".join(_DAY_NAMES[d] for d in sorted(cron_weekdays(dow)))
    if dom != "*" and dow != "*":
        # Cron fires when either day field matches; APScheduler would require both.
        return (trigger(dom, "*"), trigger("*", names))
    return (trigger(dom, names if dow != "*" else "*"),)


def _next_fire(window: WindowSpec, after: dt.datetime) -> dt.datetime | None:
    """The first firing at or after `after` (UTC), or None when the schedule never fires again."""
    fires = [
        fire.astimezone(dt.UTC)
        for trigger in _triggers(window.schedule, window.timezone)
        if (fire := trigger.get_next_fire_time(None, after)) is not None
    ]
    return min(fires, default=None)


def _firing_covering(window: WindowSpec, at: dt.datetime) -> dt.datetime | None:
    """The latest firing f with f <= at < f + duration, if any."""
    if window.duration <= dt.timedelta(0):
        return None
    fire = _next_fire(window, at - window.duration + _TICK)
    latest = None
    steps = 0
    while fire is not None and fire <= at and steps < _MAX_STEPS:
        latest = fire
        fire = _next_fire(window, fire + dt.timedelta(seconds=1))
        steps += 1
    return latest


def window_status(windows: Sequence[WindowSpec], now: dt.datetime) -> WindowStatus:
    """Whether a change window is open at `now` (aware), and when it closes or the next one opens."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"window_status needs an aware datetime, got naive {now.isoformat()}")
    now = now.astimezone(dt.UTC)
    covering = [(fire + w.duration, w) for w in windows if (fire := _firing_covering(w, now)) is not None]
    if covering:
        end, window = max(covering, key=lambda pair: pair[0])
        return WindowStatus(True, _stretch_end(windows, end), None, window)
    upcoming = [(fire, w) for w in windows if w.duration > dt.timedelta(0) and (fire := _next_fire(w, now))]
    if not upcoming:
        return WindowStatus(False, None, None, windows[0] if windows else None)
    opens, window = min(upcoming, key=lambda pair: pair[0])
    return WindowStatus(False, None, opens, window)


def _stretch_end(windows: Sequence[WindowSpec], end: dt.datetime) -> dt.datetime:
    """Follow firings that start before the stretch ends (a window re-opening as it closes)."""
    for _ in range(_MAX_STEPS):
        extended = end
        for window in windows:
            fire = _firing_covering(window, end)
            if fire is not None:
                extended = max(extended, fire + window.duration)
        if extended == end:
            return end
        end = extended
    return end
