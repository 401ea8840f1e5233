"""Authentication (static bearer tokens) and the RBAC authorizer, reading roles from the store.

Semantics follow k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac: a request is allowed when any
rule of any role bound to the user or one of its groups matches verb, API group, resource
("pods/eviction" for subresources), resourceName and — for RoleBindings — the namespace.
`system:masters` is allowed everything, as the apiserver's superuser group.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from sandbox.kube.jsontypes import JSON
from sandbox.kube.resources import Registry
from sandbox.kube.store import Store

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Attributes:
    """authorizer.Attributes: what a request wants to do."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # for non-resource requests (/version, /apis…)

    @property
    def resource_request(self) -> bool:
        return bool(self.resource)


def service_account_user(namespace: str, name: str) -> User:
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


class Tokens:
    """Static token authenticator (the apiserver's --token-auth-file, changeable at runtime)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}

    def add(self, user: User, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(24)
        groups = user.groups if AUTHENTICATED in user.groups else (*user.groups, AUTHENTICATED)
        with self._lock:
            self._users[token] = User(user.name, groups, user.uid)
        return token

    def authenticate(self, token: str) -> User | None:
        with self._lock:
            return self._users.get(token)


def _matches(values: list[str] | None, wanted: str) -> bool:
    values = values or []
    return "*" in values or wanted in values


def _rule_allows(rule: JSON, a: Attributes) -> bool:
    if not _matches(rule.get("verbs"), a.verb):
        return False
    if not a.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(u == a.path or u == "*" or (u.endswith("*") and a.path.startswith(u[:-1])) for u in urls)
    if not _matches(rule.get("apiGroups"), a.group):
        return False
    resources = rule.get("resources") or []
    full = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    # "*" matches everything; "*/scale" any resource's scale; "pods/*" every pod subresource.
    resource_ok = (
        "*" in resources
        or full in resources
        or (a.subresource and (f"*/{a.subresource}" in resources or f"{a.resource}/*" in resources))
    )
    if not resource_ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _subject_matches(subject: JSON, user: User, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return bool(subject.get("name") == user.name)
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


class Authorizer:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        rbac = "rbac.authorization.k8s.io"
        self._roles = registry.must_get(rbac, "v1", "roles")
        self._cluster_roles = registry.must_get(rbac, "v1", "clusterroles")
        self._bindings = registry.must_get(rbac, "v1", "rolebindings")
        self._cluster_bindings = registry.must_get(rbac, "v1", "clusterrolebindings")

    def allowed(self, user: User, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason) — the reason reads like the RBAC authorizer's."""
        if MASTERS in user.groups:
            return True, ""
        with self.store.lock:
            for crb in self.store.iter_all(self._cluster_bindings):
                subjects = crb.get("subjects") or ()
                if any(_subject_matches(s, user, "") for s in subjects) and self._role_allows(
                    crb.get("roleRef") or {}, "", a
                ):
                    name = crb["metadata"]["name"]
                    return True, f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole '
            if a.namespace:
                bindings, _, _ = self.store.list_objects(self._bindings, a.namespace)
                for rb in bindings:
                    subjects = rb.get("subjects") or ()
                    if any(_subject_matches(s, user, a.namespace) for s in subjects) and self._role_allows(
                        rb.get("roleRef") or {}, a.namespace, a
                    ):
                        return True, f'RBAC: allowed by RoleBinding "{rb["metadata"]["name"]}"'
        return False, ""

    def _role_allows(self, ref: JSON, namespace: str, a: Attributes) -> bool:
        if ref.get("kind") == "ClusterRole":
            role = self.store.get(self._cluster_roles, "", ref.get("name", ""))
        else:
            role = self.store.get(self._roles, namespace, ref.get("name", ""))
        if role is None:
            return False
        return any(_rule_allows(rule, a) for rule in role.get("rules") or ())


def forbidden_message(user: User, a: Attributes) -> str:
    """The tail of the apiserver's 403 message (endpoints/handlers/responsewriters.forbiddenMessage)."""
    if not a.resource_request:
        return f'User "{user.name}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return f'User "{user.name}" cannot {a.verb} resource "{resource}" in API group "{a.group}" {where}'
