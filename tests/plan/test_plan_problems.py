"""Bad plans: every problem is reported at its file:line:column, with its path, what is wrong and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_text import at, edited, example_text, only_problem_in, position, problems_in

from bot.domain.errors import DomainError
from bot.plan import PlanInvalid, PlanProblem, load_plan, parse_plan

ONCALL_ROLE = "  oncall:\n    usergroups: [S0ONCALL01]\n    users: [U0ONCALL01]\n"
SECOND_CLUSTER = (
    "    kube_context: sandbox-demo\n",
    "    kube_context: sandbox-demo\n  - name: sandbox-two\n    region: eu-west-1\n    kube_context: two\n",
)


def test_a_problem_reads_as_file_line_column_path_message_and_fix() -> None:
    problem = PlanProblem(
        "plan.yaml",
        12,
        5,
        "waves[1].selector",
        "a wave needs at least one selector",
        "add nodepools, managed_node_groups, node_labels or namespaces",
    )

    assert str(problem) == (
        "plan.yaml:12:5: waves[1].selector: a wave needs at least one selector — fix: add nodepools, "
        "managed_node_groups, node_labels or namespaces"
    )


def test_plan_invalid_is_a_domain_error_that_carries_every_problem() -> None:
    with pytest.raises(PlanInvalid) as caught:
        parse_plan("", "plan.yaml")

    assert isinstance(caught.value, DomainError)
    assert caught.value.problems
    assert "plan.yaml:1:1" in str(caught.value)


def test_an_unknown_key_is_cited_at_the_key_with_the_closest_valid_key() -> None:
    text = edited(("  interval: 30s", "  intervall: 30s"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "intervall")
    assert problem.path == "canary.intervall"
    assert "unknown key 'intervall'" in problem.message
    assert "did you mean 'interval'?" in problem.fix


def test_a_missing_role_is_cited_at_the_roles_mapping() -> None:
    text = edited((ONCALL_ROLE, ""))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "roles:")
    assert problem.path == "roles.oncall"
    assert "role oncall is missing" in problem.message
    assert "on-call answers canary alerts" in problem.message
    assert "usergroups" in problem.fix


def test_a_role_that_nobody_holds_is_refused() -> None:
    text = edited((ONCALL_ROLE, "  oncall:\n    users: []\n"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "oncall:")
    assert problem.path == "roles.oncall"
    assert "nobody holds this role" in problem.message


def test_a_wave_without_a_selector_is_cited_at_its_selector() -> None:
    text = edited(("      nodepools: [general-al2]\n", "      nodepools: []\n"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "selector:", after="karpenter-general")
    assert problem.path == "waves[1].selector"
    assert problem.message == "a wave needs at least one selector"
    assert problem.fix == "add nodepools, managed_node_groups, node_labels or namespaces"


def test_two_waves_with_one_name_are_refused_at_the_second_name() -> None:
    text = edited(("- name: batch-and-data", "- name: stateless-web"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "stateless-web", after="karpenter-general")
    assert problem.path == "waves[2].name"
    assert "'stateless-web' is used by an earlier wave" in problem.message


def test_two_clusters_with_one_name_are_refused() -> None:
    text = edited(
        (
            "    kube_context: sandbox-demo\n",
            "    kube_context: sandbox-demo\n"
            "  - name: sandbox-demo\n    region: eu-west-1\n    kube_context: b\n",
        )
    )

    problems = problems_in(text)

    assert problems[0].path == "clusters[1].name"
    assert at(problems[0]) == position(text, "sandbox-demo", after="kube_context: sandbox-demo\n  - name: ")
    assert "listed twice" in problems[0].message


def test_bottlerocket_latest_needs_allow_latest() -> None:
    text = edited(("bottlerocket@v1.26.2", "bottlerocket@latest"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "bottlerocket@latest")
    assert problem.path == "target.ec2nodeclass.ami_alias"
    assert "bottlerocket@latest" in problem.message
    assert "allow_latest: true" in problem.fix


def test_bottlerocket_latest_with_allow_latest_is_accepted() -> None:
    plan = parse_plan(
        edited(("bottlerocket@v1.26.2", "bottlerocket@latest\n    allow_latest: true")), "plan.yaml"
    )

    assert plan.target.ec2nodeclass.allow_latest is True


@pytest.mark.parametrize(
    ("alias", "words"),
    [
        ("bottlerocket@v1.26", "not pinned"),
        ("bottlerocket@1.26.2", "not pinned"),
        ("al2023@latest", "not a Bottlerocket AMI alias"),
    ],
)
def test_an_ami_alias_must_be_a_pinned_bottlerocket_release(alias: str, words: str) -> None:
    text = edited(("bottlerocket@v1.26.2", alias))

    problem = only_problem_in(text)

    assert at(problem) == position(text, alias)
    assert words in problem.message
    assert "bottlerocket@v<major>.<minor>.<patch>" in problem.fix


def test_more_required_approvals_than_team_leads_can_never_be_met() -> None:
    text = edited(("required: 1", "required: 3"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "3", after="required:")
    assert problem.path == "approvals.required"
    assert "3 approvals are required but roles.team_leads has only 2 users" in problem.message
    assert "lower approvals.required to 2" in problem.fix


def test_team_leads_given_as_a_usergroup_accept_any_required_count() -> None:
    text = edited(
        ("required: 1", "required: 3"),
        ("    users: [U0LEAD0001, U0LEAD0002]", "    usergroups: [S0LEADS001]"),
        ("  U0LEAD0001: {user", "  S0LEADS001: {user"),
    )

    assert parse_plan(text, "plan.yaml").approvals.required == 3


def test_zero_required_approvals_are_refused() -> None:
    text = edited(("required: 1", "required: 0"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "0", after="required:")
    assert problem.path == "approvals.required"
    assert "at least one team lead's approval" in problem.message


def test_self_approval_is_not_a_setting() -> None:
    text = edited(("  required: 1\n", "  required: 1\n  self_approval: true\n"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "self_approval")
    assert problem.path == "approvals.self_approval"
    assert "self-approval is always forbidden" in problem.message
    assert "remove self_approval" in problem.fix


def test_malformed_yaml_is_one_problem_at_the_parsers_position() -> None:
    text = edited(("  expires_after: 30m", "  expires_after: [30m"))

    problem = only_problem_in(text)

    # The flow sequence never closes; the parser notices at the next mapping value, `target:`.
    assert at(problem) == position(text, ":", after="\ntarget")
    assert problem.path == ""
    assert "the YAML is malformed" in problem.message
    assert "expected ',' or ']'" in problem.message


def test_a_mapping_value_on_the_same_line_is_malformed_yaml() -> None:
    text = edited(("  expires_after: 30m", "  expires_after: 30m: 1h"))

    problem = only_problem_in(text)

    assert at(problem) == (position(text, "30m: 1h")[0], position(text, ": 1h")[1])
    assert "mapping values are not allowed here" in problem.message


@pytest.mark.parametrize(
    ("bake", "words"),
    [
        ("3 minutes", "'3 minutes' is not a duration"),
        ("0s", "'0s' is zero"),
        ("30m1h", "largest unit first"),
        ("120", "120 has no unit"),
    ],
)
def test_a_bad_duration_is_cited_at_its_value_with_examples(bake: str, words: str) -> None:
    text = edited(("bake: 3m", f"bake: {bake}"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, bake, after="batch-and-data")
    assert problem.path == "waves[2].bake"
    assert words in problem.message
    assert "1h30m" in problem.fix


def test_a_bad_cron_schedule_is_cited_at_the_schedule() -> None:
    text = edited(('"0 0 * * *"', '"0 25 * * *"'))

    problem = only_problem_in(text)

    assert at(problem) == position(text, '"0 25')
    assert problem.path == "change_windows[0].schedule"
    assert "'0 25 * * *' is not a 5-field cron schedule" in problem.message
    assert "higher than the maximum value (23)" in problem.message


def test_a_cron_schedule_with_six_fields_is_refused() -> None:
    text = edited(('"0 0 * * *"', '"0 0 0 * * *"'))

    problem = only_problem_in(text)

    assert problem.path == "change_windows[0].schedule"
    assert "Wrong number of fields" in problem.message


def test_an_unknown_timezone_is_cited_at_its_value() -> None:
    text = edited(("timezone: UTC", "timezone: Mars/Olympus_Mons"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "Mars/")
    assert problem.path == "change_windows[0].timezone"
    assert "'Mars/Olympus_Mons' is not an IANA time zone" in problem.message
    assert "Europe/Berlin" in problem.fix


def test_drift_without_a_nodepools_selector_is_refused() -> None:
    text = edited(("      nodepools: [general-al2]\n", "      node_labels: {team: web}\n"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "drift")
    assert problem.path == "waves[1].strategy"
    assert "selects no nodepools" in problem.message
    assert "strategy: drain" in problem.fix


def test_a_wave_naming_an_unknown_cluster_is_cited_at_the_name() -> None:
    text = edited(("    strategy: drift\n", "    strategy: drift\n    cluster: sandbox-dmeo\n"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "sandbox-dmeo")
    assert problem.path == "waves[1].cluster"
    assert "names cluster 'sandbox-dmeo', which the plan doesn't define" in problem.message
    assert "sandbox-demo" in problem.fix


def test_with_several_clusters_every_wave_must_name_its_cluster() -> None:
    text = edited(
        SECOND_CLUSTER,
        (
            "    strategy: drain\n    max_parallel_nodes: 4",
            "    cluster: sandbox-two\n    strategy: drain\n    max_parallel_nodes: 4",
        ),
        ("    strategy: drift\n", "    strategy: drift\n    cluster: sandbox-demo\n"),
    )

    problem = only_problem_in(text)

    assert at(problem) == position(text, "name: batch-and-data")
    assert problem.path == "waves[2]"
    assert "doesn't say which cluster it moves, and the plan has 2" in problem.message
    assert "sandbox-demo, sandbox-two" in problem.fix


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        ("C0ALERTS01", "ALERTS-ROOM", "channels.alerts", "not a Slack channel ID"),
        ("U0SRE00002", "alice", "roles.sre.users[1]", "not a Slack user ID"),
        ("S0ONCALL01", "oncall-team", "roles.oncall.usergroups[0]", "not a Slack user group ID"),
    ],
)
def test_slack_ids_must_look_like_slack_ids(old: str, new: str, path: str, words: str) -> None:
    text = edited((old, new))

    problem = only_problem_in(text)

    assert at(problem) == position(text, new)
    assert problem.path == path
    assert words in problem.message


def test_the_migration_and_alerts_channels_may_be_the_same() -> None:
    plan = parse_plan(edited(("alerts: C0ALERTS01", "alerts: C0MIGRATION")), "plan.yaml")

    assert plan.channels.alerts == plan.channels.migration


def test_impersonating_someone_without_a_role_is_cited_at_the_key() -> None:
    text = edited(("  U0LEAD0001: {user", "  U0NOBODY01: {user"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "U0NOBODY01")
    assert problem.path == "impersonation.U0NOBODY01"
    assert "holds no role in the plan" in problem.message


def test_a_plan_without_waves_is_refused() -> None:
    text = example_text()
    text = text.replace(text[text.index("waves:") : text.index("change_windows:")], "waves: []\n\n")

    problem = only_problem_in(text)

    assert at(problem) == position(text, "waves:")
    assert problem.path == "waves"
    assert problem.message == "the plan has no waves"


def test_every_duplicate_key_is_reported_with_the_first_occurrence() -> None:
    text = edited(("  failure_limit: 2\n", "  failure_limit: 2\n  failure_limit: 3\n  failure_limit: 4\n"))

    problems = problems_in(text)

    first = position(text, "failure_limit")
    assert [at(p) for p in problems] == [(first[0] + 1, 3), (first[0] + 2, 3)]
    assert all(p.path == "canary.failure_limit" for p in problems)
    assert all(f"first on line {first[0]}" in p.message for p in problems)


def test_yes_is_not_a_boolean_in_a_plan() -> None:
    text = edited(("finish_running_wave: true", "finish_running_wave: yes"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "yes")
    assert "expected true or false, got the text 'yes'" in problem.message


def test_a_missing_key_in_a_wave_is_cited_at_the_wave() -> None:
    text = edited(("  - name: karpenter-general\n    selector:", "  - selector:"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "selector:", after="ng-web]")
    assert problem.path == "waves[1].name"
    assert problem.message == "name is missing"
    assert problem.fix == "add name: stateless-web"


def test_a_missing_top_level_section_is_cited_at_the_document() -> None:
    text = edited(("channels:\n  migration: C0MIGRATION", "xchannels:\n  migration: C0MIGRATION"))

    problems = problems_in(text)

    assert [(p.path, p.message) for p in problems] == [
        ("channels", "channels is missing"),
        ("xchannels", "unknown key 'xchannels'"),
    ]
    assert at(problems[0]) == position(text, "version")
    assert "did you mean 'channels'?" in problems[1].fix


def test_every_problem_in_a_plan_is_reported_in_file_order() -> None:
    text = edited(
        ("U0SRE00002", "bob"),
        ("  required: 1\n", "  required: 1\n  self_approval: true\n"),
        ("      nodepools: [general-al2]\n", "      nodepools: []\n"),
        ("- name: batch-and-data", "- name: stateless-web"),
        ('"0 0 * * *"', '"every day"'),
        ("  interval: 30s", "  intervall: 30s"),
    )

    problems = problems_in(text)

    assert [p.path for p in problems] == [
        "roles.sre.users[1]",
        "approvals.self_approval",
        "waves[1].selector",
        "waves[2].name",
        "change_windows[0].schedule",
        "canary.intervall",
    ]
    assert [at(p) for p in problems] == [
        position(text, "bob"),
        position(text, "self_approval"),
        position(text, "selector:", after="karpenter-general"),
        position(text, "stateless-web", after="karpenter-general"),
        position(text, '"every day"'),
        position(text, "intervall"),
    ]


def test_an_empty_plan_is_refused() -> None:
    for text in ("", "# nothing but a comment\n"):
        problem = only_problem_in(text)

        assert at(problem) == (1, 1)
        assert problem.message == "the plan is empty"


def test_a_plan_that_is_a_list_is_refused() -> None:
    problem = only_problem_in("- version: 1\n")

    assert at(problem) == (1, 1)
    assert "a plan is a mapping of sections" in problem.message


def test_aliases_that_expand_without_end_are_refused() -> None:
    levels = ["x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"x{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 7)]

    problem = only_problem_in("\n".join(levels) + "\n")

    assert "expands to more than" in problem.message


def test_a_missing_file_is_a_problem_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(PlanInvalid) as caught:
        load_plan(tmp_path / "nope.yaml")

    (problem,) = caught.value.problems
    assert problem.line is None
    assert str(problem) == (
        f"{tmp_path / 'nope.yaml'}: there is no file at this path — fix: check the path; "
        "see examples/plan.yaml for a complete, valid plan"
    )


def test_a_directory_is_not_a_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanInvalid) as caught:
        load_plan(tmp_path)

    assert caught.value.problems[0].message == "this is a directory, not a plan file"


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")

    with pytest.raises(PlanInvalid) as caught:
        load_plan(path)

    assert "not UTF-8" in caught.value.problems[0].message


def test_a_duplicate_key_does_not_hide_the_other_problems() -> None:
    text = edited(
        ("  failure_limit: 2\n", "  failure_limit: 2\n  failure_limit: 3\n"), ("bake: 3m", "bake: 3")
    )

    problems = problems_in(text)

    assert [(p.path, at(p)) for p in problems] == [
        ("waves[2].bake", position(text, "3", after="bake: ")),
        ("canary.failure_limit", position(text, "failure_limit", after="failure_limit: 2\n")),
    ]
    assert "3 has no unit" in problems[0].message


def test_a_prometheus_check_needs_a_prometheus() -> None:
    text = edited(("pending, events]", "pending, events, prometheus_query]"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "prometheus_query")
    assert problem.path == "canary.checks[6]"
    assert "needs a Prometheus to ask" in problem.message


def test_blocking_pod_selectors_must_be_label_selectors() -> None:
    text = edited(("pod_selectors: []", "pod_selectors: ['app=db, tier in (a,b), !canary', 'a in (b']"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "'a in (b'")
    assert problem.path == "blocking.pod_selectors[1]"
    assert "not a Kubernetes label selector" in problem.message


def test_a_numeric_requirement_needs_one_integer_value() -> None:
    text = edited(("operator: In\n        values: [amd64]", "operator: Gt\n        values: [a]"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "[a]")
    assert problem.path == "target.nodepool.requirements[1].values"
    assert "exactly one non-negative integer value" in problem.message


def test_a_boolean_label_value_must_be_quoted() -> None:
    text = edited(("migratebot.io/os: bottlerocket", "migratebot.io/os: true"))

    problem = only_problem_in(text)

    assert at(problem) == position(text, "true", after="migratebot.io/os: ")
    assert problem.path == 'target.nodepool.labels["migratebot.io/os"]'
    assert problem.fix == 'quote it so YAML keeps it as text: "true"'
