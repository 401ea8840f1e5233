"""Read a plan file and report every problem in it with file:line:column, what is wrong and the fix.

ruamel.yaml's round-trip loader keeps the line and column of every key and item; pydantic collects
every validation error with its location in the data; this module joins the two.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from bot.plan.fields import describe
from bot.plan.models import Plan, Wave, rule_breaks
from bot.plan.problems import PlanInvalid, PlanProblem

SEE_EXAMPLE = "see examples/plan.yaml for a complete, valid plan"
# Aliases can make a small file expand into a huge document ("billion laughs"); no real plan comes
# anywhere near this many values.
MAX_VALUES = 20_000

_ROLE_PURPOSE = {
    "sre": "SREs request waves",
    "team_leads": "team leads approve waves",
    "oncall": "on-call answers canary alerts",
}
# What to write for a missing key whose value is a whole section rather than a scalar.
_SECTION_HINTS = {
    "clusters": "clusters: [{name: prod, region: us-west-2, kube_context: prod}]",
    "channels": "channels: {migration: C…, alerts: C…}",
    "roles": "roles: with sre, team_leads and oncall, each listing users: [U…] and/or usergroups: [S…]",
    "sre": "sre: {users: [U…]} (and/or usergroups: [S…])",
    "team_leads": "team_leads: {users: [U…]} (and/or usergroups: [S…])",
    "oncall": "oncall: {usergroups: [S…]} (and/or users: [U…])",
    "target": "target: with ec2nodeclass and nodepool",
    "ec2nodeclass": "ec2nodeclass: with name, ami_alias, role and selector terms",
    "nodepool": "nodepool: {name: bottlerocket, requirements: [...]}",
    "waves": "waves: with one entry per wave (name, selector, strategy, max_parallel_nodes, bake)",
    "selector": "selector: {nodepools: [...]} (or managed_node_groups, node_labels, namespaces)",
    "change_windows": 'change_windows: [{schedule: "0 9 * * 1-4", duration: 6h, timezone: UTC}]',
    "version": "version: 1",
}


def load_plan(path: Path) -> Plan:
    """Read and validate the plan at `path`; raise PlanInvalid listing every problem."""
    name = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        _refuse(name, "there is no file at this path", f"check the path; {SEE_EXAMPLE}")
    except IsADirectoryError:
        _refuse(name, "this is a directory, not a plan file", "give the path of the plan's YAML file")
    except PermissionError:
        _refuse(name, "migratebot may not read this file", "make it readable by the user running migratebot")
    except UnicodeDecodeError as exc:
        _refuse(name, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})", "save it as UTF-8")
    except OSError as exc:
        _refuse(name, f"the file can't be read: {exc.strerror or exc}", "check the path and the file system")
    return parse_plan(text, name)


def parse_plan(text: str, filename: str) -> Plan:
    """Validate plan text; `filename` is what problems cite. Raise PlanInvalid listing every problem."""
    problems: list[PlanProblem] = []
    # Duplicate keys don't stop here: the rest of the plan is still worth checking.
    document = _read_yaml(text, filename, problems)
    if document is None:
        if problems:
            raise PlanInvalid(problems)
        _refuse(filename, "the plan is empty", f"write the plan's sections; {SEE_EXAMPLE}", line=1)
    if not isinstance(document, CommentedMap):
        line, column = _node_position(document)
        _refuse(
            filename,
            f"a plan is a mapping of sections (version, clusters, roles, waves, …), not {describe(document)}",
            SEE_EXAMPLE,
            line=line,
            column=column,
        )
    try:
        data = _plain(document, _Budget())
    except _Unusable as exc:
        _refuse(filename, exc.message, exc.fix, line=1)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        errors = [*exc.errors(), *_rule_breaks_between_valid_sections(data)]
    else:
        if not problems:
            return plan
        errors = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        problem = _problem(error, document, filename)
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            problems.append(problem)
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    raise PlanInvalid(problems)


def _refuse(filename: str, message: str, fix: str, *, line: int | None = None, column: int = 1) -> Any:
    raise PlanInvalid([PlanProblem(filename, line, column if line else None, "", message, fix)])


# ---- YAML ---------------------------------------------------------------------------------------


class _ComplexKeys(Exception):
    pass


class _CheckingConstructor(RoundTripConstructor):
    """Checks the keys of the composed document before building it, in the same single parse."""

    key_problems: list[PlanProblem]

    def construct_document(self, node: Node) -> Any:
        self.key_problems = list(_key_problems(node))
        if any(p.message.startswith(_COMPLEX_KEY) for p in self.key_problems):
            # ruamel's constructor crashes on some complex keys; they are never valid in a plan.
            raise _ComplexKeys
        return super().construct_document(node)


def _read_yaml(text: str, filename: str, problems: list[PlanProblem]) -> Any:
    yaml = YAML(typ="rt")
    yaml.Constructor = _CheckingConstructor
    # Duplicates are reported by _CheckingConstructor, all of them, with both places.
    yaml.allow_duplicate_keys = True
    try:
        document = yaml.load(text)
        problems.extend(replace(p, file=filename) for p in getattr(yaml.constructor, "key_problems", ()))
        return document
    except _ComplexKeys:
        problems.extend(replace(p, file=filename) for p in yaml.constructor.key_problems)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        problems.append(
            PlanProblem(
                filename,
                mark.line + 1 if mark else 1,
                mark.column + 1 if mark else 1,
                "",
                f"the YAML is malformed: {problem}",
                "check indentation and quoting there; quote values containing ': ' or starting with "
                "* & ! % @ ` { [",
            )
        )
    except ReaderError as exc:
        line, column = _offset_position(text, exc.position)
        problems.append(
            PlanProblem(
                filename,
                line,
                column,
                "",
                f"the file contains a character YAML doesn't allow ({exc.character!r})",
                "remove it, or write it as an escape inside a double-quoted string",
            )
        )
    except RecursionError:
        problems.append(PlanProblem(filename, 1, 1, "", "the YAML is nested too deeply to read", SEE_EXAMPLE))
    except YAMLError as exc:
        problems.append(PlanProblem(filename, 1, 1, "", f"the YAML can't be read: {exc}", SEE_EXAMPLE))
    except Exception as exc:
        # The YAML library is the boundary with arbitrary input and has crashed on odd but valid
        # YAML before; the operator needs a problem to act on, not a traceback.
        problems.append(
            PlanProblem(
                filename, 1, 1, "", f"the YAML can't be read ({type(exc).__name__}: {exc})", SEE_EXAMPLE
            )
        )
    return None


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


_COMPLEX_KEY = "a key must be plain text"


def _key_problems(root: Node) -> Iterator[PlanProblem]:
    """Duplicate keys (all of them, which ruamel would stop at the first of) and non-text keys."""
    visited: set[int] = set()
    stack: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in visited:  # an alias: already checked where it was anchored
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            first_seen: dict[tuple[Any, Any], Node] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    earlier = first_seen.setdefault((key.tag, key.value), key)
                    if earlier is not key:
                        yield PlanProblem(
                            "",
                            key.start_mark.line + 1,
                            key.start_mark.column + 1,
                            _path_text((*path, key.value)),
                            f"key {key.value!r} appears twice in this mapping "
                            f"(first on line {earlier.start_mark.line + 1}); YAML would silently keep one",
                            "keep a single entry and delete the other",
                        )
                if not isinstance(key, ScalarNode):
                    yield PlanProblem(
                        "",
                        key.start_mark.line + 1,
                        key.start_mark.column + 1,
                        _path_text(path),
                        f"{_COMPLEX_KEY}, not a {'list' if isinstance(key, SequenceNode) else 'mapping'}",
                        "write the key as a word; a '? ' at the start of a line makes the next node a key",
                    )
                    continue
                step = key.value
                stack.append((value, (*path, step)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*path, index)) for index, item in enumerate(node.value))


class _Unusable(Exception):
    def __init__(self, message: str, fix: str) -> None:
        self.message, self.fix = message, fix


@dataclass
class _Budget:
    left: int = MAX_VALUES


def _plain(value: Any, budget: _Budget, ancestors: frozenset[int] = frozenset()) -> Any:
    """The document as plain dicts, lists and scalars, so that validation sees YAML's types only."""
    budget.left -= 1
    if budget.left < 0:
        raise _Unusable(
            f"the plan expands to more than {MAX_VALUES} values (through YAML aliases?)",
            "write the plan out without aliases that repeat large parts",
        )
    if isinstance(value, (dict, list)):
        if id(value) in ancestors:
            raise _Unusable(
                "the YAML refers to itself through an alias (*name inside the &name it points to)",
                "remove the alias that points back at its own anchor",
            )
        inner = ancestors | {id(value)}
        if isinstance(value, dict):
            return {_plain_key(k): _plain(v, budget, inner) for k, v in value.items()}
        return [_plain(item, budget, inner) for item in value]
    if isinstance(value, ScalarBoolean):
        return bool(value)
    if isinstance(value, bool | None):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def _plain_key(key: Any) -> Any:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool | int | float | None):
        return key
    # Complex keys (`? [a, b]`) are never valid in a plan; their text is enough to name them.
    return str(key)


# ---- rules between sections when some sections are invalid ------------------------------------


@cache
def _section_adapter(name: str) -> TypeAdapter[Any]:
    field = Plan.model_fields[name]
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated.__class_getitem__((annotation, *field.metadata))  # type: ignore[attr-defined]
    return TypeAdapter(annotation)


def _rule_breaks_between_valid_sections(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        return []
    sections: dict[str, Any] = {}
    for name in ("clusters", "roles", "approvals", "waves", "canary", "blocking", "impersonation"):
        field = Plan.model_fields[name]
        if name not in data:
            sections[name] = None if field.is_required() else field.get_default(call_default_factory=True)
            continue
        try:
            sections[name] = _section_adapter(name).validate_python(data[name])
        except ValidationError:
            sections[name] = None
    if sections["waves"] is not None:
        sections["waves"] = enumerate(sections["waves"])
    elif isinstance(data.get("waves"), list):
        sections["waves"] = list(_valid_waves(data["waves"]))
    return [
        {"type": "plan", "loc": loc, "msg": error.message, "input": None, "ctx": error.context or {}}
        for loc, error in rule_breaks(**sections)
    ]


def _valid_waves(waves: list[Any]) -> Iterator[tuple[int, Wave]]:
    for index, wave in enumerate(waves):
        try:
            yield index, Wave.model_validate(wave)
        except ValidationError:
            continue


# ---- from a validation error to a problem -----------------------------------------------------


def _problem(error: Mapping[str, Any], document: CommentedMap, filename: str) -> PlanProblem:
    loc: tuple[Any, ...] = tuple(error["loc"])
    kind: str = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    steps, at_key = _data_steps(document, loc)
    if kind == "missing" and loc:
        steps_for_path = [*steps, loc[-1]] if not steps or steps[-1] != loc[-1] else steps
    else:
        steps_for_path = steps
    at_key = at_key or kind == "extra_forbidden" or bool(ctx.get("at_key"))
    line, column = _position(document, steps, at_key=at_key)
    message, fix = _explain(kind, loc, steps_for_path, error, ctx)
    return PlanProblem(filename, line, column, _path_text(steps_for_path), message, fix)


def _data_steps(document: Any, loc: tuple[Any, ...]) -> tuple[list[str | int], bool]:
    """The part of pydantic's `loc` that names places in the document (not union members)."""
    steps: list[str | int] = []
    node = document
    at_key = False
    for part in loc:
        if part == "[key]":
            at_key = True
            break
        if (isinstance(node, Mapping) and _has_key(node, part)) or _is_index(node, part):
            steps.append(part)
            node = node[part]
    return steps, at_key


def _is_index(node: Any, part: Any) -> bool:
    return (
        isinstance(node, Sequence)
        and not isinstance(node, str)
        and isinstance(part, int)
        and 0 <= part < len(node)
    )


def _has_key(mapping: Mapping[Any, Any], key: Any) -> bool:
    try:
        return key in mapping
    except TypeError:
        return False


def _position(document: CommentedMap, steps: Sequence[str | int], *, at_key: bool) -> tuple[int, int]:
    """1-based line and column: the key itself, or the value (block collections: the key holding it)."""
    parent: Any = document
    for step in steps[:-1]:
        parent = parent[step]
    if not steps:
        return _node_position(document)
    last = steps[-1]
    value = parent[last]
    block = value is None or (isinstance(value, CommentedMap | CommentedSeq) and not value.fa.flow_style())
    try:
        if isinstance(parent, CommentedSeq):
            line, column = parent.lc.item(last)
        elif at_key or block:
            line, column = parent.lc.key(last)
        else:
            line, column = parent.lc.value(last)
    except (KeyError, IndexError, TypeError, AttributeError):
        # merge keys (<<: *anchor) have no position of their own: cite the mapping they were merged into
        return _position(document, steps[:-1], at_key=True)
    return line + 1, column + 1


def _node_position(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        return lc.line + 1, lc.col + 1
    return 1, 1


def _path_text(steps: Sequence[Any]) -> str:
    text = ""
    for step in steps:
        if isinstance(step, int) and not isinstance(step, bool):
            text += f"[{step}]"
        elif isinstance(step, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step):
            text += f".{step}" if text else step
        else:
            text += f"[{json.dumps(str(step), ensure_ascii=False)}]"
    return text


def _explain(
    kind: str, loc: tuple[Any, ...], steps: Sequence[Any], error: Mapping[str, Any], ctx: Mapping[str, Any]
) -> tuple[str, str]:
    value = error.get("input")
    key = steps[-1] if steps else None
    if kind == "plan":
        message, fix = str(ctx.get("message", error["msg"])), str(ctx.get("fix", SEE_EXAMPLE))
        if isinstance(key, str) and key in _ROLE_PURPOSE and len(steps) == 2 and steps[0] == "roles":
            message = f"{message} ({_ROLE_PURPOSE[key]})"
        return message, fix
    if kind == "missing":
        return _explain_missing(loc, steps)
    if kind == "extra_forbidden":
        return _explain_unknown_key(loc, key)
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected) or re.findall(r"[^\s,]+", expected.replace(" or ", ","))
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if steps == ["version"]:
            return f"{describe(value)} is not a plan version this migratebot reads", "write version: 1"
        return f"{describe(value)} is not one of {expected}", f"{hint}use one of {expected}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        if steps == ["approvals", "required"]:
            return (
                f"approvals.required is {value}: every wave needs at least one team lead's approval",
                "set required: 1 or more",
            )
        bound = next(iter(ctx.values()), "?")
        relation, fix = {
            "greater_than_equal": ("at least", f"use {bound} or more"),
            "greater_than": ("more than", f"use a value above {bound}"),
            "less_than_equal": ("at most", f"use {bound} or less"),
            "less_than": ("less than", f"use a value below {bound}"),
        }[kind]
        return f"{value} is out of range: it must be {relation} {bound}", fix
    if kind == "string_too_short":
        return f"{key} is empty", f"write a value for {key}"
    if kind == "string_too_long":
        return f"{key} is too long: at most {ctx.get('max_length')} characters", f"shorten {key}"
    if kind == "string_pattern_mismatch":
        return (
            f"{describe(value)} is not an http:// or https:// URL",
            "write a URL like http://prometheus:9090",
        )
    type_fixes = {
        "bool_type": (
            "true or false",
            "write true or false without quotes (yes/no/on/off are text in YAML 1.2)",
        ),
        "int_type": ("a whole number", "write a whole number without quotes"),
        "float_type": ("a number", "write a number without quotes"),
        "string_type": ("text", "write text; quote it if YAML reads it as something else"),
        "list_type": ("a list", "write a list: [a, b], or one '- item' per line"),
        "tuple_type": ("a list", "write a list: [a, b], or one '- item' per line"),
        "dict_type": ("a mapping", "write key: value pairs indented under the key"),
        "model_type": ("a mapping", "write key: value pairs indented under the key"),
        "model_attributes_type": ("a mapping", "write key: value pairs indented under the key"),
    }
    if kind in type_fixes:
        expected_kind, fix = type_fixes[kind]
        if kind in ("model_type", "model_attributes_type") and isinstance(key, str) and key in _SECTION_HINTS:
            fix = f"write {_SECTION_HINTS[key]}"
        return f"expected {expected_kind}, got {describe(value)}", fix
    if kind == "value_error" and isinstance(ctx.get("error"), Exception):
        return str(ctx["error"]), SEE_EXAMPLE
    return _sentence(str(error["msg"])), SEE_EXAMPLE


def _sentence(text: str) -> str:
    return text[:1].lower() + text[1:]


def _explain_missing(loc: tuple[Any, ...], steps: Sequence[Any]) -> tuple[str, str]:
    key = str(loc[-1])
    if len(loc) == 2 and loc[0] == "roles" and key in _ROLE_PURPOSE:
        return (
            f"role {key} is missing; every plan needs it ({_ROLE_PURPOSE[key]})",
            f"add under roles: {_SECTION_HINTS[key]}",
        )
    if key in _SECTION_HINTS:
        return f"{key} is missing", f"add {_SECTION_HINTS[key]}"
    model = _model_at(loc[:-1])
    examples = model.model_fields[key].examples if model is not None and key in model.model_fields else None
    if examples:
        return f"{key} is missing", f"add {key}: {examples[0]}"
    return f"{key} is missing", f"add {key}: ({SEE_EXAMPLE})"


def _explain_unknown_key(loc: tuple[Any, ...], key: Any) -> tuple[str, str]:
    if tuple(loc[-2:]) == ("approvals", "self_approval"):
        return (
            "self_approval is not a setting: self-approval is always forbidden, the person who requests "
            "a wave can never approve it",
            "remove self_approval; approvals.required counts approvals from team leads other than "
            "the requester",
        )
    model = _model_at(loc[:-1])
    valid = list(model.model_fields) if model is not None else []
    if model is Plan and key == "self_approval":
        valid = []
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    choices = ", ".join(valid)
    if close:
        return f"unknown key {str(key)!r}", f"did you mean {close[0]!r}? (valid here: {choices})"
    if valid:
        return f"unknown key {str(key)!r}", f"remove it; valid keys here: {choices}"
    return f"unknown key {str(key)!r}", f"remove it ({SEE_EXAMPLE})"


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, following fields, lists and dicts."""
    current: Any = Plan
    for part in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        elif get_origin(current) is tuple:
            current = get_args(current)[0]
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            return None
    current = _strip(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _strip(annotation: Any) -> Any:
    """X from Annotated[X, ...] and from X | None."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
