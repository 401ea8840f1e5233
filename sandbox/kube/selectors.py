"""Label and field selectors with the apimachinery grammar (labels.Parse, fields.ParseSelector)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON, JSONValue


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and labels[self.key] in self.values
        # "!=" and "notin" match objects without the key, as in apimachinery.
        return not has or labels[self.key] not in self.values


_LABEL_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_TOKEN = re.compile(
    rf"\s*(?:(?P<not>!)\s*(?P<nkey>{_LABEL_KEY})"
    rf"|(?P<key>{_LABEL_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)"
    rf"|\s+(?P<setop>in|notin)\s*\((?P<set>[^)]*)\)|))\s*(?:,|$)"
)


def parse_label_selector(text: str) -> list[Requirement]:
    reqs: list[Requirement] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise errors.bad_request(
                f"unable to parse requirement: found '{text[pos:]}', expected: label selector"
            )
        pos = m.end()
        if m.group("not"):
            reqs.append(Requirement(m.group("nkey"), "!", frozenset()))
        elif m.group("op"):
            op = "!=" if m.group("op") == "!=" else "="
            reqs.append(Requirement(m.group("key"), op, frozenset({m.group("value")})))
        elif m.group("setop"):
            values = frozenset(v.strip() for v in m.group("set").split(",") if v.strip())
            reqs.append(Requirement(m.group("key"), m.group("setop"), values))
        else:
            reqs.append(Requirement(m.group("key"), "exists", frozenset()))
    return reqs


def label_selector_from_object(selector: JSON | None) -> list[Requirement] | None:
    """metav1.LabelSelector (matchLabels + matchExpressions) → requirements; None matches nothing."""
    if selector is None:
        return None
    reqs = [Requirement(k, "=", frozenset({v})) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or ():
        reqs.append(Requirement(expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or ())))
    return reqs


def labels_match(reqs: list[Requirement], obj: JSON) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]
    equal: bool
    value: str


def parse_field_selector(text: str, allowed: tuple[str, ...], kind: str) -> list[FieldRequirement]:
    reqs: list[FieldRequirement] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", part)
        if m is None:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        label, op, value = m.groups()
        if label not in ("metadata.name", "metadata.namespace") and label not in allowed:
            # Same wording as the apiserver's field label conversion failure.
            raise errors.bad_request(f"field label not supported: {label}")
        path = ("source", "component") if label == "source" else tuple(label.split("."))
        reqs.append(FieldRequirement(path, op != "!=", value))
    return reqs


_BOOL_FIELDS = frozenset({("spec", "unschedulable"), ("spec", "hostNetwork")})


def _field_value(obj: JSON, path: tuple[str, ...]) -> str:
    cur: JSONValue = obj
    for p in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        # Go renders an unset bool field as "false" (fmt.Sprint(node.Spec.Unschedulable)).
        return "false" if path in _BOOL_FIELDS else ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs: list[FieldRequirement], obj: JSON) -> bool:
    return all((_field_value(obj, r.path) == r.value) == r.equal for r in reqs)


def predicate(
    label_reqs: list[Requirement] | None, field_reqs: list[FieldRequirement] | None
) -> Callable[[JSON], bool] | None:
    if not label_reqs and not field_reqs:
        return None
    lr = label_reqs or []
    fr = field_reqs or []

    def match(obj: JSON) -> bool:
        return labels_match(lr, obj) and fields_match(fr, obj)

    return match
