"""Which AWS calls an IAM policy allows, from a record of the calls a run made.

Pure helpers, plus one recorder:
- `iam_action("ec2", "DescribeInstances")` → "ec2:DescribeInstances": botocore's operation name
  under the service's IAM prefix (its signing name), with the few known exceptions in a table.
- `resource_arns(...)`: the ARNs a call acts on, for the actions the policy scopes; "*" otherwise.
- `policy_coverage(policy, calls)` → the calls the policy refuses and the actions it grants that no
  call used.
- `CallRecorder`: botocore's public event hook (`before-parameter-build`) on a boto3 Session handed to
  `AwsAdapter(session=...)`: every API request the adapter's clients send, every page included.
- `recording_every_session(recorder, caller=...)`: the same hook on every botocore session created in
  the block (botocore registers its built-in handlers on each new session), keeping only the calls
  made from one module's code — the bot's own `AwsAdapter(region)` instances, built deep inside
  `migratebot serve`'s composition, beside the sandbox's own boto3 clients in the same process.
- `operations_in_source(path)`: every boto3 operation a module's code names (`self._ec2.describe_images(`,
  `get_paginator("describe_instances")`), read from its syntax tree, with no run at all.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import botocore.handlers
import botocore.session
from botocore import xform_name

JSON = dict[str, Any]

# IAM action names that are not the API operation's name (IAM's "Actions, resources, and
# condition keys" reference). None of them is called by migratebot today; the table is where a new
# one goes.
_ACTION_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
}


@dataclass(frozen=True, order=True)
class Call:
    service: str  # botocore's service name: "ec2", "eks", "inspector2"
    operation: str  # botocore's operation name: "DescribeInstances"
    resources: tuple[str, ...] = ("*",)

    @property
    def action(self) -> str:
        return iam_action(self.service, self.operation)

    def __str__(self) -> str:
        return f"{self.action} on {', '.join(self.resources)}"


@dataclass(frozen=True)
class PolicyCoverage:
    denied: tuple[Call, ...]  # calls no Allow statement covers
    unused: tuple[str, ...]  # granted actions no call used

    def report(self) -> str:
        lines = [f"  denied: {c}" for c in self.denied] + [f"  unused: {a}" for a in self.unused]
        return "\n".join(lines) or "every call allowed, every grant used"


_models = botocore.session.get_session()
_lock = threading.Lock()


def _service_model(service: str) -> Any:
    with _lock:
        return _models.get_service_model(service)


def iam_action(service: str, operation: str) -> str:
    if (service, operation) in _ACTION_EXCEPTIONS:
        return _ACTION_EXCEPTIONS[(service, operation)]
    prefix = _service_model(service).signing_name or service
    return f"{prefix}:{operation}"


def operation_name(service: str, method: str) -> str:
    """boto3's snake_case method → botocore's operation name (describe_instances → DescribeInstances)."""
    model = _service_model(service)
    names = {xform_name(op): str(op) for op in model.operation_names}
    return names[method]


def resource_arns(
    service: str, operation: str, params: Mapping[str, Any], region: str, account: str
) -> tuple[str, ...]:
    """The ARNs the call acts on where IAM can scope it (the statements docs/iam-policy.json
    narrows); ("*",) for actions that support no resource-level permission."""
    if service == "eks" and "nodegroupName" in params:
        return (
            f"arn:aws:eks:{region}:{account}:nodegroup/{params['clusterName']}/{params['nodegroupName']}/*",
        )
    if service == "eks" and "clusterName" in params:
        return (f"arn:aws:eks:{region}:{account}:cluster/{params['clusterName']}",)
    if service == "ssm" and "Name" in params:
        # Public parameters belong to no account: their ARN has an empty account field.
        name = str(params["Name"])
        owner = "" if name.startswith("/aws/service/") else account
        return (f"arn:aws:ssm:{region}:{owner}:parameter{name}",)
    if service == "iam" and "InstanceProfileName" in params:
        return (f"arn:aws:iam::{account}:instance-profile/{params['InstanceProfileName']}",)
    if service == "iam" and "RoleName" in params:
        return (f"arn:aws:iam::{account}:role/{params['RoleName']}",)
    if service == "iam" and "PolicyArn" in params:
        return (str(params["PolicyArn"]),)
    return ("*",)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches(patterns: Iterable[str], value: str, *, case_sensitive: bool) -> bool:
    if case_sensitive:
        return any(fnmatch.fnmatchcase(value, p) for p in patterns)
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)


def allows(policy: Mapping[str, Any], action: str, resource: str) -> bool:
    """An identity policy of Allow statements (no Deny, NotAction or Condition: the file has none;
    they are refused rather than misread)."""
    allowed = False
    for statement in policy["Statement"]:
        unsupported = {"NotAction", "NotResource", "Condition"} & statement.keys()
        if unsupported or statement["Effect"] != "Allow":
            raise ValueError(
                f"statement {statement.get('Sid')!r}: {sorted(unsupported) or 'Deny'} not evaluated"
            )
        # Action names are case-insensitive in IAM; resource ARNs are not.
        if _matches(_listed(statement["Action"]), action, case_sensitive=False) and _matches(
            _listed(statement["Resource"]), resource, case_sensitive=True
        ):
            allowed = True
    return allowed


def granted_actions(policy: Mapping[str, Any]) -> set[str]:
    return {a for s in policy["Statement"] for a in _listed(s["Action"])}


def policy_coverage(policy: Mapping[str, Any], calls: Iterable[Call]) -> PolicyCoverage:
    calls = sorted(set(calls))
    denied = tuple(c for c in calls if not all(allows(policy, c.action, r) for r in c.resources))
    used = {c.action.lower() for c in calls}
    return PolicyCoverage(
        denied, unused=tuple(sorted(a for a in granted_actions(policy) if a.lower() not in used))
    )


def load_policy(path: Path) -> JSON:
    policy: JSON = json.loads(path.read_text())
    return policy


class CallRecorder:
    """Records every API call sent through a boto3 Session (botocore's `before-call` event).

    recorder = CallRecorder(region, account)
    session = recorder.attach(boto3.session.Session(...))
    AwsAdapter(region, session=session).describe_nodegroup(...)
    recorder.calls  # [Call("eks", "DescribeNodegroup", ("arn:aws:eks:…:nodegroup/c/ng/*",))]

    `caller`: record only calls made (anywhere up the stack) from code of that module, e.g.
    "bot.adapters.aws.client"; the other calls are counted in `ignored`.
    """

    def __init__(self, region: str, account: str, *, caller: str | None = None) -> None:
        self.region = region
        self.account = account
        self.caller = caller
        self.ignored = 0
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def attach(self, session: boto3.session.Session) -> boto3.session.Session:
        # Emitted once per API request (each page of a paginator too), with the caller's arguments
        # before they are serialized for the wire.
        session.events.register("before-parameter-build", self._record)
        return session

    def _record(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        if self.caller is not None and not _called_from(self.caller):
            with self._lock:
                self.ignored += 1
            return
        service = model.service_model.service_name
        call = Call(
            service, model.name, resource_arns(service, model.name, params, self.region, self.account)
        )
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)


def _called_from(module: str) -> bool:
    """Whether code of `module` is anywhere on the calling thread's stack."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == module:
            return True
        frame = frame.f_back
    return False


@contextmanager
def recording_every_session(recorder: CallRecorder) -> Iterator[CallRecorder]:
    """Attach `recorder` to every botocore session created inside the block: a boto3 Session built
    with no botocore session of its own (boto3's default chain, as `AwsAdapter(region)` does) gets
    botocore's BUILTIN_HANDLERS registered on its fresh event emitter. The hook only reads the
    operation and its parameters; nothing the client sends or receives changes. Sessions created
    before the block are not recorded — give `recorder` a `caller` to keep only the bot's calls."""
    builtin = botocore.handlers.BUILTIN_HANDLERS
    botocore.handlers.BUILTIN_HANDLERS = [*builtin, ("before-parameter-build", recorder._record)]
    try:
        yield recorder
    finally:
        botocore.handlers.BUILTIN_HANDLERS = builtin


def operations_in_source(path: Path) -> set[tuple[str, str]]:
    """(service, operation) for every boto3 call a module makes on clients it builds with
    `session.client("svc", …)` and keeps in `self._name` (an attribute or a cached property)."""
    tree = ast.parse(path.read_text())
    clients: dict[str, str] = {}
    for node in ast.walk(tree):
        # self._ec2 = self._session.client("ec2", …)   or   def _iam(self): return self._session.client("iam")
        target: str | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if len(targets) == 1 and isinstance(targets[0], ast.Attribute):
                target, value = targets[0].attr, node.value
        elif isinstance(node, ast.FunctionDef) and node.body and isinstance(node.body[-1], ast.Return):
            target, value = node.name, node.body[-1].value
        if (
            target
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "client"
            and value.args
            and isinstance(value.args[0], ast.Constant)
        ):
            clients[target] = str(value.args[0].value)
    operations: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Attribute) and owner.attr in clients):
            continue
        service, method = clients[owner.attr], node.func.attr
        if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            method = str(node.args[0].value)
        operations.add((service, operation_name(service, method)))
    return operations


def actions_of(operations: Sequence[tuple[str, str]] | set[tuple[str, str]]) -> set[str]:
    return {iam_action(service, op) for service, op in operations}
