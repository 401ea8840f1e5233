"""Discovery and OpenAPI: what kubectl and client-go read to learn the server's resources."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

import orjson
from starlette.responses import Response

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON
from sandbox.kube.resources import Registry
from sandbox.kube.responses import json_response as _json

SERVER_VERSION: JSON = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.3-eks-4096722",
    "gitCommit": "4c6e43ac3bfe0c37def2b85e6b8d2fce7bc2c0a8",
    "gitTreeState": "clean",
    "buildDate": "2025-04-04T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# The openapi/v3 documents never change for a server's life; clients cache them by this hash.
OPENAPI_HASH = "5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D"
# The built-in kinds' schemas (Kubernetes v1.32, with their descriptions and patch strategies),
# vendored with the $refs they need; see openapi/README.md.
BUILTIN_SCHEMAS = Path(__file__).resolve().parent / "openapi" / "kubernetes-v1.32.json"
log = logging.getLogger("sandbox.kube.discovery")
_REF = re.compile(r"#/components/schemas/([A-Za-z0-9_.\-]+)")


@functools.cache
def builtin_schemas() -> dict[str, JSON]:
    """Component schemas by name, parsed once per process; none when an install left the file out
    (the documents then carry the CRDs' schemas only, as before, and `kubectl explain pod` fails)."""
    try:
        raw = BUILTIN_SCHEMAS.read_bytes()
    except OSError as e:
        log.warning("built-in OpenAPI schemas unavailable (%s): kubectl explain of built-in kinds fails", e)
        return {}
    schemas: dict[str, JSON] = orjson.loads(raw)["schemas"]
    return schemas


def _closure(roots: list[str], schemas: dict[str, JSON]) -> dict[str, JSON]:
    """The roots and every schema they reference, as one OpenAPI document's components need."""
    out: dict[str, JSON] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out or name not in schemas:
            continue
        out[name] = schemas[name]
        todo += _REF.findall(orjson.dumps(schemas[name]).decode())
    return out


class Discovery:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def respond(self, path: str) -> Response:
        """Answer a non-resource GET (/version, /healthz, /api…, /apis…, /openapi/v3…)."""
        path = path.rstrip("/") or "/"
        if path == "/version":
            return _json(SERVER_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(b"ok", media_type="text/plain")
        if path == "/api":
            return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})  # fmt: skip
        groups = self.registry.groups()
        if path == "/apis":
            return _json(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group(g, v) for g, v in groups.items() if g],
                }
            )
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return _json(dict(self._group(parts[1], groups[parts[1]]), kind="APIGroup", apiVersion="v1"))
        if len(parts) == 2 and parts[0] == "api" and parts[1] == "v1":
            return _json(self._resource_list("", "v1"))
        if len(parts) == 3 and parts[0] == "apis" and parts[2] in groups.get(parts[1], ()):
            return _json(self._resource_list(parts[1], parts[2]))
        if path == "/openapi/v3":
            return _json(
                {
                    "paths": {
                        gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={OPENAPI_HASH}"}
                        for gv in self._openapi_group_versions()
                    }
                }
            )
        if path.startswith("/openapi/v3/"):
            gv = path[len("/openapi/v3/") :]
            if gv in self._openapi_group_versions():
                return _json(self._openapi_v3(gv))
        # /openapi/v2 is not served: kubectl get/describe/patch/drain cope with 404.
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def _openapi_group_versions(self) -> list[str]:
        return sorted({("api/" if not rt.group else "apis/") + rt.api_version for rt in self.registry.all()})

    def _openapi_v3(self, gv: str) -> JSON:
        """A paths-only OpenAPI v3 document for one group/version.

        kubectl (`create -f`, `apply -f`) downloads it to learn whether the server validates fields
        itself: a PATCH operation tagged with the kind's x-kubernetes-group-version-kind and a
        `fieldValidation` query parameter means yes, so kubectl sends fieldValidation=Strict instead
        of validating client-side. Components carry the kinds' schemas — the CRDs' own and the
        built-in kinds' vendored ones — for `kubectl explain`.
        """
        paths: JSON = {}
        for rt in self.registry.all():
            if ("api/" if not rt.group else "apis/") + rt.api_version != gv or "patch" not in rt.verbs:
                continue
            prefix = "/api/v1" if not rt.group else f"/apis/{rt.api_version}"
            scope = "/namespaces/{namespace}" if rt.namespaced else ""
            paths[f"{prefix}{scope}/{rt.plural}/{{name}}"] = {
                "patch": {
                    "operationId": f"patch{rt.kind}",
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {
                        "group": rt.group,
                        "version": rt.version,
                        "kind": rt.kind,
                    },
                    "parameters": [
                        {
                            "name": "fieldValidation",
                            "in": "query",
                            "schema": {"type": "string", "uniqueItems": True},
                        }
                    ],
                    "responses": {"200": {"description": "OK"}},
                }
            }
        schemas: JSON = {}
        for rt in self.registry.all():
            if rt.schema is not None and ("apis/" + rt.api_version) == gv:
                # The CRDs' own schemas, so `kubectl explain nodepool.spec.disruption` works.
                reversed_group = ".".join(reversed(rt.group.split(".")))
                schemas[f"{reversed_group}.{rt.version}.{rt.kind}"] = dict(
                    rt.schema.schema,
                    **{
                        "x-kubernetes-group-version-kind": [
                            {"group": rt.group, "version": rt.version, "kind": rt.kind}
                        ]
                    },
                )
        builtin = builtin_schemas()
        roots = [
            name
            for name, schema in builtin.items()
            for gvk in schema.get("x-kubernetes-group-version-kind") or ()
            if (("api/" if not gvk["group"] else "apis/" + gvk["group"] + "/") + gvk["version"]) == gv
        ]
        schemas.update(_closure(roots, builtin))
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths,
            "components": {"schemas": schemas},
        }

    @staticmethod
    def _group(name: str, versions: list[str]) -> JSON:
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}

    def _resource_list(self, group: str, version: str) -> JSON:
        resources: list[JSON] = []
        for rt in self.registry.in_group_version(group, version):
            entry: JSON = {
                "name": rt.plural,
                "singularName": rt.singular or rt.kind.lower(),
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            resources.append(entry)
            for sub in rt.subresources:
                sub_entry: JSON = {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
                if sub == "eviction":
                    sub_entry.update(group="policy", version="v1", kind="Eviction", verbs=["create"])
                elif sub == "scale":
                    sub_entry.update(group="autoscaling", version="v1", kind="Scale")
                resources.append(sub_entry)
        group_version = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": resources}  # fmt: skip
