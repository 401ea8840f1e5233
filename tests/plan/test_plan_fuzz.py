"""Whatever text it is given, parsing a plan ends in a Plan or in PlanInvalid: never a traceback."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_text import example_text

from bot.plan import Plan, PlanInvalid, parse_plan

EXAMPLE_LINES = example_text().splitlines(keepends=True)

# Fragments that YAML and the plan's models give meaning to, so mutations reach deep code paths.
# fmt: off
FRAGMENTS = [
    "", " ", ":", "- ", "[", "]", "{", "}", "&a ", "*a", "<<: *a", "? x", "? [1, 2]", "~", "null", "true",
    "yes", "0", "-1", "1.5", "1e999", ".nan", "0x1F", "2026-01-01", "!!binary aGk=", "!!set {a}",
    "!!omap [a: 1]", "&x [*x]", '"', "'", "\t", "#", "---\n", "|\n", "drift", "@latest", "1h30m", "0s",
    "U0SRE00001", "S0ONCALL01", "x: y", "[]", "{}", "{a: 1}", "\n",
]
# fmt: on


def _parses_or_refuses(text: str) -> None:
    try:
        plan = parse_plan(text, "plan.yaml")
    except PlanInvalid as invalid:
        problems = invalid.problems
    else:
        assert isinstance(plan, Plan)
        return
    assert problems
    lines = text.count("\n") + 2
    for problem in problems:
        assert problem.line is None or 1 <= problem.line <= lines, problem
        assert problem.message
        assert problem.fix
        assert str(problem).startswith("plan.yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_parses_or_is_refused_with_problems(text: str) -> None:
    _parses_or_refuses(text)


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    lines = list(EXAMPLE_LINES)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "insert", "replace"]))
        line = lines[index]
        cut = draw(st.integers(min_value=0, max_value=len(line)))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[draw(st.integers(min_value=0, max_value=len(lines) - 1))])
        elif action == "insert":
            lines[index] = line[:cut] + draw(st.sampled_from(FRAGMENTS) | st.text(max_size=3)) + line[cut:]
        else:
            end = cut + draw(st.integers(min_value=0, max_value=4))
            lines[index] = line[:cut] + draw(st.sampled_from(FRAGMENTS)) + line[end:]
        if not lines:
            break
    return "".join(lines)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example())
def test_mutations_of_the_example_parse_or_are_refused_with_problems(text: str) -> None:
    _parses_or_refuses(text)
