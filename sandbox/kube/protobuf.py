"""Decode the few protobuf request bodies kubectl's typed clients send.

kubectl talks to built-in kinds through client-go's typed clientset, which encodes request bodies
as `application/vnd.kubernetes.protobuf` (the apiserver's runtime.Unknown envelope behind the
magic "k8s\\0") and has no JSON fallback on 415. `auth can-i` posts SelfSubjectAccessReviews,
`drain` posts Evictions and sends DeleteOptions, `create namespace` posts a Namespace. Responses
stay JSON, which the same clients accept. Field numbers come from the kinds' generated.proto files.
"""

from __future__ import annotations

from typing import Union

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON

MAGIC = b"k8s\x00"

Schema = dict[int, tuple[str, Union[str, "Schema"]]]

_MAP: Schema = {1: ("key", "string"), 2: ("value", "string")}
OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    14: ("finalizers", "strings"),
}
_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
}
_NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "string"), 2: ("verb", "string")}
_PRECONDITIONS: Schema = {1: ("uid", "string"), 2: ("resourceVersion", "string")}
DELETE_OPTIONS: Schema = {
    1: ("gracePeriodSeconds", "int"),
    2: ("preconditions", _PRECONDITIONS),
    3: ("orphanDependents", "bool"),
    4: ("propagationPolicy", "string"),
    5: ("dryRun", "strings"),
}
SCHEMAS: dict[str, Schema] = {
    "SelfSubjectAccessReview": {
        1: ("metadata", OBJECT_META),
        2: (
            "spec",
            {
                1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
            },
        ),
    },
    "SubjectAccessReview": {
        1: ("metadata", OBJECT_META),
        2: (
            "spec",
            {
                1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
                3: ("user", "string"),
                4: ("groups", "strings"),
                6: ("uid", "string"),
            },
        ),
    },
    "Eviction": {1: ("metadata", OBJECT_META), 2: ("deleteOptions", DELETE_OPTIONS)},
    "DeleteOptions": DELETE_OPTIONS,
    # `kubectl create namespace` (a typed generator).
    "Namespace": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("finalizers", "strings")})},
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise errors.bad_request(f"unsupported protobuf wire type {wire}")
    return out


def _message(data: bytes, schema: Schema) -> JSON:
    out: JSON = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, dict):
            assert isinstance(value, bytes)
            out[name] = _message(value, kind)
        elif kind == "string":
            assert isinstance(value, bytes)
            out[name] = value.decode()
        elif kind == "strings":
            assert isinstance(value, bytes)
            out.setdefault(name, []).append(value.decode())
        elif kind == "map":
            assert isinstance(value, bytes)
            entry = _message(value, _MAP)
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif kind == "int":
            assert isinstance(value, int)
            out[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool":
            out[name] = bool(value)
    return out


def decode(body: bytes) -> JSON:
    """runtime.Unknown envelope → the JSON object the same request would have carried."""
    if not body.startswith(MAGIC):
        raise errors.bad_request(
            "the object provided is unrecognized: protobuf body without the k8s magic prefix"
        )
    envelope = dict(_fields(body[len(MAGIC) :]))
    type_meta = envelope.get(1, b"")
    raw = envelope.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise errors.bad_request("the object provided is unrecognized: malformed protobuf envelope")
    tm = _message(type_meta, {1: ("apiVersion", "string"), 2: ("kind", "string")})
    schema = SCHEMAS.get(tm.get("kind", ""))
    if schema is None:
        raise errors.ApiError(
            415,
            "UnsupportedMediaType",
            f"the sandbox decodes protobuf only for {', '.join(sorted(SCHEMAS))}, "
            f"not {tm.get('kind')!r}; send JSON",
        )
    obj = _message(raw, schema)
    obj.update(tm)
    return obj
