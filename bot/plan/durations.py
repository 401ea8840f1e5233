"""Durations as operators write them in a plan: 30s, 5m, 2h, 1h30m, 1d."""

from __future__ import annotations

import re
from datetime import timedelta

EXAMPLES = "30s, 5m, 2h, 1h30m or 1d"
# A plan that waits more than a year for anything is a typo, and capping also keeps timedelta from
# overflowing on absurd digit strings.
LONGEST = timedelta(days=366)

_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Units largest first, each at most once: "1h30m" is a duration, "30m1h" and "1h1h" are typos.
_DURATION = re.compile(r"(?:(?P<d>\d{1,6})d)?(?:(?P<h>\d{1,6})h)?(?:(?P<m>\d{1,6})m)?(?:(?P<s>\d{1,6})s)?")


class DurationError(ValueError):
    """The text is not a duration; the message says why and shows valid examples."""


def parse_duration(text: str) -> timedelta:
    """Parse "1h30m"-style text into a positive timedelta; raise DurationError otherwise."""
    cleaned = text.strip()
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None:
        raise DurationError(
            f"{text!r} is not a duration: write a number and a unit (d, h, m, s), largest unit first, "
            f"like {EXAMPLES}"
        )
    seconds = sum(int(value) * _UNITS[unit] for unit, value in match.groupdict().items() if value)
    if seconds == 0:
        raise DurationError(f"{text!r} is zero: a duration must be longer than that, like {EXAMPLES}")
    value = timedelta(seconds=seconds)
    if value > LONGEST:
        raise DurationError(f"{text!r} is longer than a year: write a shorter duration, like {EXAMPLES}")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest text parse_duration reads back as `value` (whole seconds): 5400 s → "1h30m"."""
    remaining = int(value.total_seconds())
    parts = []
    for unit, size in _UNITS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
