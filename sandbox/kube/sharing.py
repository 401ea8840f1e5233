"""Structural sharing for bulk loads: equal parts of many stored objects become one object.

100,000 pods of 2,000 Deployments repeat the same containers, volumes, tolerations, labels, owner
references and conditions 50 times each; as separate dicts they cost ~12 KB per pod (1.2 GB). The
store never mutates a stored dict (every write builds a new one, readers deep-copy before changing),
so equal subtrees can be one object: the JSON served is byte for byte the same.

Only the values directly under `metadata`, `spec` and `status` are shared (the sections themselves
stay per object: the store writes uid, resourceVersion, nodeName there), keyed by their orjson
bytes. Per-object fields that are never equal are skipped to keep the pool small. Repeated string
values at that level (node names, phases, timestamps) are shared too.
"""

from __future__ import annotations

import orjson

from sandbox.kube.jsontypes import JSON, JSONValue

SECTIONS = ("metadata", "spec", "status")
# Unique per object: hashing them would only grow the pool.
NEVER_EQUAL = frozenset({"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"})


class Sharer:
    """One pool of canonical values, for one bulk load (drop it afterwards: it keeps keys alive)."""

    def __init__(self) -> None:
        self._values: dict[bytes, JSONValue] = {}
        self._strings: dict[str, str] = {}

    def share(self, obj: JSON) -> None:
        """Replace `obj`'s sections' values by equal canonical ones, in place (before anyone reads it)."""
        for section in SECTIONS:
            part = obj.get(section)
            if not isinstance(part, dict):
                continue
            for key, value in part.items():
                if isinstance(value, str):
                    part[key] = self._strings.setdefault(value, value)
                elif isinstance(value, (dict, list)) and key not in NEVER_EQUAL:
                    part[key] = self._values.setdefault(orjson.dumps(value), value)
