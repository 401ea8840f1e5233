"""The three PATCH flavours the apiserver accepts besides server-side apply.

- JSON merge patch (RFC 7386), JSON patch (RFC 6902): exact.
- Strategic merge patch for built-in kinds: lists merge by the patchMergeKey the Go types declare
  (containers by name, conditions by type, …) and the `$patch`, `$retainKeys`,
  `$deleteFromPrimitiveList/` and `$setElementOrder/` directives kubectl emits.
"""

from __future__ import annotations

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON, JSONValue

# patchMergeKey of list fields in the core/apps/policy Go types, by field name. Lists absent from
# this table (tolerations, taints, args, …) have no patchStrategy and are replaced wholesale, as on
# a real apiserver.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "addresses": "type",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "secrets": "name",
}
# Lists of scalars with patchStrategy "merge" (set-like union).
MERGE_PRIMITIVE_LISTS = frozenset({"finalizers"})


def merge_patch(target: JSONValue, patch: JSONValue) -> JSONValue:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: JSON, patch: JSON) -> JSON:
    return _smp_map(target, patch)


def _smp_map(target: JSON, patch: JSON) -> JSON:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    result = dict(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            result[key] = _smp_map(current, value)
        elif isinstance(value, list) and isinstance(current, list):
            result[key] = _smp_list(key, current, value)
        elif isinstance(value, dict):
            result[key] = _smp_map({}, value)
        else:
            result[key] = value
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(field: str, current: list[JSONValue], patch: list[JSONValue]) -> list[JSONValue]:
    if field in MERGE_PRIMITIVE_LISTS:
        merged = list(current)
        merged.extend(v for v in patch if v not in merged)
        return merged
    merge_key = MERGE_KEYS.get(field)
    if merge_key is None:
        if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return [p for p in patch if not (isinstance(p, dict) and p.get("$patch"))]
        return patch
    merged = list(current)
    for item in patch:
        if not isinstance(item, dict):
            raise errors.bad_request(f"unable to merge list {field}: elements must be objects")
        if item.get("$patch") == "replace":
            return [p for p in patch if p.get("$patch") != "replace"]
        key = item.get(merge_key)
        index = next(
            (i for i, c in enumerate(merged) if isinstance(c, dict) and c.get(merge_key) == key), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
            continue
        if index is None:
            merged.append(_smp_map({}, item))
        else:
            merged[index] = _smp_map(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise errors.bad_request(
            f"the server rejected our request due to an error in our request: bad path {path}"
        )
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: JSONValue, parts: list[str]) -> JSONValue:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict) and p in cur:
            cur = cur[p]
        else:
            raise KeyError(p)
    return cur


def json_patch(doc: JSON, ops: list[JSON]) -> JSON:
    """RFC 6902 on a copy the caller owns (it is modified in place and returned)."""
    root: JSONValue = doc
    for op in ops:
        kind = op.get("op")
        try:
            parts = _pointer(op["path"])
            if kind == "test":
                if _get(root, parts) != op.get("value"):
                    raise errors.ApiError(
                        422,
                        "Invalid",
                        "the server rejected our request due to an error in our request: "
                        f"test failed at {op['path']}",
                    )
                continue
            if kind in ("move", "copy"):
                from_parts = _pointer(op["from"])
                value = _get(root, from_parts)
                if kind == "move":
                    root = _remove(root, from_parts)
                root = _add(root, parts, value)
                continue
            if kind == "remove":
                root = _remove(root, parts)
            elif kind == "add":
                root = _add(root, parts, op.get("value"))
            elif kind == "replace":
                root = _remove(root, parts)
                root = _add(root, parts, op.get("value"))
            else:
                raise errors.bad_request(f"Unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise errors.ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: "
                f'{kind} operation does not apply: doc is missing path: "{op.get("path")}"',
            ) from e
    if not isinstance(root, dict):
        raise errors.bad_request("json patch result is not an object")
    return root


def _get(doc: JSONValue, parts: list[str]) -> JSONValue:
    cur = doc
    for p in parts:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    return cur


def _add(doc: JSONValue, parts: list[str], value: JSONValue) -> JSONValue:
    if not parts:
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            index = int(last)
            if index > len(parent):
                raise IndexError(last)
            parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise KeyError(last)
    return doc


def _remove(doc: JSONValue, parts: list[str]) -> JSONValue:
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return doc
