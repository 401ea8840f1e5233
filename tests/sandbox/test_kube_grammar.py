"""Selectors and patches parse and apply the way apimachinery does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.kube import errors
from sandbox.kube.patch import json_patch, merge_patch, strategic_merge_patch
from sandbox.kube.selectors import fields_match, labels_match, parse_field_selector, parse_label_selector


def obj(labels: dict[str, str]) -> dict[str, object]:
    return {"metadata": {"labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web,tier=front", {"app": "web"}, False),
        ("app!=web", {}, True),
        ("env in (prod, staging)", {"env": "staging"}, True),
        ("env notin (prod)", {"env": "prod"}, False),
        ("env notin (prod)", {}, True),
        ("!karpenter.sh/nodepool", {"karpenter.sh/nodepool": "x"}, False),
        ("karpenter.sh/nodepool", {"karpenter.sh/nodepool": "x"}, True),
        ("app=web,env in (a,b),!gone", {"app": "web", "env": "b"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), obj(labels)) is expected


def test_field_selectors_compare_strings_and_refuse_unknown_labels() -> None:
    node = {"metadata": {"name": "n"}, "spec": {}}
    allowed = ("spec.unschedulable",)
    assert fields_match(parse_field_selector("spec.unschedulable=false", allowed, "Node"), node)
    assert not fields_match(parse_field_selector("metadata.name!=n", allowed, "Node"), node)
    with pytest.raises(errors.ApiError) as e:
        parse_field_selector("spec.providerID=x", allowed, "Node")
    assert e.value.message == "field label not supported: spec.providerID"


def test_strategic_merge_merges_containers_by_name_and_honours_delete() -> None:
    pod = {
        "spec": {
            "containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
            "tolerations": [{"key": "x"}],
        }
    }
    patched = strategic_merge_patch(
        pod,
        {
            "spec": {
                "containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}],
                "tolerations": [{"key": "y"}],
            }
        },
    )
    assert patched["spec"]["containers"] == [{"name": "b", "image": "2"}]
    assert patched["spec"]["tolerations"] == [{"key": "y"}]  # no patchStrategy: replaced


def test_strategic_merge_conditions_by_type_and_finalizers_as_a_set() -> None:
    node = {
        "metadata": {"finalizers": ["a"]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    patched = strategic_merge_patch(
        node,
        {"metadata": {"finalizers": ["b"]}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
    )
    assert patched["metadata"]["finalizers"] == ["a", "b"]
    assert patched["status"]["conditions"] == [{"type": "Ready", "status": "False"}]


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"items": [1, 2]}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "replace", "path": "/spec/items/0", "value": 9},
            {"op": "add", "path": "/spec/items/-", "value": 3},
            {"op": "test", "path": "/spec/items/1", "value": 2},
        ],
    )
    assert out == {"metadata": {"labels": {"b/c": "2"}}, "spec": {"items": [9, 2, 3]}}
    with pytest.raises(errors.ApiError):
        json_patch(out, [{"op": "remove", "path": "/nope"}])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)


@given(
    st.dictionaries(st.text(max_size=3), json_values, max_size=4),
    st.dictionaries(st.text(max_size=3), json_values, max_size=4),
)
def test_merge_patch_removes_null_keys_and_is_idempotent(
    target: dict[str, object], patch: dict[str, object]
) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once
    assert all(k not in once for k, v in patch.items() if v is None)


label_keys = st.from_regex(
    r"\A([a-z0-9]([-a-z0-9]{0,8}\.)?[a-z]{1,5}/)?[a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?\Z"
)
label_values = st.from_regex(r"\A([a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?)?\Z")


@st.composite
def requirements(draw: st.DrawFn) -> tuple[str, tuple[str, str, frozenset[str]]]:
    key = draw(label_keys)
    op = draw(st.sampled_from(["=", "!=", "in", "notin", "exists", "!"]))
    if op in ("=", "!="):
        value = draw(label_values)
        return f"{key}{op}{value}", (key, op, frozenset({value}))
    if op in ("in", "notin"):
        values = draw(st.lists(label_values.filter(bool), min_size=1, max_size=3))
        return f"{key} {op} ({', '.join(values)})", (key, op, frozenset(values))
    return (key if op == "exists" else f"!{key}"), (key, op, frozenset())


@given(st.lists(requirements(), min_size=1, max_size=4))
def test_label_selector_grammar_round_trips(reqs: list[tuple[str, tuple[str, str, frozenset[str]]]]) -> None:
    text = ",".join(r[0] for r in reqs)
    parsed = parse_label_selector(text)
    assert [(r.key, r.op, r.values) for r in parsed] == [r[1] for r in reqs]
