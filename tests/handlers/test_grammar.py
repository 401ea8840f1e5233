"""The /migrate grammar: every verb, --cluster anywhere, and nothing but a Command or a UsageError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.grammar import AUDIT_DEFAULT, CanaryAction, Command, UsageError, Verb, parse, usage


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command(Verb.HELP)),
        ("help", Command(Verb.HELP)),
        ("status", Command(Verb.STATUS)),
        ("  STATUS  ", Command(Verb.STATUS)),
        ("plan --cluster prod", Command(Verb.PLAN, cluster="prod")),
        ("preview", Command(Verb.PREVIEW)),
        ("preview 2", Command(Verb.PREVIEW, wave="2")),
        ("preview stateless-web --cluster=prod", Command(Verb.PREVIEW, cluster="prod", wave="stateless-web")),
        ("next-wave", Command(Verb.NEXT_WAVE)),
        ("next-wave --cluster prod-us-west-2", Command(Verb.NEXT_WAVE, cluster="prod-us-west-2")),
        ("pause", Command(Verb.PAUSE)),
        ("resume --cluster a", Command(Verb.RESUME, cluster="a")),
        ("abort", Command(Verb.ABORT)),
        ("rollback 3", Command(Verb.ROLLBACK, wave="3")),
        ("--cluster b rollback", UsageError("`--cluster` is not a /migrate command.")),
        ("readiness", Command(Verb.READINESS)),
        ("security 1", Command(Verb.SECURITY, wave="1")),
        ("canary", Command(Verb.CANARY, canary=CanaryAction.STATUS)),
        ("canary run", Command(Verb.CANARY, canary=CanaryAction.RUN)),
        ("audit", Command(Verb.AUDIT, limit=AUDIT_DEFAULT)),
        ("audit 25", Command(Verb.AUDIT, limit=25)),
        ("audit\u00a05", Command(Verb.AUDIT, limit=5)),
    ],
)
def test_each_verb_parses_to_its_command(text: str, expected: Command | UsageError) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("next-wav", "`next-wav` is not a /migrate command."),
        ("status now", "`status` takes no arguments"),
        ("audit 0", "from 1 to 50"),
        ("audit 51", "from 1 to 50"),
        ("audit ５", "from 1 to 50"),
        ("audit many", "from 1 to 50"),
        ("canary stop", "`canary` takes `status` or `run`"),
        ("preview 1 2", "at most one argument"),
        ("preview `rm -rf`", "at most one argument"),
        ("preview a/b", "is not a wave"),
        ("status --cluster", "needs a cluster name"),
        ("status --cluster a --cluster b", "given twice"),
        ("status --cluster=", "is not a cluster name"),
        ("next-wave --force", "`--force` is not an option"),
    ],
)
def test_bad_input_is_a_usage_error_that_says_what_is_wrong(text: str, problem: str) -> None:
    result = parse(text)
    assert isinstance(result, UsageError)
    assert problem in result.problem
    assert result.message.endswith(usage())


def test_the_usage_lists_every_verb() -> None:
    text = usage()
    for verb in Verb:
        assert f"`{verb.value}" in text


def test_user_text_quoted_back_cannot_break_out_of_its_code_span() -> None:
    result = parse("`@here` " + "x" * 200)
    assert isinstance(result, UsageError)
    assert "`'@here'` is not" in result.problem


@given(st.text())
def test_any_text_parses_to_a_command_or_a_usage_error(text: str) -> None:
    assert isinstance(parse(text), Command | UsageError)


words = st.sampled_from(
    [v.value for v in Verb] + ["--cluster", "--cluster=x", "1", "run", "prod", "-", "=", "--"]
)


@given(st.lists(st.one_of(words, st.text(max_size=8)), max_size=6))
def test_any_sequence_of_near_miss_words_parses_to_a_command_or_a_usage_error(tokens: list[str]) -> None:
    result = parse(" ".join(tokens))
    assert isinstance(result, Command | UsageError)
    if isinstance(result, Command) and result.cluster is not None:
        assert "--cluster" in " ".join(tokens)


def test_every_verb_has_an_answer_now_or_says_which_capability_brings_it() -> None:
    from handlers.commands import ANSWERS, NOT_LANDED

    assert set(ANSWERS) | set(NOT_LANDED) | {Verb.HELP} == set(Verb)
    assert not set(ANSWERS) & set(NOT_LANDED)
