"""Anything typed after /migrate: the grammar reads every well-formed command however it is spaced or
cased, and answers everything else with a usage error that names what is wrong — quoting only what was
typed, bounded, never able to break out of its code span. Over HTTP, whatever someone with no role
types is answered and changes no wave."""

from __future__ import annotations

import re
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_world import MIGRATION, PEOPLE, guarded_world

from handlers.grammar import AUDIT_MAX, CanaryAction, Command, UsageError, Verb, parse, usage

FUZZ = settings(max_examples=100, deadline=None)

# What a problem may put in a code span besides what was typed (the grammar's own words and examples).
OWN_WORDS = {v.value for v in Verb} | {
    "--cluster",
    "--cluster NAME",
    "--cluster prod-us-west-2",
    "status",
    "run",
    "2",
}
SPACES = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u2003", " \r\n "])
CLUSTER = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", fullmatch=True)
WAVE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", fullmatch=True)


def _spans(problem: str) -> list[str]:
    assert problem.count("`") % 2 == 0, f"unbalanced code span: {problem!r}"
    return re.findall(r"`([^`]*)`", problem)


@FUZZ
@given(st.text())
def test_a_usage_error_names_the_problem_with_only_what_was_typed(text: str) -> None:
    result = parse(text)
    if isinstance(result, Command):
        return
    problem = result.problem
    assert problem.endswith(".") and "\n" not in problem, problem
    assert len(problem) <= 160, f"the problem grows with the input: {problem!r}"
    assert result.message == f"{problem}\n\n{usage()}"
    typed = [token.replace("`", "'") for token in text.split()]
    for span in _spans(problem):
        if span in OWN_WORDS:
            continue
        assert len(span) <= 40, f"quoted unbounded: {span!r}"
        shown = span.removesuffix("…")
        for word in shown.split(" "):
            assert any(word in token for token in typed), f"`{span}` is not what was typed in {text!r}"


@FUZZ
@given(st.text(min_size=1).filter(lambda w: w.split() == [w] and w.lower() not in {v.value for v in Verb}))
def test_an_unknown_first_word_is_named_as_not_a_command(word: str) -> None:
    result = parse(f"{word} --cluster prod")
    assert isinstance(result, UsageError)
    [span] = _spans(result.problem)
    assert result.problem == f"`{span}` is not a /migrate command."
    assert word.replace("`", "'").startswith(span.removesuffix("…"))


@FUZZ
@given(
    st.sampled_from([v for v in Verb if v is not Verb.HELP]),
    st.from_regex(r"--[^\s]*", fullmatch=True).filter(
        lambda t: t != "--cluster" and not t.startswith("--cluster=")
    ),
)
def test_any_option_but_cluster_is_refused_by_name(verb: Verb, option: str) -> None:
    result = parse(f"{verb.value} {option}")
    assert isinstance(result, UsageError)
    assert "is not an option of /migrate; the only one is `--cluster NAME`." in result.problem
    assert option.replace("`", "'").startswith(_spans(result.problem)[0].removesuffix("…"))


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, Command]:
    """A command as someone might type it, and what it means (the grammar's table, written out)."""
    verb = draw(st.sampled_from(list(Verb)))
    spelled = draw(st.sampled_from([verb.value, verb.value.upper(), verb.value.title()]))
    expected = Command(verb)
    args: list[str] = []
    if verb is Verb.CANARY:
        action = draw(st.sampled_from([None, *CanaryAction]))
        expected = Command(verb, canary=action or CanaryAction.STATUS)
        if action is not None:
            args = [draw(st.sampled_from([action.value, action.value.upper()]))]
    elif verb is Verb.AUDIT:
        limit = draw(st.one_of(st.none(), st.integers(1, AUDIT_MAX)))
        expected = Command(verb, limit=limit or 10)
        args = [str(limit)] if limit is not None else []
    elif verb in (Verb.PREVIEW, Verb.ROLLBACK, Verb.READINESS, Verb.SECURITY):
        wave = draw(st.one_of(st.none(), WAVE))
        expected = Command(verb, wave=wave)
        args = [wave] if wave is not None else []
    cluster = draw(st.one_of(st.none(), CLUSTER))
    if cluster is not None:
        flag = draw(st.sampled_from([["--cluster", cluster], [f"--cluster={cluster}"]]))
        at = draw(st.integers(0, len(args)))
        args = args[:at] + flag + args[at:]
        expected = Command(expected.verb, cluster, expected.wave, expected.canary, expected.limit)
    words = [spelled, *args]
    text = draw(SPACES).join(words)
    return draw(SPACES) + text + draw(SPACES), expected


@FUZZ
@given(well_formed())
def test_every_well_formed_command_means_what_it_says_however_it_is_spaced(case: tuple[str, Command]) -> None:
    text, expected = case
    assert parse(text) == expected


@FUZZ
@given(well_formed(), st.text(alphabet=string.ascii_letters + string.digits + "._-/:@", min_size=1))
def test_a_stray_word_is_refused_not_guessed(case: tuple[str, Command], stray: str) -> None:
    """One word too many never turns into another command than the one typed."""
    text, expected = case
    result = parse(f"{text} {stray}")
    if isinstance(result, Command):
        # Only a verb that takes one argument and had none can take the word: as that argument.
        assert (result.verb, result.cluster) == (expected.verb, expected.cluster)
        assert expected.wave is None and expected.limit in (None, 10)
    else:
        assert result.problem


def test_whatever_someone_without_a_role_types_is_answered_and_moves_no_wave(tmp_path: Path) -> None:
    with guarded_world(tmp_path, ["fuzz-a", "fuzz-b"]) as g:
        world = g.world
        g.requested("fuzz-a")
        waves = {c: (g.wave(c).state, g.wave(c).version) for c in ("fuzz-a", "fuzz-b")}
        words = st.sampled_from(
            [v.value for v in Verb]
            + ["--cluster", "fuzz-a", "fuzz-b", "nope", "--cluster=fuzz-b", "run", "1"]
        )

        @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(st.one_of(words, st.text(max_size=12)), max_size=5))
        def typing(tokens: list[str]) -> None:
            before = len(world.ephemerals("mallory"))
            audited = len(g.audit())
            delivery = world.people["mallory"].command("/migrate", " ".join(tokens), channel=MIGRATION)
            assert delivery.status == 200 and delivery.acked_in_time
            world.wait_for_ephemeral("mallory", before + 1)
            world.settle()
            [answer] = world.ephemerals("mallory")[before:]
            assert "internal error" not in answer, answer
            assert {c: (g.wave(c).state, g.wave(c).version) for c in waves} == waves
            added = g.audit()[audited:]
            assert all(who == PEOPLE["mallory"] and what == "access.denied" for who, what, _ in added), added

        typing()
        assert "Traceback" not in g.log.getvalue(), g.log.getvalue()
