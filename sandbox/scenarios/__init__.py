"""The sandbox's scenarios: shipped YAML files validated into `Scenario`, and what they become.

scenario = load_scenario("demo")   # ScenarioNotFound names the scenarios that exist
scenario_names()                   # ("demo", "faults", "scale")
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from sandbox.scenarios.model import (
    ApiFaultSpec,
    ClusterSpec,
    FaultSpec,
    NamespaceSpec,
    NodeClassSpec,
    NodeGroupSpec,
    NodePoolSpec,
    Scenario,
    SlackSpec,
    WorkloadSpec,
)

__all__ = [
    "ApiFaultSpec",
    "ClusterSpec",
    "FaultSpec",
    "NamespaceSpec",
    "NodeClassSpec",
    "NodeGroupSpec",
    "NodePoolSpec",
    "Scenario",
    "ScenarioInvalid",
    "ScenarioNotFound",
    "SlackSpec",
    "WorkloadSpec",
    "load_scenario",
    "scenario_names",
]


class ScenarioNotFound(LookupError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no sandbox scenario named {name!r}; the scenarios are: {', '.join(known)}")
        self.name = name
        self.known = known


class ScenarioInvalid(ValueError):
    pass


def scenario_names() -> tuple[str, ...]:
    files = resources.files(__package__)
    return tuple(sorted(f.name[: -len(".yaml")] for f in files.iterdir() if f.name.endswith(".yaml")))


def _raw(name: str) -> dict[str, Any]:
    known = scenario_names()
    if name not in known:
        raise ScenarioNotFound(name, known)
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] | None = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ScenarioInvalid(f"scenario {name}: the file is not a mapping")
    base = data.get("extends")
    if base:
        if base == name:
            raise ScenarioInvalid(f"scenario {name} extends itself")
        data = _merge(_raw(str(base)), data)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else in `over` replaces what `base` had."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_scenario(name: str) -> Scenario:
    data = _raw(name)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioInvalid(f"scenario {name} is invalid:\n{exc}") from exc
