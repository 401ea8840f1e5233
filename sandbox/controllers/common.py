"""Small pure helpers the controllers share: quantities, conditions, scheduling predicates, events."""

from __future__ import annotations

import functools
import hashlib
import random
import re

import orjson

from sandbox.kube.jsontypes import JSON
from sandbox.kube.store import rfc3339

_SUFFIX = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "m": 0.001,
}
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
CRITICAL_PRIORITY_CLASSES = ("system-cluster-critical", "system-node-critical")
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def quantity(value: object) -> float:
    """A Kubernetes quantity ("100m", "2", "128Mi", "7910348Ki") as a float of base units."""
    if value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    return _quantity(str(value))


@functools.lru_cache(maxsize=4096)
def _quantity(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    if match is None:
        return 0.0
    number, suffix = match.groups()
    return float(number) * _SUFFIX.get(suffix, 1)


def pod_requests(pod: JSON) -> tuple[float, float]:
    cpu = mem = 0.0
    for c in pod.get("spec", {}).get("containers") or ():
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += quantity(req.get("cpu"))
        mem += quantity(req.get("memory"))
    return cpu, mem


def condition(obj: JSON, kind: str) -> JSON | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return None


def condition_true(obj: JSON, kind: str) -> bool:
    c = condition(obj, kind)
    return c is not None and c.get("status") == "True"


def set_condition(status: JSON, kind: str, value: str, reason: str, message: str, now: float) -> bool:
    """Set a condition in `status` (a copy the caller owns); False when nothing changed."""
    conditions = list(status.get("conditions") or [])
    for i, c in enumerate(conditions):
        if c.get("type") == kind:
            if c.get("status") == value and c.get("reason") == reason:
                return False
            changed = dict(c, status=value, reason=reason, message=message)
            if c.get("status") != value:
                changed["lastTransitionTime"] = rfc3339(now)
            conditions[i] = changed
            status["conditions"] = conditions
            return True
    conditions.append(
        {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": rfc3339(now),
        }
    )
    status["conditions"] = conditions
    return True


def node_ready(node: JSON) -> bool:
    return condition_true(node, "Ready")


def is_bottlerocket(node: JSON) -> bool:
    return str((node.get("status") or {}).get("nodeInfo", {}).get("osImage", "")).startswith("Bottlerocket")


def controller_ref(obj: JSON) -> JSON | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref(owner: JSON, *, controller: bool = True) -> JSON:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def terminal(pod: JSON) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_daemonset_pod(pod: JSON) -> bool:
    ref = controller_ref(pod)
    return ref is not None and ref.get("kind") == "DaemonSet"


def critical(pod: JSON) -> bool:
    return pod.get("spec", {}).get("priorityClassName") in CRITICAL_PRIORITY_CLASSES


def tolerates(tolerations: list[JSON], taint: JSON) -> bool:
    for t in tolerations:
        effect = t.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = t.get("key")
        operator = t.get("operator", "Equal")
        if not key:
            if operator == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if operator == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def untolerated_taint(pod: JSON, taints: list[JSON]) -> JSON | None:
    tolerations = pod.get("spec", {}).get("tolerations") or []
    for taint in taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint
    return None


def _expression_matches(expr: JSON, labels: dict[str, str]) -> bool:
    key, op = expr.get("key", ""), expr.get("operator", "")
    values = [str(v) for v in expr.get("values") or ()]
    present = key in labels
    value = labels.get(key, "")
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def node_selector_terms_match(terms: list[JSON], labels: dict[str, str], name: str) -> bool:
    """requiredDuringSchedulingIgnoredDuringExecution: terms ORed, expressions ANDed."""
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(_expression_matches(e, labels) for e in exprs) and all(
            _expression_matches(f, {"metadata.name": name}) for f in fields
        ):
            return True
    return False


def pod_fits_labels(pod: JSON, labels: dict[str, str], name: str) -> bool:
    """nodeSelector and required node affinity against a node's labels (and name)."""
    spec = pod.get("spec", {})
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    return not terms or node_selector_terms_match(terms, labels, name)


def template_hash(template: object) -> str:
    """A short stable hash like pod-template-hash (10 characters of the apiserver's safe alphabet)."""
    digest = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def random_suffix(n: int = 5) -> str:
    return "".join(random.choices(_ALPHABET, k=n))


def duration_seconds(text: object) -> float | None:
    """ "30s", "5m", "1h30m", "Never" (None)."""
    if text is None or text == "Never":
        return None
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(h|ms|m|s)", str(text)):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total
