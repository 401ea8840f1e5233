"""Server-side printing: the meta.k8s.io/v1 Table kubectl asks for (`Accept: …;as=Table`).

Columns follow the apiserver's printers (pkg/printers/internalversion/printers.go) for nodes and
pods, NAME/AGE for other built-ins, and the CRD's additionalPrinterColumns for custom resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request

from sandbox.kube.jsontypes import JSON, JSONValue
from sandbox.kube.resources import PrinterColumn, ResourceType


def wants_table(request: Request) -> bool:
    """kubectl get asks for `application/json;as=Table;v=v1;g=meta.k8s.io` (server-side printing)."""
    accept = request.headers.get("accept", "")
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, which kubectl's AGE column shows."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(timestamp: str | None, now: float) -> str:
    if not timestamp:
        return "<unknown>"
    ts = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return human_duration(now - ts)


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "", description: str = "") -> JSON:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


_NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
_AGE = _col(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)

NODE_COLUMNS = [
    _NAME,
    _col("Status", description="The status of the node"),
    _col("Roles", description="The roles of the node"),
    _AGE,
    _col("Version", description="Kubelet Version reported by the node."),
    _col("Internal-IP", priority=1, description="List of internal IPs of the node."),
    _col("External-IP", priority=1, description="List of external IPs of the node."),
    _col("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release."),
    _col("Kernel-Version", priority=1, description="Kernel Version reported by the node."),
    _col("Container-Runtime", priority=1, description="Container Runtime Version reported by the node."),
]

POD_COLUMNS = [
    _NAME,
    _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", description="The aggregate status of the containers in this pod."),
    _col("Restarts", description="The number of times the containers in this pod have been restarted."),
    _AGE,
    _col("IP", priority=1, description="IP address allocated to the pod."),
    _col("Node", priority=1, description="Name of the Node this pod is assigned to."),
    _col("Nominated Node", priority=1, description="Name of the node this pod is nominated to run on."),
    _col("Readiness Gates", priority=1, description="Conditions the pod must satisfy to be ready."),
]


EVENT_COLUMNS = [
    _col("Last Seen", description="Time when this Event was last observed."),
    _col("Type", description="Type of this event (Normal, Warning)."),
    _col("Reason", description="Short, machine understandable string that gives the reason for this event."),
    _col("Object", description="The object that this event is about."),
    _col("Subobject", priority=1, description="The field path of the object this event is about."),
    _col("Source", priority=1, description="The component reporting this event."),
    _col("Message", description="A human-readable description of the status of this operation."),
    _col("First Seen", priority=1, description="The time at which the event was first recorded."),
    _col("Count", priority=1, description="The number of times this event has occurred."),
    _col("Name", priority=1, description="Name of the event."),
]


def _event_row(event: JSON, now: float) -> list[JSONValue]:
    """printers.go printEvent, for core/v1 and events.k8s.io/v1 shapes alike."""
    obj = event.get("involvedObject") or event.get("regarding") or {}
    last = event.get("lastTimestamp") or event.get("deprecatedLastTimestamp") or event.get("eventTime")
    first = event.get("firstTimestamp") or event.get("deprecatedFirstTimestamp") or event.get("eventTime")
    source = event.get("source") or event.get("deprecatedSource") or {}
    component = (
        event.get("reportingComponent") or event.get("reportingController") or source.get("component", "")
    )
    count = event.get("count") or event.get("deprecatedCount") or 1
    return [
        _age(_seconds(last), now),
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}",
        obj.get("fieldPath", ""),
        component,
        event.get("message") or event.get("note", ""),
        _age(_seconds(first), now),
        count,
        event["metadata"]["name"],
    ]


def _seconds(timestamp: str | None) -> str | None:
    """MicroTime (…:05.123456Z) → the second-precision form _age reads."""
    if not timestamp:
        return None
    return timestamp.split(".")[0].rstrip("Z") + "Z"


def _node_row(node: JSON, now: float) -> list[JSONValue]:
    meta, spec, status = node["metadata"], node.get("spec", {}), node.get("status", {})
    ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    states = ["Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    labels = meta.get("labels") or {}
    roles = sorted(
        {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k}
        | ({labels["kubernetes.io/role"]} if "kubernetes.io/role" in labels else set())
    )
    addresses = status.get("addresses") or []

    def address(kind: str) -> str:
        return next((a["address"] for a in addresses if a.get("type") == kind), "<none>")

    info = status.get("nodeInfo") or {}
    return [
        meta["name"],
        ",".join(states),
        ",".join(roles) or "<none>",
        _age(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _pod_row(pod: JSON, now: float) -> list[JSONValue]:
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    reason = status.get("reason") or status.get("phase") or "Pending"
    for c in statuses:
        state = c.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if meta.get("deletionTimestamp"):
        reason = "Terminating"
    gates = spec.get("readinessGates") or []
    if gates:
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
        gate_text = (
            f"{sum(1 for g in gates if conditions.get(g.get('conditionType')) == 'True')}/{len(gates)}"
        )
    else:
        gate_text = "<none>"
    return [
        meta["name"],
        f"{ready}/{len(containers)}",
        reason,
        restarts,
        _age(meta.get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gate_text,
    ]


# ---- JSONPath (the subset additionalPrinterColumns use) -------------------------------------------

_SEGMENT = re.compile(r"\.((?:\\\.|[^.\[])+)|\[\?\(@\.(\w+)==\"([^\"]*)\"\)\]|\[(\d+)\]")


def json_path(obj: JSONValue, path: str) -> JSONValue:
    values = [obj]
    for m in _SEGMENT.finditer(path):
        field, filter_key, filter_value, index = m.groups()
        nxt: list[JSONValue] = []
        for v in values:
            if field is not None and isinstance(v, dict):
                key = field.replace("\\.", ".")
                if key in v:
                    nxt.append(v[key])
            elif filter_key is not None and isinstance(v, list):
                nxt.extend(x for x in v if isinstance(x, dict) and str(x.get(filter_key)) == filter_value)
            elif index is not None and isinstance(v, list) and int(index) < len(v):
                nxt.append(v[int(index)])
        values = nxt
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _custom_cell(obj: JSON, col: PrinterColumn, now: float) -> JSONValue:
    value = json_path(obj, col.json_path)
    if value is None:
        return None
    if col.type == "date":
        return _age(str(value), now)
    if isinstance(value, dict | list):
        import orjson

        return orjson.dumps(value).decode()
    return value


def table(rt: ResourceType, items: list[JSON], now: float, include_object: str, metadata: JSON) -> JSON:
    row_fn: Callable[[JSON], list[JSONValue]]
    if rt.key == "/nodes":
        columns = NODE_COLUMNS
        row_fn = lambda o: _node_row(o, now)  # noqa: E731
    elif rt.key == "/pods":
        columns = POD_COLUMNS
        row_fn = lambda o: _pod_row(o, now)  # noqa: E731
    elif rt.plural == "events":
        columns = EVENT_COLUMNS
        row_fn = lambda o: _event_row(o, now)  # noqa: E731
    elif rt.printer_columns:
        custom = rt.printer_columns
        columns = [_NAME] + [
            _col(c.name, c.type if c.type != "date" else "date", c.priority, description=c.description)
            for c in custom
        ]
        row_fn = lambda o: [o["metadata"]["name"]] + [_custom_cell(o, c, now) for c in custom]  # noqa: E731
    else:
        columns = [_NAME, _AGE]
        row_fn = lambda o: [o["metadata"]["name"], _age(o["metadata"].get("creationTimestamp"), now)]  # noqa: E731
    rows = []
    for obj in items:
        row: JSON = {"cells": row_fn(obj)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    }
