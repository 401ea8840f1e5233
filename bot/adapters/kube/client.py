"""KubeAdapter: every Kubernetes API call migratebot makes, over the official client's transport.

Requests go through the `kubernetes` client's own configuration, authentication (kubeconfig tokens,
exec plugins, in-cluster service account) and urllib3 pool, but bodies are parsed with orjson into
plain dicts: building the client's models is ~8× slower (DESIGN.md, Known traps) and nothing here
needs them. Timeouts and retries are decided once, in the adapter's constructor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import orjson
from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPHeaderDict

from bot.adapters.errors import PermanentError, report_error
from bot.adapters.kube.translate import from_exception, from_response
from bot.adapters.retry import RetryPolicy, call_with_retries


class KubeConfigError(PermanentError):
    """No usable kubeconfig or in-cluster configuration: the message says which and what to set."""


JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

KARPENTER = ("karpenter.sh", "v1")
KARPENTER_AWS = ("karpenter.k8s.aws", "v1")


class Expired(PermanentError):
    """410 Gone: a continue token (or watch resourceVersion) is too old; start the list again."""


@dataclass(frozen=True)
class Timeouts:
    """Per-request socket timeouts in seconds (connect, then each read)."""

    connect: float = 5.0
    read: float = 30.0


@dataclass(frozen=True)
class Identity:
    """A Kubernetes user to impersonate on mutating calls (Impersonate-User / Impersonate-Group)."""

    user: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Settings:
    timeouts: Timeouts
    retry: RetryPolicy
    page_size: int
    sleep: Callable[[float], None]


def _path(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


class KubeAdapter:
    """One cluster (one kubeconfig context, or in-cluster). Thread-safe: drains call it from workers.

    Build with `from_kubeconfig(path, context)` or `in_cluster()`; each instance owns its ApiClient,
    so several clusters are several adapters. `acting_as(identity)` returns a view of the same
    connection whose mutating calls carry impersonation headers.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        page_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
        identity: Identity | None = None,
        name: str = "",
    ) -> None:
        self._api = api_client
        # Retries are decided here, once. urllib3's own retries would otherwise resend on connection
        # errors and sleep through a 429's or 503's Retry-After by itself (3 times): turn them off.
        # The pool reads the setting when it is built, so rebuild it.
        if api_client.configuration.retries is not False:
            api_client.configuration.retries = False
            api_client.rest_client = rest.RESTClientObject(api_client.configuration)
        self._settings = _Settings(timeouts or Timeouts(), retry or RetryPolicy(), page_size, sleep)
        self.identity = identity
        self.name = name or api_client.configuration.host

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, *, pool_size: int = 32, **kwargs: Any
    ) -> KubeAdapter:
        """`path` None → $KUBECONFIG or ~/.kube/config; `context` None → the current context."""
        cfg = client.Configuration()
        # $KUBECONFIG read now, not when `kubernetes` was imported (its default is fixed at import).
        path = path or os.environ.get("KUBECONFIG") or None
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, client_configuration=cfg, persist_config=False
            )
        except (config.ConfigException, OSError) as error:
            where = path or "$KUBECONFIG or ~/.kube/config"
            raise KubeConfigError(
                f"kubeconfig {where}{f' context {context}' if context else ''}: {error} — point "
                "KUBECONFIG at a kubeconfig with that context (`kubectl config get-contexts` lists them)"
            ) from error
        cfg.connection_pool_maxsize = pool_size
        cfg.retries = False
        return cls(client.ApiClient(cfg), name=kwargs.pop("name", context or ""), **kwargs)

    @classmethod
    def in_cluster(cls, *, pool_size: int = 32, **kwargs: Any) -> KubeAdapter:
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except config.ConfigException as error:
            raise KubeConfigError(
                f"in-cluster Kubernetes config: {error} — inside a pod the service account token must "
                "be mounted (automountServiceAccountToken: true); outside one, set KUBECONFIG"
            ) from error
        cfg.connection_pool_maxsize = pool_size
        cfg.retries = False
        return cls(client.ApiClient(cfg), name=kwargs.pop("name", "in-cluster"), **kwargs)

    @staticmethod
    def contexts(path: str | None = None) -> list[str]:
        """The context names of a kubeconfig, for one adapter per cluster."""
        contexts, _active = config.list_kube_config_contexts(
            config_file=path or os.environ.get("KUBECONFIG") or None
        )  # type: ignore[no-untyped-call]
        return [str(c["name"]) for c in contexts]

    def acting_as(self, identity: Identity | None) -> KubeAdapter:
        view = object.__new__(KubeAdapter)
        view.__dict__.update(self.__dict__)
        view.identity = identity
        return view

    def with_retry(self, retry: RetryPolicy) -> KubeAdapter:
        view = object.__new__(KubeAdapter)
        view.__dict__.update(self.__dict__)
        view._settings = replace(self._settings, retry=retry)
        return view

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # ---- transport ------------------------------------------------------------------------------

    def _once(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        content_type: str | None,
        what: str,
        eviction: bool,
    ) -> Any:
        headers: dict[str, str] = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            m, url, header_params, body_out, post = self._api.param_serialize(
                method,
                path,
                query_params=list(query) or None,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            sent = HTTPHeaderDict(header_params)
            if self.identity is not None and method != "GET":
                sent["Impersonate-User"] = self.identity.user
                for group in self.identity.groups:
                    sent.add("Impersonate-Group", group)
            t = self._settings.timeouts
            response = self._api.call_api(
                m,
                url,
                header_params=sent,
                body=body_out,
                post_params=post,
                _request_timeout=(t.connect, t.read),
            )
            response.read()  # type: ignore[no-untyped-call]
        except Exception as e:
            raise report_error("kube", from_exception(e, what, eviction=eviction)) from e
        if not 200 <= response.status <= 299:
            # The client's own exception for this answer, so ours is raised `from` it like any other.
            cause = ApiException(http_resp=response)
            error = from_response(response.status, response.data, response.headers, what, eviction=eviction)
            if response.status == 410:
                error = Expired(error.message, status=410, reason=error.reason)
            raise report_error("kube", error) from cause
        return orjson.loads(response.data) if response.data else None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        what: str = "",
        eviction: bool = False,
    ) -> Any:
        """One API call with the adapter's timeouts and retries; returns the parsed JSON body."""
        what = what or f"{method} {path}"
        return call_with_retries(
            lambda: self._once(method, path, query, body, content_type, what, eviction),
            self._settings.retry,
            sleep=self._settings.sleep,
        )

    def pages(
        self, path: str, *, what: str, query: Sequence[tuple[str, str]] = (), page_size: int | None = None
    ) -> Iterator[list[JSON]]:
        """A collection page by page (limit/continue), each page parsed once. A 410 mid-list raises
        Expired: the caller starts over (kubectl's pager does the same)."""
        limit = str(page_size or self._settings.page_size)
        token = ""
        while True:
            q = [*query, ("limit", limit)]
            if token:
                q.append(("continue", token))
            page = self.request("GET", path, query=q, what=what)
            yield page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    def list_all(
        self, path: str, *, what: str, query: Sequence[tuple[str, str]] = (), page_size: int | None = None
    ) -> list[JSON]:
        for attempt in range(3):
            try:
                items: list[JSON] = []
                for page in self.pages(path, what=what, query=query, page_size=page_size):
                    items.extend(page)
                return items
            except Expired:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # ---- nodes ----------------------------------------------------------------------------------

    def list_nodes(self, *, label_selector: str = "") -> list[JSON]:
        q = [("labelSelector", label_selector)] if label_selector else []
        return self.list_all("/api/v1/nodes", what="list nodes", query=q)

    def node_pages(self, *, page_size: int | None = None) -> Iterator[list[JSON]]:
        return self.pages("/api/v1/nodes", what="list nodes", page_size=page_size)

    def get_node(self, name: str) -> JSON:
        result: JSON = self.request("GET", f"/api/v1/nodes/{_path(name)}", what=f"get node {name}")
        return result

    def cordon(self, name: str) -> JSON:
        """spec.unschedulable=true by strategic merge patch, as `kubectl cordon` sends it."""
        return self._patch_node(name, {"spec": {"unschedulable": True}}, f"cordon node {name}")

    def uncordon(self, name: str) -> JSON:
        return self._patch_node(name, {"spec": {"unschedulable": None}}, f"uncordon node {name}")

    def _patch_node(self, name: str, patch: JSON, what: str) -> JSON:
        result: JSON = self.request(
            "PATCH", f"/api/v1/nodes/{_path(name)}", body=patch, content_type=STRATEGIC_MERGE_PATCH, what=what
        )
        return result

    # ---- pods -----------------------------------------------------------------------------------

    def pod_pages(
        self, *, field_selector: str = "", namespace: str = "", page_size: int | None = None
    ) -> Iterator[list[JSON]]:
        """All pods (all namespaces unless `namespace`), page by page."""
        q = [("fieldSelector", field_selector)] if field_selector else []
        path = f"/api/v1/namespaces/{_path(namespace)}/pods" if namespace else "/api/v1/pods"
        return self.pages(path, what="list pods", query=q, page_size=page_size)

    def list_pods(self, *, field_selector: str = "", namespace: str = "") -> list[JSON]:
        q = [("fieldSelector", field_selector)] if field_selector else []
        path = f"/api/v1/namespaces/{_path(namespace)}/pods" if namespace else "/api/v1/pods"
        return self.list_all(path, what="list pods", query=q)

    def get_pod(self, namespace: str, name: str) -> JSON:
        result: JSON = self.request(
            "GET",
            f"/api/v1/namespaces/{_path(namespace)}/pods/{_path(name)}",
            what=f"get pod {namespace}/{name}",
        )
        return result

    def evict(
        self, namespace: str, name: str, grace_period: int | None = None, dry_run: bool = False
    ) -> None:
        """POST pods/NAME/eviction (policy/v1). A PDB's refusal raises EvictionBlocked (not retried
        here); a pod already gone raises NotFound."""
        options: JSON = {}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if dry_run:
            options["dryRun"] = ["All"]
        body: JSON = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if options:
            body["deleteOptions"] = options
        self.request(
            "POST",
            f"/api/v1/namespaces/{_path(namespace)}/pods/{_path(name)}/eviction",
            query=[("dryRun", "All")] if dry_run else [],
            body=body,
            content_type="application/json",
            what=f"evict pod {namespace}/{name}",
            eviction=True,
        )

    # ---- owners and budgets ---------------------------------------------------------------------

    def list_pdbs(self) -> list[JSON]:
        return self.list_all("/apis/policy/v1/poddisruptionbudgets", what="list poddisruptionbudgets")

    def list_daemonsets(self) -> list[JSON]:
        return self.list_all("/apis/apps/v1/daemonsets", what="list daemonsets")

    def list_replicasets(self) -> list[JSON]:
        return self.list_all("/apis/apps/v1/replicasets", what="list replicasets")

    def get_daemonset(self, namespace: str, name: str) -> JSON:
        result: JSON = self.request(
            "GET",
            f"/apis/apps/v1/namespaces/{_path(namespace)}/daemonsets/{_path(name)}",
            what=f"get daemonset {namespace}/{name}",
        )
        return result

    # ---- Karpenter (cluster-scoped custom objects) ---------------------------------------------

    def _custom(self, gv: tuple[str, str], plural: str, name: str = "") -> str:
        base = f"/apis/{gv[0]}/{gv[1]}/{plural}"
        return f"{base}/{_path(name)}" if name else base

    def get_nodepool(self, name: str) -> JSON:
        result: JSON = self.request(
            "GET", self._custom(KARPENTER, "nodepools", name), what=f"get nodepool {name}"
        )
        return result

    def list_nodepools(self) -> list[JSON]:
        return self.list_all(self._custom(KARPENTER, "nodepools"), what="list nodepools")

    def create_nodepool(self, obj: Mapping[str, Any]) -> JSON:
        return self._create(KARPENTER, "nodepools", "NodePool", obj)

    def patch_nodepool(self, name: str, patch: Mapping[str, Any]) -> JSON:
        return self._merge_patch(KARPENTER, "nodepools", "NodePool", name, patch)

    def get_ec2nodeclass(self, name: str) -> JSON:
        result: JSON = self.request(
            "GET", self._custom(KARPENTER_AWS, "ec2nodeclasses", name), what=f"get ec2nodeclass {name}"
        )
        return result

    def create_ec2nodeclass(self, obj: Mapping[str, Any]) -> JSON:
        return self._create(KARPENTER_AWS, "ec2nodeclasses", "EC2NodeClass", obj)

    def patch_ec2nodeclass(self, name: str, patch: Mapping[str, Any]) -> JSON:
        return self._merge_patch(KARPENTER_AWS, "ec2nodeclasses", "EC2NodeClass", name, patch)

    def list_nodeclaims(self) -> list[JSON]:
        return self.list_all(self._custom(KARPENTER, "nodeclaims"), what="list nodeclaims")

    def delete_nodeclaim(self, name: str) -> None:
        self.request("DELETE", self._custom(KARPENTER, "nodeclaims", name), what=f"delete nodeclaim {name}")

    def _create(self, gv: tuple[str, str], plural: str, kind: str, obj: Mapping[str, Any]) -> JSON:
        body = {"apiVersion": f"{gv[0]}/{gv[1]}", "kind": kind, **obj}
        name = str((body.get("metadata") or {}).get("name", ""))
        result: JSON = self.request(
            "POST", self._custom(gv, plural), body=body, content_type="application/json",
            what=f"create {kind.lower()} {name}",
        )  # fmt: skip
        return result

    def _merge_patch(
        self, gv: tuple[str, str], plural: str, kind: str, name: str, patch: Mapping[str, Any]
    ) -> JSON:
        result: JSON = self.request(
            "PATCH", self._custom(gv, plural, name), body=dict(patch), content_type=MERGE_PATCH,
            what=f"patch {kind.lower()} {name}",
        )  # fmt: skip
        return result

    # ---- reports: workloads and node classes the readiness scan reads ---------------------------

    def list_deployments(self) -> list[JSON]:
        return self.list_all("/apis/apps/v1/deployments", what="list deployments")

    def list_statefulsets(self) -> list[JSON]:
        return self.list_all("/apis/apps/v1/statefulsets", what="list statefulsets")

    def list_ec2nodeclasses(self) -> list[JSON]:
        return self.list_all(self._custom(KARPENTER_AWS, "ec2nodeclasses"), what="list ec2nodeclasses")

    # ---- the canary: events, and the Lease that elects the leader -------------------------------

    def list_events(self, *, field_selector: str = "", namespace: str = "") -> list[JSON]:
        """core/v1 Events (all namespaces unless `namespace`), e.g. field_selector="type=Warning"."""
        q = [("fieldSelector", field_selector)] if field_selector else []
        path = f"/api/v1/namespaces/{_path(namespace)}/events" if namespace else "/api/v1/events"
        return self.list_all(path, what="list events", query=q)

    def _lease_path(self, namespace: str, name: str = "") -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{_path(namespace)}/leases"
        return f"{base}/{_path(name)}" if name else base

    def get_lease(self, namespace: str, name: str) -> JSON:
        """The Lease (NotFound when there is none yet)."""
        result: JSON = self.request(
            "GET", self._lease_path(namespace, name), what=f"get lease {namespace}/{name}"
        )
        return result

    def create_lease(self, namespace: str, name: str, spec: Mapping[str, Any]) -> JSON:
        """Create the Lease; Conflict when another process created it first."""
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": dict(spec),
        }
        result: JSON = self.request(
            "POST", self._lease_path(namespace), body=body, content_type="application/json",
            what=f"create lease {namespace}/{name}",
        )  # fmt: skip
        return result

    def replace_lease(self, lease: Mapping[str, Any]) -> JSON:
        """PUT the Lease as read and changed: its metadata.resourceVersion makes the write conditional,
        so of two processes renewing or taking over from the same read one gets Conflict."""
        meta = lease.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", **lease}
        result: JSON = self.request(
            "PUT", self._lease_path(namespace, name), body=body, content_type="application/json",
            what=f"update lease {namespace}/{name}",
        )  # fmt: skip
        return result
