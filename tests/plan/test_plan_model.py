"""The example plan, its hash, and what the rest of migratebot asks of a plan."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from plan_text import EXAMPLE, edited, example_text
from pydantic import ValidationError
from ruamel.yaml import YAML

from bot.plan import (
    Check,
    Plan,
    Strategy,
    UnknownCluster,
    load_plan,
    parse_plan,
    plan_hash,
)


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def test_the_example_plan_is_valid() -> None:
    plan = load_plan(EXAMPLE)

    assert [wave.name for wave in plan.waves] == ["stateless-web", "karpenter-general", "batch-and-data"]
    assert plan.waves[1].strategy is Strategy.DRIFT
    assert plan.waves[0].bake == timedelta(minutes=2)
    assert plan.change_windows[0].duration == timedelta(hours=24)
    assert plan.canary.checks[0] is Check.NODES_READY


def test_the_hash_ignores_comments_formatting_and_key_order() -> None:
    data = YAML(typ="safe").load(example_text())
    as_json = json.dumps(_reordered(data), indent=7)  # JSON is YAML: same plan, other text
    without_comments = "\n".join(line.split(" #")[0] for line in example_text().splitlines())

    hashes = {
        plan_hash(parse_plan(text, "plan.yaml")) for text in (example_text(), as_json, without_comments)
    }

    assert len(hashes) == 1
    assert len(hashes.pop()) == 64


def test_the_hash_changes_when_the_plan_does() -> None:
    before = plan_hash(parse_plan(example_text(), "plan.yaml"))
    after = plan_hash(parse_plan(edited(("bake: 3m", "bake: 4m")), "plan.yaml"))

    assert before != after


def test_spelling_out_a_default_does_not_change_the_hash() -> None:
    spelled = edited(("  bake: 2m\n", "  bake: 2m\n    force_unreplicated: false\n"))

    assert plan_hash(parse_plan(spelled, "plan.yaml")) == plan_hash(parse_plan(example_text(), "plan.yaml"))


def test_a_plan_is_frozen() -> None:
    plan = load_plan(EXAMPLE)

    with pytest.raises(ValidationError):
        plan.waves[0].max_parallel_nodes = 99  # type: ignore[misc]


def test_a_plan_built_in_code_keeps_the_rules_between_sections() -> None:
    data = YAML(typ="safe").load(edited(("- name: batch-and-data", "- name: stateless-web")))

    with pytest.raises(ValidationError) as caught:
        Plan.model_validate(data)

    assert caught.value.errors()[0]["loc"] == ("waves", 2, "name")


def test_waves_without_a_cluster_belong_to_the_only_cluster() -> None:
    plan = load_plan(EXAMPLE)

    assert plan.cluster("sandbox-demo").region == "us-west-2"
    assert [w.name for w in plan.waves_for("sandbox-demo")] == [w.name for w in plan.waves]


def test_waves_are_split_between_clusters_by_name() -> None:
    text = edited(
        (
            "    kube_context: sandbox-demo\n",
            "    kube_context: sandbox-demo\n  - name: two\n    region: eu-west-1\n    kube_context: two\n",
        ),
        (
            "    strategy: drain\n    max_parallel_nodes: 4",
            "    cluster: two\n    strategy: drain\n    max_parallel_nodes: 4",
        ),
        ("    strategy: drift\n", "    strategy: drift\n    cluster: sandbox-demo\n"),
        (
            "    strategy: drain\n    max_parallel_nodes: 2",
            "    cluster: two\n    strategy: drain\n    max_parallel_nodes: 2",
        ),
    )
    plan = parse_plan(text, "plan.yaml")

    assert [w.name for w in plan.waves_for("two")] == ["stateless-web", "batch-and-data"]
    assert [w.name for w in plan.waves_for("sandbox-demo")] == ["karpenter-general"]


def test_asking_for_an_unknown_cluster_names_the_known_ones() -> None:
    plan = load_plan(EXAMPLE)

    with pytest.raises(UnknownCluster, match="use one of: sandbox-demo"):
        plan.waves_for("prod")


def test_the_summary_tells_what_moves_where_when_and_who_decides() -> None:
    plan = load_plan(EXAMPLE)

    summary = plan.summary()

    assert [c.name for c in summary.clusters] == ["sandbox-demo"]
    assert [
        (w.index, w.name, w.strategy, w.selector, w.max_parallel_nodes, w.bake) for w in summary.waves
    ] == [
        (1, "stateless-web", "drain", "managed_node_groups=ng-web", 4, "2m"),
        (2, "karpenter-general", "drift", "nodepools=general-al2", 2, "2m"),
        (3, "batch-and-data", "drain", "managed_node_groups=ng-batch,ng-data", 2, "3m"),
    ]
    assert {r.name: (r.users, r.usergroups) for r in summary.roles} == {
        "sre": (2, 0),
        "team_leads": (2, 0),
        "oncall": (1, 1),
    }
    assert summary.approvals == "1 team lead approval, request expires after 30m"
    assert summary.change_windows == ('"0 0 * * *" (UTC) for 1d, finishes a running wave',)
    assert summary.plan_hash == plan_hash(plan)


def test_sections_left_out_take_their_documented_defaults() -> None:
    text = example_text()
    for section in ("approvals:", "canary:", "blocking:", "impersonation:"):
        start = text.index(section)
        end = text.find("\n\n", start)
        text = text[:start] + (text[end + 2 :] if end != -1 else "")

    plan = parse_plan(text, "plan.yaml")

    assert plan.approvals.required == 1
    assert plan.approvals.expires_after == timedelta(minutes=30)
    assert plan.canary.interval == timedelta(minutes=1)
    assert Check.PROMETHEUS_QUERY not in plan.canary.checks
    assert plan.blocking.pod_selectors == ()
    assert plan.impersonation == {}
