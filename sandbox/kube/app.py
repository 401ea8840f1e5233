"""The Kubernetes API over HTTP: an ASGI app (starlette) in front of the store.

One catch-all route parses the path the way the apiserver's RequestInfoFactory does, authenticates,
impersonates, authorizes, records the request, and dispatches on the verb.
"""

from __future__ import annotations

import base64
import binascii
import gc
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.kube import errors, events, protobuf
from sandbox.kube.auth import (
    MASTERS,
    Attributes,
    Authorizer,
    Tokens,
    User,
    forbidden_message,
    service_account_user,
)
from sandbox.kube.crd import bundled_crds
from sandbox.kube.discovery import Discovery
from sandbox.kube.disruption import Disruption
from sandbox.kube.jsontypes import JSON
from sandbox.kube.patch import json_patch, merge_patch, strategic_merge_patch
from sandbox.kube.resources import BUILTINS, REVIEW_KINDS, Registry, ResourceType
from sandbox.kube.responses import error_response as _error
from sandbox.kube.responses import json_response as _json
from sandbox.kube.selectors import parse_field_selector, parse_label_selector, predicate
from sandbox.kube.sharing import Sharer
from sandbox.kube.store import Store, deep_copy
from sandbox.kube.tables import table, wants_table
from sandbox.kube.watch import Watches

logger = logging.getLogger(__name__)

# Namespaces every cluster starts with.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# A load this large is a scenario's bulk start: its objects share equal parts and are frozen out of
# the cyclic GC.
BULK_LOAD = 10_000


def _success(code: int = 200, details: JSON | None = None) -> JSON:
    body: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}
    if details:
        body["details"] = details
    return body


@dataclass
class RequestInfo:
    """What the URL asks for (k8s.io/apiserver/pkg/endpoints/request.RequestInfo)."""

    verb: str
    path: str
    resource_request: bool = False
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def attributes(self) -> Attributes:
        return Attributes(
            self.verb, self.group, self.resource, self.subresource, self.namespace, self.name, self.path
        )


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "GET": "get"}


def parse_request(method: str, path: str, query: dict[str, list[str]]) -> RequestInfo:
    verb = _METHOD_VERBS.get(method, method.lower())
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(verb.lower() if method != "GET" else "get", path)
    info = RequestInfo(verb, path, True, group, version)
    if rest[0] == "namespaces" and len(rest) > 1:
        # As RequestInfoFactory: the namespace is set for namespaces/NAME too, and
        # namespaces/NAME/status and /finalize are the namespace's own subresources.
        info.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    if info.name == "" and verb == "get":
        watch = query.get("watch", [""])[0]
        info.verb = "watch" if watch in ("1", "true", "True") else "list"
    elif info.name == "" and verb == "delete":
        info.verb = "deletecollection"
    return info


class RequestLog:
    """Every request as the apiserver's audit log would record it (Metadata level)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[JSON] = []

    def add(self, entry: JSON) -> None:
        with self._lock:
            self._entries.append(entry)

    def since(self, index: int) -> tuple[list[JSON], int]:
        with self._lock:
            return self._entries[index:], len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _continue_token(rv: int, key: tuple[str, str]) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(key)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_continue(token: str, store: Store) -> tuple[tuple[str, str], int]:
    """The key to continue after and the first page's resourceVersion (the snapshot to list at)."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start, rv = data["start"], int(data["rv"])
        key = str(start[0]), str(start[1])
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError) as e:
        raise errors.bad_request(f"continue key is not valid: {e}") from e
    if store.compacted(rv):
        # The apiserver's answer once etcd compacted the first page's revision; client-go's
        # pager then falls back to a full list.
        raise errors.gone(
            "The provided continue parameter is too old to display a consistent list result. You can "
            "start a new list without the continue parameter, or use the continue token in this "
            "response to retrieve the remainder of the results. Continuing with the provided token "
            "results in an inconsistent list - objects that were created, modified, or deleted "
            "between the time the first chunk was returned and now may show up in the list."
        )
    return key, rv


RequestHook = Callable[[RequestInfo, User, dict[str, list[str]]], Awaitable[None]]


class KubeApi:
    """The cluster: registry, store, auth and the ASGI app serving them."""

    def __init__(
        self,
        *,
        admin_token: str,
        bookmark_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        history: int = 50_000,
    ) -> None:
        self.registry = Registry(BUILTINS)
        for rt in bundled_crds():
            self.registry.add(rt)
        self.store = Store(self.registry, clock=clock, history=history)
        for rt in self.registry.all():
            if rt.schema is not None:
                self.store.add_admission(rt.key, rt.schema.admit)
        self.store.add_admission("/pods", _pod_defaults)
        self.store.add_field_index(
            "/pods", "spec.nodeName", lambda p: p.get("spec", {}).get("nodeName") or ""
        )
        self.store.add_admission("/namespaces", _namespace_defaults)
        self.tokens = Tokens()
        self.admin_token = admin_token
        self.tokens.add(User("kubernetes-admin", (MASTERS,)), admin_token)
        self.authorizer = Authorizer(self.store, self.registry)
        self.disruption = Disruption(self.store, self.registry)
        self.log = RequestLog()
        self.watches = Watches(self.store, bookmark_interval)
        self.discovery = Discovery(self.registry)
        # Fault injection (sandbox/scenarios/faults.py): awaited after authentication on every API
        # request; it may sleep (latency), raise an ApiError (throttling, 5xx) or shorten a watch's
        # `timeoutSeconds` in `query` (watch disconnects).
        self.request_hook: RequestHook | None = None
        self._seed()
        self.app = Starlette(
            routes=[
                Route("/admin/{path:path}", self._admin, methods=["GET", "POST", "DELETE"]),
                Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self.disruption.start()

    def close(self) -> None:
        """End open watches (so the HTTP server can stop) and the background controllers."""
        self.watches.close()
        self.disruption.stop()

    def _seed(self) -> None:
        ns = self.rt("", "v1", "namespaces")
        for name in SYSTEM_NAMESPACES:
            self.store.create(ns, {"metadata": {"name": name}})
        rbac = "rbac.authorization.k8s.io"
        cr, crb = self.rt(rbac, "v1", "clusterroles"), self.rt(rbac, "v1", "clusterrolebindings")
        # The bootstrap roles every authenticated identity holds
        # (plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
        self.store.create(
            cr, {"metadata": {"name": "cluster-admin"}, "rules": [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]},
        )  # fmt: skip
        self.store.create(
            cr, {"metadata": {"name": "system:basic-user"}, "rules": [
                {"apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
            ]},
        )  # fmt: skip
        self.store.create(
            cr, {"metadata": {"name": "system:discovery"}, "rules": [
                {"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz",
                                     "/openapi", "/openapi/*", "/version", "/version/"], "verbs": ["get"]},
            ]},
        )  # fmt: skip
        for role in ("system:basic-user", "system:discovery"):
            self.store.create(
                crb,
                {
                    "metadata": {"name": role},
                    "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": role},
                    "subjects": [{"apiGroup": rbac, "kind": "Group", "name": "system:authenticated"}],
                },
            )

    def rt(self, group: str, version: str, plural: str) -> ResourceType:
        return self.registry.must_get(group, version, plural)

    # ---- objects in bulk (admin / fixtures) -----------------------------------------------------

    def load(self, objects: list[JSON]) -> int:
        """Create or replace objects as they are, status included (a controller's view)."""
        # Stored objects are acyclic JSON: the cyclic GC only slows a bulk load down (its gen-2 passes
        # rescan every object loaded so far — 4x slower at 20,000 pods). Large loads are then frozen
        # out of future collections, which would otherwise rescan them while the API serves.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            count = self._load(objects, Sharer() if len(objects) >= BULK_LOAD else None)
        finally:
            if gc_was_enabled:
                gc.enable()
        if count >= BULK_LOAD:
            gc.freeze()
        return count

    def _load(self, objects: list[JSON], sharer: Sharer | None) -> int:
        count = 0
        with self.store.lock:
            for obj in objects:
                rt = self.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
                if rt is None:
                    raise errors.bad_request(f"no kind {obj.get('kind')!r} in {obj.get('apiVersion')!r}")
                obj = deep_copy(obj)
                meta = obj.setdefault("metadata", {})
                existing = self.store.get(rt, meta.get("namespace", "default"), meta.get("name", ""))
                if existing is None:
                    stored = self.store.create(rt, obj, keep_status=True)
                    if sharer is not None:
                        sharer.share(stored)
                else:
                    meta["resourceVersion"] = existing["metadata"]["resourceVersion"]
                    status = obj.get("status")
                    stored = self.store.update(rt, obj)
                    if status is not None and rt.has_status:
                        self.store.update(rt, dict(stored, status=status), subresource="status")
                count += 1
        return count

    # ---- HTTP -----------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> User:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise errors.unauthorized()
        user = self.tokens.authenticate(header[7:].strip())
        if user is None:
            raise errors.unauthorized()
        return user

    def _impersonate(self, request: Request, user: User) -> User:
        """Impersonate-User/-Group (apiserver filters/impersonation.go): each needs `impersonate`."""
        target = request.headers.get("impersonate-user")
        groups = request.headers.getlist("impersonate-group")
        if not target and not groups:
            return user
        if not target:
            raise errors.ApiError(
                500, "InternalError", "requested impersonation of groups without impersonating a user"
            )
        checks: list[Attributes] = []
        if target.startswith("system:serviceaccount:"):
            _, _, ns, name = target.split(":", 3)
            checks.append(Attributes("impersonate", "", "serviceaccounts", "", ns, name))
            impersonated = service_account_user(ns, name)
            extra_groups = list(impersonated.groups)
        else:
            checks.append(Attributes("impersonate", "", "users", "", "", target))
            extra_groups = []
        for g in groups:
            checks.append(Attributes("impersonate", "", "groups", "", "", g))
        for a in checks:
            ok, _ = self.authorizer.allowed(user, a)
            if not ok:
                raise errors.forbidden(a.resource, "", a.name, forbidden_message(user, a))
        all_groups = [*groups, *(g for g in extra_groups if g not in groups)]
        if target != "system:anonymous" and "system:authenticated" not in all_groups:
            all_groups.append("system:authenticated")
        return User(target, tuple(all_groups), extra={"impersonated-by": [user.name]})

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        query = parse_qs(request.url.query)
        info = parse_request(request.method, path, query)
        entry: JSON = {
            "time": time.time(),
            "method": request.method,
            "path": path,
            "verb": info.verb,
            "group": info.group,
            "version": info.version,
            "resource": info.resource,
            "subresource": info.subresource,
            "namespace": info.namespace,
            "name": info.name,
            "user": None,
            "groups": [],
            "impersonatedBy": None,
            "userAgent": request.headers.get("user-agent", ""),
        }
        try:
            user = self._authenticate(request)
            acting = self._impersonate(request, user)
            entry["user"] = acting.name
            entry["groups"] = list(acting.groups)
            if acting is not user:
                entry["impersonatedBy"] = user.name
            if self.request_hook is not None:
                await self.request_hook(info, acting, query)
            allowed, _ = self.authorizer.allowed(acting, info.attributes())
            if not allowed:
                a = info.attributes()
                raise errors.forbidden(
                    a.resource + (f"/{a.subresource}" if a.subresource else ""),
                    a.group,
                    a.name,
                    forbidden_message(acting, a),
                )
            if info.resource_request:
                response = await self._resource(request, info, query, acting)
            else:
                response = self.discovery.respond(path)
        except errors.ApiError as e:
            response = _error(e)
        except Exception as e:
            # A sandbox bug must still look like an apiserver failure to clients (and be logged).
            logger.exception("sandbox kube API failed on %s %s", request.method, path)
            response = _error(errors.ApiError(500, "InternalError", f"Internal error occurred: {e!r}"))
        entry["code"] = response.status_code
        self.log.add(entry)
        return response

    # ---- resources ------------------------------------------------------------------------------

    async def _resource(
        self, request: Request, info: RequestInfo, query: dict[str, list[str]], user: User
    ) -> Response:
        rt = self.registry.get(info.group, info.version, info.resource)
        if rt is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if rt.namespaced and not info.namespace and info.verb not in ("list", "watch", "deletecollection"):
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if info.subresource and info.subresource not in rt.subresources:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if info.subresource == "scale":
            raise errors.method_not_allowed("the sandbox does not emulate the scale subresource yet")
        if info.verb not in rt.verbs and not info.subresource:
            raise errors.method_not_allowed(
                f'{info.verb} is not supported on resources of kind "{info.resource}.{info.group}"'
            )

        def q(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        verb = info.verb
        if rt.key == "events.k8s.io/events":
            return await self._events_v1(request, info, q, rt)
        if rt.key in REVIEW_KINDS:
            return self._access_review(rt, await self._body(request), user)
        if info.subresource == "eviction":
            if verb != "create":
                raise errors.method_not_allowed("eviction only supports create")
            body = await self._body(request)
            options = body.get("deleteOptions") or {}
            self.disruption.evict(info.namespace, info.name, options.get("gracePeriodSeconds"), by=user.name)
            return _json(_success(201), 201)
        if verb in ("list", "watch", "deletecollection"):
            label_reqs = parse_label_selector(q("labelSelector")) if q("labelSelector") else None
            field_reqs = (
                parse_field_selector(q("fieldSelector"), rt.field_labels, rt.kind)
                if q("fieldSelector")
                else None
            )
            pred = predicate(label_reqs, field_reqs)
            ns = info.namespace or None
            if verb == "watch":
                return self.watches.stream(request, rt, ns, pred, q)
            if verb == "deletecollection":
                items, _, _ = self.store.list_objects(rt, ns, predicate=pred)
                deleted = [
                    self.store.delete(rt, o["metadata"].get("namespace", ""), o["metadata"]["name"])[0]
                    for o in items
                ]
                return _json(
                    {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": {}, "items": deleted}
                )
            limit = int(q("limit", "0") or 0)
            after, at = _parse_continue(q("continue"), self.store) if q("continue") else (None, None)
            indexed = next(
                (
                    (".".join(r.path), r.value)
                    for r in field_reqs or ()
                    if r.equal and r.path == ("spec", "nodeName")
                ),
                None,
            )
            items, rv, next_key = self.store.list_objects(
                rt, ns, predicate=pred, after=after, limit=limit, indexed=indexed, at=at
            )
            metadata: JSON = {"resourceVersion": str(rv)}
            if next_key is not None:
                metadata["continue"] = _continue_token(rv, next_key)
            if wants_table(request):
                return _json(table(rt, items, self.store.clock(), q("includeObject"), metadata))
            return _json(
                {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata, "items": items}
            )
        if verb == "get":
            obj = self.store.must_get(rt, info.namespace, info.name)
            if wants_table(request):
                return _json(
                    table(
                        rt,
                        [obj],
                        self.store.clock(),
                        q("includeObject"),
                        {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    )
                )
            return _json(obj)
        if verb == "create":
            if info.name:
                raise errors.method_not_allowed("create on a named resource is not supported")
            obj = await self._body(request)
            self._check_identity(rt, obj, info, creating=True)
            if q("dryRun"):
                return _json(obj, 201)
            return _json(self.store.create(rt, obj), 201)
        if verb == "update":
            obj = await self._body(request)
            self._check_identity(rt, obj, info, creating=False)
            return _json(self.store.update(rt, obj, subresource=info.subresource))
        if verb == "patch":
            raw = await request.body()
            return _json(self._patch(rt, info, request.headers.get("content-type", ""), raw))
        if verb == "delete":
            delete_options: JSON = await self._body(request) if (await request.body()).strip() else {}
            propagation = delete_options.get("propagationPolicy") or q("propagationPolicy") or None
            pre = delete_options.get("preconditions") or {}
            grace = delete_options.get("gracePeriodSeconds")
            if grace is None and q("gracePeriodSeconds"):
                grace = int(q("gracePeriodSeconds"))
            obj, _gone = self.store.delete(
                rt,
                info.namespace,
                info.name,
                propagation=propagation,
                uid=pre.get("uid"),
                resource_version=pre.get("resourceVersion"),
                grace_period=grace,
            )
            return _json(obj)
        raise errors.method_not_allowed(f"{verb} is not supported")

    async def _events_v1(
        self, request: Request, info: RequestInfo, q: Callable[..., str], rt: ResourceType
    ) -> Response:
        """events.k8s.io/v1 over the core/v1 storage: convert on the way in and out."""
        core = self.rt("", "v1", "events")
        verb = info.verb
        if verb in ("list", "watch"):
            selector = q("fieldSelector")
            field_reqs = None
            if selector:
                parts = []
                for part in filter(None, (p.strip() for p in selector.split(","))):
                    label = part.split("!=")[0].split("=")[0].strip()
                    if label not in events.FIELD_LABELS and label not in (
                        "metadata.name",
                        "metadata.namespace",
                    ):
                        raise errors.bad_request(f"field label not supported: {label}")
                    parts.append(part.replace(label, events.FIELD_LABELS.get(label, label), 1))
                field_reqs = parse_field_selector(",".join(parts), core.field_labels, core.kind)
            label_reqs = parse_label_selector(q("labelSelector")) if q("labelSelector") else None
            pred = predicate(label_reqs, field_reqs)
            if verb == "watch":
                return self.watches.stream(
                    request, core, info.namespace or None, pred, q, convert=events.from_core, view=rt
                )
            limit = int(q("limit", "0") or 0)
            after, at = _parse_continue(q("continue"), self.store) if q("continue") else (None, None)
            items, rv, next_key = self.store.list_objects(
                core, info.namespace or None, predicate=pred, after=after, limit=limit, at=at
            )
            metadata: JSON = {"resourceVersion": str(rv)}
            if next_key is not None:
                metadata["continue"] = _continue_token(rv, next_key)
            converted = [events.from_core(o) for o in items]
            if wants_table(request):
                return _json(table(rt, converted, self.store.clock(), q("includeObject"), metadata))
            return _json(
                {"kind": "EventList", "apiVersion": rt.api_version, "metadata": metadata, "items": converted}
            )
        if verb == "get":
            return _json(events.from_core(self.store.must_get(core, info.namespace, info.name)))
        if verb == "create":
            obj = await self._body(request)
            self._check_identity(rt, obj, info, creating=True)
            return _json(events.from_core(self.store.create(core, events.to_core(obj))), 201)
        if verb == "update":
            obj = await self._body(request)
            self._check_identity(rt, obj, info, creating=False)
            return _json(events.from_core(self.store.update(core, events.to_core(obj))))
        if verb == "patch":
            kind = request.headers.get("content-type", "").split(";")[0].strip()
            patch = orjson.loads(await request.body())
            with self.store.lock:
                current = events.from_core(deep_copy(self.store.must_get(core, info.namespace, info.name)))
                if kind == "application/json-patch+json" and isinstance(patch, list):
                    patched = json_patch(current, patch)
                elif kind in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    patched = merge_patch(current, patch)
                else:
                    raise errors.unsupported_media_type(kind)
                meta = patched.setdefault("metadata", {})
                meta["resourceVersion"] = (
                    meta.get("resourceVersion") or current["metadata"]["resourceVersion"]
                )
                return _json(events.from_core(self.store.update(core, events.to_core(patched))))
        if verb == "delete":
            obj, _ = self.store.delete(core, info.namespace, info.name)
            return _json(events.from_core(obj))
        if verb == "deletecollection":
            items, _, _ = self.store.list_objects(core, info.namespace or None)
            gone = [
                self.store.delete(core, o["metadata"]["namespace"], o["metadata"]["name"])[0] for o in items
            ]
            converted = [events.from_core(o) for o in gone]
            return _json(
                {"kind": "EventList", "apiVersion": rt.api_version, "metadata": {}, "items": converted}
            )
        raise errors.method_not_allowed(f"{verb} is not supported")

    async def _body(self, request: Request) -> JSON:
        raw = await request.body()
        if "protobuf" in request.headers.get("content-type", ""):
            return protobuf.decode(raw)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"the object provided is unrecognized: {e}") from e
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized (must be of type object)")
        return body

    @staticmethod
    def _check_identity(rt: ResourceType, obj: JSON, info: RequestInfo, *, creating: bool) -> None:
        meta = obj.setdefault("metadata", {})
        if obj.get("apiVersion") and obj["apiVersion"] != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != info.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = info.namespace
        if not creating and meta.get("name") != info.name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({info.name})"
            )

    def _patch(self, rt: ResourceType, info: RequestInfo, content_type: str, raw: bytes) -> JSON:
        kind = content_type.split(";")[0].strip()
        try:
            patch = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"error decoding patch: {e}") from e
        with self.store.lock:
            current = self.store.must_get(rt, info.namespace, info.name)
            doc = deep_copy(current)
            if kind == "application/merge-patch+json":
                patched = merge_patch(doc, patch)
            elif kind == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise errors.bad_request("json patch must be a list of operations")
                patched = json_patch(doc, patch)
            elif kind == "application/strategic-merge-patch+json" and not rt.custom:
                if not isinstance(patch, dict):
                    raise errors.bad_request("strategic merge patch must be an object")
                patched = strategic_merge_patch(doc, patch)
            else:
                raise errors.unsupported_media_type(kind)
            meta = patched.setdefault("metadata", {})
            # A resourceVersion in the patch is a precondition; without it, the patch applies to
            # whatever is current (the apiserver retries internally instead of answering 409).
            if not meta.get("resourceVersion"):
                meta["resourceVersion"] = current["metadata"]["resourceVersion"]
            meta["name"] = info.name
            if rt.namespaced:
                meta["namespace"] = info.namespace
            return self.store.update(rt, patched, subresource=info.subresource)

    def _access_review(self, rt: ResourceType, body: JSON, user: User) -> Response:
        spec = body.get("spec") or {}
        subject = user
        if rt.kind == "SubjectAccessReview":
            subject = User(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""))
        ra = spec.get("resourceAttributes")
        if ra is not None:
            a = Attributes(
                ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""), ra.get("subresource", ""),
                ra.get("namespace", ""), ra.get("name", ""),
            )  # fmt: skip
        else:
            nra = spec.get("nonResourceAttributes") or {}
            a = Attributes(nra.get("verb", ""), path=nra.get("path", ""))
        allowed, reason = self.authorizer.allowed(subject, a)
        status: JSON = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        out = dict(body, apiVersion=rt.api_version, kind=rt.kind, status=status)
        out.setdefault("metadata", {})
        return _json(out, 201)

    # ---- admin ----------------------------------------------------------------------------------

    async def _admin(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if header != f"Bearer {self.admin_token}":
            return _error(errors.unauthorized())
        path = request.path_params["path"].strip("/")
        try:
            if path == "requests" and request.method == "GET":
                since = int(request.query_params.get("since", "0"))
                items, end = self.log.since(since)
                return _json({"items": items, "next": end})
            if path == "requests" and request.method == "DELETE":
                self.log.clear()
                return _json({})
            if path == "objects" and request.method == "POST":
                body = orjson.loads(await request.body())
                items = body.get("items", []) if isinstance(body, dict) else body
                return _json({"loaded": self.load(items)})
            if path == "tokens" and request.method == "POST":
                body = orjson.loads(await request.body())
                if "serviceAccount" in body:
                    sa = body["serviceAccount"]
                    user = service_account_user(sa["namespace"], sa["name"])
                else:
                    user = User(body["user"], tuple(body.get("groups") or ()))
                return _json({"token": self.tokens.add(user, body.get("token")), "user": user.name})
            if path == "healthz":
                return _json({"ok": True, "resourceVersion": self.store.resource_version})
        except errors.ApiError as e:
            return _error(e)
        return _error(errors.ApiError(404, "NotFound", f"no admin endpoint {request.method} /admin/{path}"))


def _pod_defaults(rt: ResourceType, pod: JSON, old: JSON | None) -> None:
    """The defaults the apiserver fills on a new pod (SetDefaults_PodSpec, pod strategy PrepareForCreate)."""
    if old is not None:
        return
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    status = pod.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")
    _default_toleration_seconds(spec)


# The DefaultTolerationSeconds admission plugin's taints and default (plugin/pkg/admission/
# defaulttolerationseconds): without them a pod on a node that goes NotReady would be evicted at once.
DEFAULT_NOEXECUTE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
DEFAULT_TOLERATION_SECONDS = 300


def _default_toleration_seconds(spec: JSON) -> None:
    """Add a 300 s NoExecute toleration for each default taint the pod does not already tolerate."""
    tolerations = list(spec.get("tolerations") or [])
    added = False
    for key in DEFAULT_NOEXECUTE_TAINTS:
        # As the plugin decides: an empty key or effect matches (a toleration of everything counts).
        if any(
            t.get("key", "") in ("", key) and t.get("effect", "") in ("", "NoExecute") for t in tolerations
        ):
            continue
        tolerations.append(
            {
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }
        )
        added = True
    if added:
        spec["tolerations"] = tolerations


def _namespace_defaults(rt: ResourceType, ns: JSON, old: JSON | None) -> None:
    if old is None:
        ns.setdefault("spec", {"finalizers": ["kubernetes"]})
        ns["status"] = {"phase": "Active"}
        ns["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
