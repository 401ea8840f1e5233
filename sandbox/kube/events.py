"""events.k8s.io/v1 served from the core/v1 events storage, as the apiserver does.

Both APIs read and write the same objects (one etcd resource, converted per request version), so an
event written by a controller through core/v1 is listed through events.k8s.io/v1 and vice versa.
Field mapping follows pkg/apis/events/v1/conversion.go.
"""

from __future__ import annotations

from sandbox.kube.jsontypes import JSON

# events.k8s.io/v1 name → core/v1 name
_RENAMES = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_SHARED = ("metadata", "eventTime", "series", "reason", "type", "action", "related", "reportingInstance")

# Field selector labels of events.k8s.io/v1 → the stored (core/v1) field they select on.
FIELD_LABELS = {f"regarding.{k}": f"involvedObject.{k}" for k in ("kind", "namespace", "name", "uid")} | {
    "reportingController": "reportingComponent",
    "reason": "reason",
    "type": "type",
}


def to_core(event: JSON) -> JSON:
    out: JSON = {"apiVersion": "v1", "kind": "Event"}
    for key in _SHARED:
        if key in event:
            out[key] = event[key]
    for new, old in _RENAMES.items():
        if new in event:
            out[old] = event[new]
    return out


def from_core(event: JSON) -> JSON:
    out: JSON = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key in _SHARED:
        if key in event:
            out[key] = event[key]
    for new, old in _RENAMES.items():
        if old in event:
            out[new] = event[old]
    series = event.get("series")
    if isinstance(series, dict) and "lastObservedTime" not in series:
        out["series"] = dict(series, lastObservedTime=event.get("lastTimestamp"))
    return out
