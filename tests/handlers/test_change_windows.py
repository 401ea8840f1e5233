"""Change windows say when a wave may start; outside them /migrate next-wave is refused with the time the
next one opens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from bot_world import EXAMPLE_PLAN, open_world
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.windows import cron_weekdays, window_status
from bot.plan import ChangeWindow

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)


def window(schedule: str, duration: dt.timedelta, timezone: str = "UTC") -> ChangeWindow:
    return ChangeWindow(schedule=schedule, duration=duration, timezone=timezone)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_window_is_open_from_its_firing_for_its_duration_and_closed_at_its_end() -> None:
    weekdays = [window("0 9 * * 1-4", dt.timedelta(hours=6))]  # 2026-11-25 is a Wednesday
    assert window_status(weekdays, at("2026-11-25T08:59:59")).next_opens_at == at("2026-11-25T09:00")
    opened = window_status(weekdays, at("2026-11-25T09:00"))
    assert opened.open and opened.closes_at == at("2026-11-25T15:00") and opened.next_opens_at is None
    closed = window_status(weekdays, at("2026-11-25T15:00"))
    assert not closed.open and closed.next_opens_at == at("2026-11-26T09:00")


def test_cron_day_numbers_mean_what_cron_means_monday_is_1_and_sunday_is_0_or_7() -> None:
    # APScheduler's from_crontab would read "1-4" as Tuesday–Friday.
    friday = window_status([window("0 9 * * 1-4", dt.timedelta(hours=6))], at("2026-11-27T10:00"))
    assert not friday.open and friday.next_opens_at == at("2026-11-30T09:00")  # Monday
    assert cron_weekdays("1-4") == {1, 2, 3, 4}
    assert cron_weekdays("0") == cron_weekdays("7") == cron_weekdays("sun") == {0}
    assert cron_weekdays("5-7") == {5, 6, 0}
    assert cron_weekdays("*/2") == {0, 2, 4, 6}
    assert cron_weekdays("mon-fri") == {1, 2, 3, 4, 5}


def test_day_of_month_or_day_of_week_fires_as_cron_does() -> None:
    # Cron: the 1st of the month OR any Sunday. 2026-11-29 is a Sunday, 2026-12-01 a Tuesday.
    either = [window("0 12 1 * 0", dt.timedelta(hours=1))]
    assert window_status(either, at("2026-11-27T00:00")).next_opens_at == at("2026-11-29T12:00")
    assert window_status(either, at("2026-11-30T00:00")).next_opens_at == at("2026-12-01T12:00")


def test_a_window_in_a_time_zone_follows_its_wall_clock_across_daylight_saving() -> None:
    berlin = [window("0 9 * * *", dt.timedelta(hours=2), "Europe/Berlin")]
    summer = window_status(berlin, at("2026-07-01T00:00"))
    winter = window_status(berlin, at("2026-12-01T00:00"))
    assert summer.next_opens_at == at("2026-07-01T07:00")
    assert winter.next_opens_at == at("2026-12-01T08:00")
    assert winter.describe() == "the next change window opens 2026-12-01 08:00 UTC (09:00 CET Europe/Berlin)"


def test_overlapping_firings_and_windows_make_one_open_stretch() -> None:
    hourly_for_two_hours = [window("0 * * * *", dt.timedelta(hours=2))]
    status = window_status(hourly_for_two_hours, at("2026-11-25T10:30"))
    assert status.open
    # Every firing re-opens before the last one closes: the stretch reaches the search's end, far ahead.
    assert status.closes_at is not None and status.closes_at > at("2026-11-26T10:30")
    back_to_back = [window("0 9 * * *", dt.timedelta(hours=3)), window("0 12 * * *", dt.timedelta(hours=1))]
    assert window_status(back_to_back, at("2026-11-25T10:00")).closes_at == at("2026-11-25T13:00")


def test_window_status_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        window_status([window("0 9 * * *", dt.timedelta(hours=1))], dt.datetime(2026, 11, 25, 9))


# ---- against a minute-by-minute reading of cron --------------------------------------------------

ZONES = ("UTC", "Asia/Kolkata", "America/Sao_Paulo")  # no daylight saving in 2026: every minute exists once


def _fires(minute: int, hours: frozenset[int], days: frozenset[int], zone: str, t: dt.datetime) -> bool:
    local = t.astimezone(ZoneInfo(zone))
    cron_day = (local.weekday() + 1) % 7
    return local.minute == minute and local.hour in hours and cron_day in days


@st.composite
def windows(draw: st.DrawFn) -> tuple[ChangeWindow, int, frozenset[int], frozenset[int]]:
    minute = draw(st.sampled_from([0, 15, 30, 45]))
    hours = draw(st.frozensets(st.integers(0, 23), min_size=1, max_size=3))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1, max_size=7))
    duration = dt.timedelta(minutes=draw(st.integers(1, 3 * 24 * 60)))
    zone = draw(st.sampled_from(ZONES))
    schedule = f"{minute} {','.join(map(str, sorted(hours)))} * * {','.join(map(str, sorted(days)))}"
    return window(schedule, duration, zone), minute, hours, days


@settings(max_examples=60, deadline=None)
@given(
    st.lists(windows(), min_size=1, max_size=2),
    st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 1)),
)
def test_window_status_agrees_with_reading_the_schedule_minute_by_minute(
    specs: list[tuple[ChangeWindow, int, frozenset[int], frozenset[int]]], naive_now: dt.datetime
) -> None:
    now = naive_now.replace(tzinfo=UTC)
    start = (now - dt.timedelta(days=4)).replace(second=0, microsecond=0)
    horizon = now + dt.timedelta(days=12)
    intervals = []
    t = start
    while t <= horizon:
        for spec, minute, hours, days in specs:
            if _fires(minute, hours, days, spec.timezone, t):
                intervals.append((t, t + spec.duration))
        t += MINUTE
    intervals.sort()
    stretches: list[list[dt.datetime]] = []
    for begin, end in intervals:
        if stretches and begin <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], end)
        else:
            stretches.append([begin, end])

    status = window_status([spec for spec, *_ in specs], now)

    covering = [s for s in stretches if s[0] <= now < s[1]]
    if covering:
        assert status.open
        if covering[0][1] < horizon - dt.timedelta(days=4):
            assert status.closes_at == covering[0][1]
    else:
        assert not status.open
        assert status.next_opens_at == min(s[0] for s in stretches if s[0] > now)


# ---- /migrate next-wave outside a window ---------------------------------------------------------


def test_outside_a_change_window_next_wave_is_refused_with_when_the_next_one_opens(tmp_path: Path) -> None:
    opens = (dt.datetime.now(UTC) + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    berlin = opens.astimezone(ZoneInfo("Europe/Berlin"))
    plan = EXAMPLE_PLAN.read_text().replace(
        '  - schedule: "0 0 * * *"\n    duration: 24h\n    timezone: UTC',
        f'  - schedule: "{berlin.minute} {berlin.hour} * * *"\n    duration: 1h\n    timezone: Europe/Berlin',
    )
    assert "Europe/Berlin" in plan
    with open_world(tmp_path, plan_text=plan) as world:
        asked = world.people["alice"].command("/migrate", "next-wave", channel="eks-migration")
        assert asked.acked_in_time
        [answer] = world.wait_for_ephemeral("alice")
        assert "no change window is open" in answer.lower()
        assert f"{opens:%Y-%m-%d %H:%M} UTC" in answer
        assert f"{berlin:%H:%M} {berlin.tzname()} Europe/Berlin" in answer
        assert "nothing was changed" in answer.lower()
        world.settle()
        assert world.requests() == []
        assert world.waves()["stateless-web"] == "planned"
