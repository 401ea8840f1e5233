"""Which rendered RBAC grants a run used, and which of its requests were refused.

Pure: give it the sandbox's request log (`SandboxServer.api.log.since(0)[0]`: one dict per request
with user, verb, group, resource, subresource, namespace, name, code and impersonatedBy) and the
chart's rendered manifests; it expands every rule bound to the service account into single grants
(one verb on one resource, one name, one scope) and marks each grant a logged request of that
account would have been allowed by.

    result = rbac_coverage(log, manifests, service_account=("migratebot", "migratebot"))
    assert result.denied == []          # nothing got 403
    assert result.unused == []          # every grant was needed (only for a run that does everything)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = Mapping[str, Any]

RBAC = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True, order=True)
class Grant:
    """One verb on one resource the rules allow: `name` "" is any name, `namespace` "" any namespace."""

    verb: str
    group: str
    resource: str  # "pods/eviction" for a subresource
    name: str = ""
    namespace: str = ""
    source: str = field(default="", compare=False)  # e.g. 'ClusterRole "migratebot"'

    @property
    def key(self) -> str:
        """The grant without its source: 'list apps/deployments in namespace m'."""
        resource = f"{self.group}/{self.resource}" if self.group else self.resource
        text = f"{self.verb} {resource}"
        if self.name:
            text += f' "{self.name}"'
        if self.namespace:
            text += f" in namespace {self.namespace}"
        return text

    def __str__(self) -> str:
        return f"{self.key} ({self.source})" if self.source else self.key

    def allows(self, verb: str, group: str, resource: str, name: str, namespace: str) -> bool:
        """The RBAC authorizer's match (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac)."""
        return (
            self.verb in ("*", verb)
            and self.group in ("*", group)
            and _resource_matches(self.resource, resource)
            and (not self.name or self.name == name)
            and (not self.namespace or self.namespace == namespace)
        )


@dataclass(frozen=True)
class Coverage:
    grants: tuple[Grant, ...]
    used: tuple[Grant, ...]
    unused: tuple[Grant, ...]
    denied: tuple[JSON, ...]  # the log entries that got 403

    def report(self) -> str:
        lines = [f"{len(self.used)} of {len(self.grants)} granted permissions used"]
        lines += [f"  unused: {g}" for g in self.unused]
        lines += [f"  denied: {describe(e)}" for e in self.denied]
        return "\n".join(lines)


def _resource_matches(granted: str, wanted: str) -> bool:
    if granted in ("*", wanted):
        return True
    resource, _, sub = wanted.partition("/")
    return bool(sub) and granted in (f"*/{sub}", f"{resource}/*")


def describe(entry: JSON) -> str:
    resource = entry.get("resource") or entry.get("path", "")
    if entry.get("subresource"):
        resource += f"/{entry['subresource']}"
    where = f" in {entry['namespace']}" if entry.get("namespace") else ""
    name = f" {entry['name']}" if entry.get("name") else ""
    group = entry.get("group") or "core"
    return f"{entry.get('user')} {entry.get('verb')} {group}/{resource}{name}{where} → {entry.get('code')}"


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def _binds(binding: JSON, namespace: str, name: str) -> bool:
    binding_ns = (binding.get("metadata") or {}).get("namespace", "")
    return any(
        s.get("kind") == "ServiceAccount"
        and s.get("name") == name
        and (s.get("namespace") or binding_ns) == namespace
        for s in binding.get("subjects") or ()
    )


def _expand(rule: JSON, namespace: str, source: str) -> list[Grant]:
    names = list(rule.get("resourceNames") or [""])
    return [
        Grant(verb, group, resource, name, namespace, source)
        for group in rule.get("apiGroups") or ()
        for resource in rule.get("resources") or ()
        for verb in rule.get("verbs") or ()
        for name in names
    ]


def grants_for(manifests: Iterable[JSON], service_account: tuple[str, str]) -> list[Grant]:
    """Every grant the manifests' (Cluster)RoleBindings give the service account (namespace, name)."""
    namespace, name = service_account
    docs = [d for d in manifests if d.get("apiVersion") == RBAC]
    cluster_roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    roles = {
        (d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"
    }
    grants: list[Grant] = []
    for binding in docs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding") or not _binds(
            binding, namespace, name
        ):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace", "") if binding["kind"] == "RoleBinding" else ""
        role = (
            cluster_roles.get(ref["name"])
            if ref["kind"] == "ClusterRole"
            else roles.get((scope, ref["name"]))
        )
        if role is None:
            continue
        source = f'{ref["kind"]} "{ref["name"]}"'
        for rule in role.get("rules") or ():
            grants.extend(_expand(rule, scope, source))
    return grants


def _wanted(entry: JSON, user: str) -> list[tuple[str, str, str, str, str]]:
    """(verb, group, resource, name, namespace) the service account needed for this entry."""
    if entry.get("impersonatedBy") == user:
        # The request itself ran with the impersonated identity's rights; ours were `impersonate`.
        target = str(entry.get("user") or "")
        wanted = []
        if target.startswith("system:serviceaccount:"):
            _, _, ns, sa = target.split(":", 3)
            wanted.append(("impersonate", "", "serviceaccounts", sa, ns))
        else:
            wanted.append(("impersonate", "", "users", target, ""))
        wanted += [("impersonate", "", "groups", g, "") for g in entry.get("groups") or ()]
        return wanted
    if entry.get("user") != user or not entry.get("resource"):
        return []
    resource = str(entry["resource"])
    if entry.get("subresource"):
        resource += f"/{entry['subresource']}"
    return [
        (
            str(entry.get("verb")),
            str(entry.get("group") or ""),
            resource,
            str(entry.get("name") or ""),
            str(entry.get("namespace") or ""),
        )
    ]


def rbac_coverage(
    log: Iterable[JSON],
    manifests: Sequence[JSON],
    *,
    service_account: tuple[str, str],
) -> Coverage:
    """Grants used and unused by the service account's requests in `log`, and its refused requests.

    A refused impersonation is logged before the apiserver knows who acts (user None): such 403s
    count as denied too, since only impersonating callers can produce them.
    """
    user = service_account_user(*service_account)
    grants = sorted(set(grants_for(manifests, service_account)))
    used: set[Grant] = set()
    denied: list[JSON] = []
    for entry in log:
        ours = entry.get("user") == user or entry.get("impersonatedBy") == user
        if entry.get("code") == 403 and (ours or entry.get("user") is None):
            denied.append(entry)
            continue
        if entry.get("code") == 401 or not ours:
            continue
        for wanted in _wanted(entry, user):
            used.update(g for g in grants if g.allows(*wanted))
    return Coverage(
        grants=tuple(grants),
        used=tuple(g for g in grants if g in used),
        unused=tuple(g for g in grants if g not in used),
        denied=tuple(denied),
    )
