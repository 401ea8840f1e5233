"""Durations as operators write them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.plan import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(days=1)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("90m", timedelta(minutes=90)),
        (" 45s ", timedelta(seconds=45)),
    ],
)
def test_durations_read_as_a_person_means_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is not a duration"),
        ("30", "is not a duration"),
        ("5 minutes", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("30m1h", "largest unit first"),
        ("1h1h", "is not a duration"),
        ("-5m", "is not a duration"),
        ("0s", "is zero"),
        ("0h0m", "is zero"),
        ("400d", "longer than a year"),
        ("999999d", "longer than a year"),
    ],
)
def test_anything_else_is_refused_with_examples(text: str, words: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)

    assert words in str(caught.value)
    assert "1h30m" in str(caught.value)


@given(st.integers(min_value=1, max_value=366 * 86_400))
def test_a_formatted_duration_reads_back_as_itself(seconds: int) -> None:
    value = timedelta(seconds=seconds)

    assert parse_duration(format_duration(value)) == value
