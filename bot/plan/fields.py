"""Value types shared by the plan's models, each with a message and a fix a person can act on."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Strict
from pydantic_core import PydanticCustomError

from bot.plan.durations import EXAMPLES, LONGEST, DurationError, parse_duration


def plan_error(message: str, fix: str, *, at_key: bool = False) -> PydanticCustomError:
    """A validation error the loader turns into a PlanProblem with this message and fix.

    `at_key` points the problem at the key rather than its value (a key that must not be there).
    """
    # pydantic fills "{name}" placeholders from the context: keep the message out of the template's
    # reach so that braces in user input print as they are.
    return PydanticCustomError("plan", "{message}", {"message": message, "fix": fix, "at_key": at_key})


def non_empty(message: str, fix: str) -> AfterValidator:
    """Refuse an empty list once its items are valid.

    Not min_length: on a tuple, pydantic also reports "too short" when an item is invalid.
    """

    def check(items: tuple[Any, ...]) -> tuple[Any, ...]:
        if not items:
            raise plan_error(message, fix)
        return items

    return AfterValidator(check)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        if value <= timedelta(0) or value > LONGEST:
            raise plan_error(f"{value} is not a usable duration", f"use a positive duration, like {EXAMPLES}")
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise plan_error(str(exc), f"write a duration like {EXAMPLES}") from exc
    if isinstance(value, int) and not isinstance(value, bool):
        raise plan_error(
            f"{value} has no unit", f"write {value}s for seconds or {value}m for minutes ({EXAMPLES})"
        )
    raise plan_error(f"expected a duration, got {describe(value)}", f"write a duration like {EXAMPLES}")


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A positive duration written as 30s, 5m, 2h, 1h30m or 1d."""

StrictInteger = Annotated[int, Strict()]
"""A YAML integer: `true` or "3" are refused rather than read as 1 or 3."""

StrictBoolean = Annotated[bool, Strict()]
"""A YAML boolean: only true or false (YAML 1.2 reads yes/no/on/off as text)."""


def describe(value: Any) -> str:
    """How a YAML value reads to the person who wrote it: 'text "x"', 'a list', 'nothing'."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _matching(pattern: str, what: str, example: str, fix: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise plan_error(f"{value!r} is not {what} (like {example})", fix)
        return value

    return AfterValidator(check)


SlackUserId = Annotated[
    str,
    _matching(
        r"[UW][A-Z0-9]{8,20}",
        "a Slack user ID",
        "U024BE7LH",
        "use the member ID from the person's Slack profile (⋮ → Copy member ID), not their name",
    ),
]
SlackUsergroupId = Annotated[
    str,
    _matching(
        r"S[A-Z0-9]{8,20}",
        "a Slack user group ID",
        "S0614TZR7",
        "use the user group's ID (from usergroups.list or the group's page), not its @handle",
    ),
]
SlackChannelId = Annotated[
    str,
    _matching(
        r"[CG][A-Z0-9]{8,20}",
        "a Slack channel ID",
        "C024BE91L",
        "use the channel ID shown at the bottom of the channel's details, not its #name",
    ),
]
AwsRegion = Annotated[
    str,
    _matching(
        r"[a-z]{2}(-[a-z]+)+-\d{1,2}", "an AWS region", "us-west-2", "write the region's code, e.g. eu-west-1"
    ),
]
KubeName = Annotated[
    str,
    _matching(
        r"(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?",
        "a Kubernetes object name",
        "bottlerocket",
        "use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
    ),
]
WaveName = Annotated[
    str,
    _matching(
        r"(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?",
        "a wave name",
        "stateless-web",
        "use at most 63 lowercase letters, digits and '-': people type it in Slack commands",
    ),
]
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"
LabelKey = Annotated[
    str,
    _matching(
        rf"(?=[^/]{{1,253}}/)?([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(?=[^/]{{1,63}}$){_LABEL_NAME}",
        "a Kubernetes label key",
        "karpenter.sh/capacity-type",
        "write an optional DNS prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.'",
    ),
]


def _text_not_number(value: Any) -> Any:
    # YAML reads `2` as a number where Kubernetes and AWS want the text "2": whole numbers convert
    # safely. Booleans and decimals don't: `1.10` would silently become "1.1".
    if isinstance(value, bool | float):
        written = str(value).lower() if isinstance(value, bool) else str(value)
        raise plan_error(
            f"expected text, got {describe(value)}", f'quote it so YAML keeps it as text: "{written}"'
        )
    if isinstance(value, int):
        return str(value)
    return value


LabelValue = Annotated[
    str,
    BeforeValidator(_text_not_number),
    _matching(
        rf"(?=.{{0,63}}$)({_LABEL_NAME})?",
        "a Kubernetes label value",
        "bottlerocket",
        "use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    ),
]
Text = Annotated[str, BeforeValidator(_text_not_number)]
"""Free text (AWS tag values, requirement values); whole numbers are read as their digits."""

Quantity = Annotated[
    str,
    BeforeValidator(_text_not_number),
    _matching(
        r"\+?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?",
        "a Kubernetes quantity",
        '"400" or 1600Gi',
        "write a number with an optional suffix: 400, 1500m, 1600Gi",
    ),
]
