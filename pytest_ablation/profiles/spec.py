"""Model specs and profiles: what to load for each role, validated without touching a model."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pytest_ablation.profiles.settings import ProfileError, StudySettings
from pytest_ablation.profiles.checks import fail
from pytest_ablation.profiles.kinds import model_kind
from pytest_ablation.suggest import did_you_mean

_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _plain(where: str, value: Any) -> Any:
    """A JSON-able copy of an option value (profiles go into report.json and cache keys)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise fail(where, value, "a finite number")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(f"{where}[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(where, key, "string keys")
            out[key] = _plain(f"{where}.{key}", item)
        return out
    raise fail(where, value, "a string, number, boolean, list or table")


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again, e.g. to pass options on as keyword arguments."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value


@dataclass(frozen=True)
class ModelSpec:
    """One role of a profile: which kind of model, from where, with which options."""

    role: str
    kind: str
    source: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not _ROLE.match(self.role):
            raise fail("models", self.role, "a role name of letters, digits, '_' and '-'")
        where = f"models.{self.role}"
        rule = model_kind(self.kind, f"{where}.kind")
        if self.source is not None and not (isinstance(self.source, str) and self.source.strip()):
            raise fail(f"{where}.source", self.source, "a non-empty string")
        if rule.source == "none" and self.source is not None:
            raise ProfileError(
                f"{where}.source: kind {self.kind!r} is built in-process and takes no source (got {self.source!r})"
            )
        if rule.source == "required" and self.source is None:
            raise ProfileError(f"{where}.source: missing; kind {self.kind!r} needs one")
        if rule.check_source is not None and self.source is not None:
            rule.check_source(f"{where}.source", self.source)
        if not isinstance(self.options, Mapping):
            raise fail(f"{where}.options", self.options, "a table")
        options = _plain(f"{where}", dict(self.options))
        if rule.options is not None:
            for key, value in options.items():
                if key not in rule.options:
                    allowed = ", ".join(rule.options) or "none"
                    raise ProfileError(
                        f"{where}.{key}: unknown option for kind {self.kind!r}; "
                        f"{did_you_mean(key, rule.options)}its options are: {allowed}"
                    )
                options[key] = rule.options[key](f"{where}.{key}", value)
            for key in rule.required:
                if key not in options:
                    raise ProfileError(f"{where}.{key}: missing; kind {self.kind!r} needs it")
        object.__setattr__(self, "options", _freeze(options))

    def __hash__(self) -> int:
        # The options mapping is read-only but not hashable; its JSON form is canonical.
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "kind": self.kind,
            "source": self.source,
            "options": thaw(self.options),
        }


@dataclass(frozen=True)
class Profile:
    """A named set of study settings and the model behind each role."""

    name: str
    description: str
    settings: StudySettings
    models: Mapping[str, ModelSpec]
    path: str | None = None
    # Each method's settings on this profile (``[methods.<name>]``: a tuning recipe, where its
    # conditioning images come from), read by the method; the profile only keeps them.
    methods: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Options of metrics for runs on this profile (``[metrics.<name>]``), kept as plain
    # values; each metric's spec says which it takes (``MetricRegistry.check_options``).
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise fail("profile.name", self.name, "a non-empty string")
        if not isinstance(self.description, str):
            raise fail("profile.description", self.description, "a string")
        if not isinstance(self.settings, StudySettings):
            raise fail("settings", self.settings, "a StudySettings")
        if not isinstance(self.models, Mapping) or not self.models:
            raise ProfileError("models: a profile needs at least one [models.<role>] table")
        for role, spec in self.models.items():
            if not isinstance(spec, ModelSpec):
                raise fail(f"models.{role}", spec, "a ModelSpec")
            if spec.role != role:
                raise ProfileError(f"models.{role}: holds the spec of role {spec.role!r}")
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        if self.path is not None:
            object.__setattr__(self, "path", str(self.path))
        if not isinstance(self.methods, Mapping):
            raise fail("methods", self.methods, "a table of [methods.<name>] tables")
        methods = {}
        for name, options in self.methods.items():
            if not isinstance(options, Mapping):
                raise fail(f"methods.{name}", options, "a table")
            methods[name] = _freeze(_plain(f"methods.{name}", dict(options)))
        object.__setattr__(self, "methods", MappingProxyType(methods))
        object.__setattr__(self, "metrics", MappingProxyType(_metric_options(self.metrics)))

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.models)

    def model(self, role: str) -> ModelSpec:
        try:
            return self.models[role]
        except KeyError:
            raise ProfileError(
                f"profile {self.name!r} has no model role {role!r}; its roles are: {', '.join(self.models)}"
            ) from None

    def method_options(self, method: str) -> dict[str, Any]:
        """What ``[methods.<method>]`` sets on this profile (an empty dict when nothing)."""
        return thaw(self.methods.get(method, {}))

    def metric_options(self, metric: str) -> dict[str, Any]:
        """What ``[metrics.<metric>]`` sets on this profile (an empty dict when nothing)."""
        return thaw(self.metrics.get(metric, {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "path": self.path,
            "settings": self.settings.to_dict(),
            "models": {role: spec.to_dict() for role, spec in self.models.items()},
            "methods": thaw(self.methods),
            # Only when set, so that the reports of profiles without metric options read as
            # before.
            **({"metrics": thaw(self.metrics)} if self.metrics else {}),
        }


def _metric_options(tables: Any) -> dict[str, Any]:
    """The [metrics.<name>] tables, as tables of plain values. Which metrics take which
    options, and which values, their specs say: the run's metric registry checks them when
    the profile is used (``MetricRegistry.check_options``), before any model loads."""
    if not isinstance(tables, Mapping):
        raise fail("metrics", tables, "a table of [metrics.<name>] tables")
    checked = {}
    for metric, options in tables.items():
        if not isinstance(options, Mapping):
            raise fail(f"metrics.{metric}", options, "a table")
        checked[metric] = _freeze({key: _plain(f"metrics.{metric}.{key}", value) for key, value in options.items()})
    return checked
