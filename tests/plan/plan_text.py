"""Build plan texts from examples/plan.yaml and find where things are in them.

Expected positions are computed from the edited text (the line and column where a snippet starts),
so the assertions stay exact when someone adds a comment to the example.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.plan import PlanInvalid, PlanProblem, parse_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plan.yaml"


def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def edited(*replacements: tuple[str, str]) -> str:
    """The example with each (old, new) applied once; old must occur in the text."""
    text = example_text()
    for old, new in replacements:
        assert old in text, f"the example no longer contains {old!r}: update this test's edit"
        text = text.replace(old, new, 1)
    return text


def problems_in(text: str) -> list[PlanProblem]:
    with pytest.raises(PlanInvalid) as caught:
        parse_plan(text, "plan.yaml")
    return caught.value.problems


def only_problem_in(text: str) -> PlanProblem:
    problems = problems_in(text)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def position(text: str, snippet: str, *, after: str = "") -> tuple[int, int]:
    """1-based line and column of the first `snippet` that follows `after`."""
    start = text.index(after) + len(after) if after else 0
    offset = text.index(snippet, start)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def at(problem: PlanProblem) -> tuple[int | None, int | None]:
    return problem.line, problem.column
