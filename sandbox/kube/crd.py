"""CustomResourceDefinitions: served like the apiextensions-apiserver serves them.

On every write of a custom resource: prune unknown fields, apply schema defaults, validate the
OpenAPI schema (with `jsonschema`, after turning the structural schema into JSON Schema) and the
`x-kubernetes-validations` CEL rules (with cel-python plus the Kubernetes string extensions the
Karpenter rules use), and answer 422 Invalid with the apiserver's message shapes.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import celpy
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError, CELFunction
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from sandbox.kube import errors
from sandbox.kube.jsontypes import JSON, JSONValue
from sandbox.kube.resources import PrinterColumn, ResourceType
from sandbox.kube.store import deep_copy

# Shipped as package data next to this package (pyproject: sandbox = ["crds/*.yaml"]).
CRD_DIR = Path(__file__).resolve().parent.parent / "crds"


def _cel_split(s: celtypes.StringType, sep: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(x) for x in str(s).split(str(sep))])


def _cel_find(s: celtypes.StringType, pattern: celtypes.StringType) -> celtypes.StringType:
    m = re.search(str(pattern), str(s))
    return celtypes.StringType(m.group(0) if m else "")


def _cel_lower(s: celtypes.StringType) -> celtypes.StringType:
    return celtypes.StringType(str(s).lower())


# Kubernetes' CEL environment adds the cel-go strings extension library; these are the functions of
# it the Karpenter CRDs call, which base CEL (and so cel-python) does not have.
_K8S_FUNCTIONS: dict[str, CELFunction] = {
    "split": _cel_split,
    "find": _cel_find,
    "lowerAscii": _cel_lower,
}
_CEL_ENV = celpy.Environment()


@cache
def _program(rule: str) -> celpy.Runner:
    return _CEL_ENV.program(_CEL_ENV.compile(rule), functions=_K8S_FUNCTIONS)


def _to_json_schema(schema: JSON) -> JSON:
    """Structural OpenAPI v3 → JSON Schema: `nullable` becomes a null type; extensions are left for
    the CEL and pruning walks (jsonschema ignores unknown keywords)."""
    out: JSON = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _to_json_schema(value)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [_to_json_schema(v) for v in value]
        elif key in ("description", "x-kubernetes-validations", "default"):
            continue
        else:
            out[key] = value
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def _path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _quote(value: JSONValue) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return f'"{_type_name(value)}"'
    return str(value)


def _type_name(value: JSONValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _schema_cause(e: ValidationError) -> list[JSON]:
    """jsonschema error → apiserver field errors (kube-openapi's validate messages)."""
    parts: list[str | int] = list(e.absolute_path)
    field = _path(parts)
    v = e.validator
    value: JSONValue = e.instance
    rule: JSONValue = e.validator_value
    if v == "required":
        missing = [r for r in rule if isinstance(value, dict) and r not in value]
        return [
            errors.field_error("FieldValueRequired", _path([*parts, m]), "Required value") for m in missing
        ]
    if v == "enum":
        supported = ", ".join(_quote(x) for x in rule)
        return [
            errors.field_error(
                "FieldValueNotSupported",
                field,
                f"Unsupported value: {_quote(value)}: supported values: {supported}",
            )
        ]
    if v == "type":
        expected = rule if isinstance(rule, str) else rule[0]
        msg = (
            f"Invalid value: {_quote(value)}: {field} in body must be of type {expected}: "
            f"{_quote(_type_name(value))}"
        )
        return [errors.field_error("FieldValueTypeInvalid", field, msg)]
    texts = {
        "pattern": f"{field} in body should match '{rule}'",
        "maxLength": f"{field} in body should be at most {rule} chars long",
        "minLength": f"{field} in body should be at least {rule} chars long",
        "maximum": f"{field} in body should be less than or equal to {rule}",
        "minimum": f"{field} in body should be greater than or equal to {rule}",
        "maxItems": f"{field} in body should have at most {rule} items",
        "minItems": f"{field} in body should have at least {rule} items",
        "maxProperties": f"{field} in body should have at most {rule} properties",
        "minProperties": f"{field} in body should have at least {rule} properties",
    }
    if v == "maxItems":
        return [
            errors.field_error(
                "FieldValueTooMany", field, f"Too many: {len(value)}: must have at most {rule} items"
            )
        ]
    if v == "maxLength":
        return [
            errors.field_error("FieldValueTooLong", field, f"Too long: may not be more than {rule} bytes")
        ]
    text = texts.get(str(v), e.message)
    return [errors.field_error("FieldValueInvalid", field, f"Invalid value: {_quote(value)}: {text}")]


_REASON_PREFIX = {
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}


class CrdSchema:
    """One served version's schema with its pruning, defaulting and validation."""

    def __init__(self, schema: JSON) -> None:
        self.schema = schema
        self._validator = Draft7Validator(_to_json_schema(schema))

    def admit(self, rt: ResourceType, obj: JSON, old: JSON | None) -> None:
        """Admission hook for the store: mutates `obj` (prune, default) or raises 422 Invalid."""
        _prune(obj, self.schema, top=True)
        _default(obj, self.schema)
        causes: list[JSON] = []
        for e in sorted(self._validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
            for cause in _schema_cause(e):
                if cause not in causes:
                    causes.append(cause)
        _cel(obj, old, self.schema, [], causes)
        if causes:
            raise errors.invalid(rt.kind, rt.group, obj.get("metadata", {}).get("name", ""), causes)


def _prune(value: JSONValue, schema: JSON, *, top: bool = False) -> None:
    """Drop fields the schema does not know (apiextensions pruning), keeping apiVersion/kind/metadata."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            for key in list(value):
                if key in props:
                    if not (top and key == "metadata"):
                        _prune(value[key], props[key])
                elif not (top and key in ("apiVersion", "kind", "metadata")):
                    del value[key]
        elif isinstance(extra, dict):
            for v in value.values():
                _prune(v, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _prune(item, schema["items"])


def _default(value: JSONValue, schema: JSON) -> None:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = deep_copy({"v": sub["default"]})["v"]
            if key in value:
                _default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for v in value.values():
                _default(v, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(item, schema["items"])


def _cel(value: JSONValue, old: JSONValue, schema: JSON, path: list[str | int], causes: list[JSON]) -> None:
    rules = schema.get("x-kubernetes-validations")
    if rules:
        activation: dict[str, celtypes.Value] = {"self": json_to_cel(value)}
        if old is not None:
            activation["oldSelf"] = json_to_cel(old)
        for rule in rules:
            text = rule["rule"]
            if "oldSelf" in text and old is None:
                # Transition rules only run on update when the old value exists.
                continue
            message = rule.get("message") or f"failed rule: {text}"
            ok = False
            try:
                ok = bool(_program(text).evaluate(activation))
            except CELEvalError as e:
                # Runtime errors fail the rule, as the apiserver reports "… evaluating rule: <error>".
                message = f"{message} evaluating rule: {e.args[0] if e.args else e}"
            if not ok:
                field = _path(path)
                if rule.get("fieldPath"):
                    field += rule["fieldPath"]
                reason = rule.get("reason", "FieldValueInvalid")
                prefix = _REASON_PREFIX.get(reason)
                text_out = (
                    f"{prefix}: {message}"
                    if prefix
                    else f"Invalid value: {_quote(_type_name(value))}: {message}"
                )
                causes.append(errors.field_error(reason, field, text_out))
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            for key, sub in props.items():
                if key in value and not (not path and key == "metadata"):
                    _cel(
                        value[key], old.get(key) if isinstance(old, dict) else None, sub, [*path, key], causes
                    )
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, v in value.items():
                old_v = old.get(key) if isinstance(old, dict) else None
                _cel(v, old_v, schema["additionalProperties"], [*path, key], causes)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        # List items are correlated with old items only for map-type lists; plain lists get no oldSelf.
        for i, item in enumerate(value):
            _cel(item, None, schema["items"], [*path, i], causes)


def load_crd(doc: JSON) -> list[ResourceType]:
    spec = doc["spec"]
    names = spec["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = CrdSchema(version["schema"]["openAPIV3Schema"])
        columns = tuple(
            PrinterColumn(
                c["name"], c["type"], c["jsonPath"], int(c.get("priority", 0)), c.get("description", "")
            )
            for c in version.get("additionalPrinterColumns", ())
        )
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                singular=names.get("singular", names["kind"].lower()),
                short_names=tuple(names.get("shortNames", ())),
                categories=tuple(names.get("categories", ())),
                subresources=tuple(version.get("subresources", {})),
                custom=True,
                printer_columns=columns,
                schema=schema,
            )
        )
    return out


@cache
def bundled_crds() -> tuple[ResourceType, ...]:
    """The Karpenter CRDs shipped in sandbox/crds (package data); parsed once per process."""
    out: list[ResourceType] = []
    for entry in sorted(CRD_DIR.glob("*.yaml")):
        out.extend(load_crd(yaml.safe_load(entry.read_text())))
    return tuple(out)
