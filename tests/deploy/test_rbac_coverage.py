"""rbac_coverage reads a request log the way the RBAC authorizer would: scopes, names, subresources,
impersonation and refusals."""

from __future__ import annotations

from typing import Any

from rbac_coverage import Grant, grants_for, rbac_coverage

SA = ("bots", "migratebot")
USER = "system:serviceaccount:bots:migratebot"
RBAC = "rbac.authorization.k8s.io/v1"

JSON = dict[str, Any]


def binding(kind: str, role_kind: str, name: str, namespace: str = "") -> JSON:
    meta: JSON = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": SA[1], "namespace": SA[0]}],
    }


MANIFESTS: list[JSON] = [
    {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": "bot"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "pods/eviction"], "verbs": ["list", "create"]},
            {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]},
        ],
    },
    binding("ClusterRoleBinding", "ClusterRole", "bot"),
    {
        "apiVersion": RBAC,
        "kind": "Role",
        "metadata": {"name": "lease", "namespace": "bots"},
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get"],
                "resourceNames": ["l"],
            }
        ],
    },
    binding("RoleBinding", "Role", "lease", "bots"),
    # Bound to someone else: not the bot's.
    {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "other"}, "rules": [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    {**binding("ClusterRoleBinding", "ClusterRole", "other"), "subjects": [{"kind": "User", "name": "bob"}]},
]  # fmt: skip


def entry(verb: str, resource: str, *, user: str | None = USER, code: int = 200, **kw: Any) -> JSON:
    resource, _, sub = resource.partition("/")
    return {"user": user, "verb": verb, "group": "", "resource": resource, "subresource": sub,
            "namespace": "", "name": "", "code": code, "impersonatedBy": None, **kw}  # fmt: skip


def test_rules_bound_to_the_account_expand_into_single_grants() -> None:
    grants = set(grants_for(MANIFESTS, SA))
    assert Grant("create", "", "pods/eviction") in grants
    assert Grant("get", "coordination.k8s.io", "leases", "l", "bots") in grants
    assert not any(g.verb == "*" for g in grants)  # the other ClusterRole is bob's
    assert len(grants) == 6


def test_a_grant_is_used_by_a_request_it_allows_and_refusals_are_listed() -> None:
    log = [
        entry("list", "pods"),
        entry("create", "pods/eviction", namespace="shop", name="web-1"),
        entry("get", "leases", group="coordination.k8s.io", namespace="other", name="l"),  # wrong namespace
        entry("delete", "pods", namespace="shop", name="web-1", code=403),
        entry("list", "pods", user="bob"),
    ]
    coverage = rbac_coverage(log, MANIFESTS, service_account=SA)
    assert {str(g).split(" (")[0] for g in coverage.used} == {"list pods", "create pods/eviction"}
    assert [e["verb"] for e in coverage.denied] == ["delete"]
    assert "unused: get coordination.k8s.io/leases" in coverage.report()


def test_an_impersonated_request_uses_the_impersonate_grant_not_the_verbs_grant() -> None:
    log = [
        entry("patch", "nodes", user="alice", impersonatedBy=USER, groups=["system:authenticated"]),
        entry("create", "pods/eviction", user=None, code=403),  # impersonation of someone else refused
    ]
    coverage = rbac_coverage(log, MANIFESTS, service_account=SA)
    assert [str(g).split(" (")[0] for g in coverage.used] == ['impersonate users "alice"']
    assert len(coverage.denied) == 1
