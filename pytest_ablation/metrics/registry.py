"""The metrics a run knows: each built-in one declared by its own module, and a registry
that one run owns.

Each module of ``metrics/dimensions`` is one metric: its formula and, beside it, its
``SPEC`` (name, direction, gate tolerance, definition, source, weights, level). Those
modules import torch, OpenCV and their models inside their functions, so that reading
every spec (as the plugin does at configure time) imports none of them.

A ``MetricRegistry`` belongs to one run (the plugin's session, or a CLI command): it starts
from the built-in specs and takes those of conftests, plugins (the
``pytest_ablation_add_metrics`` hook) and installed packages (entry points). Nothing here
is process-wide and mutable, so one run's metrics never leak into the next.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

from ..suggest import did_you_mean

if TYPE_CHECKING:
    from pytest_ablation.metrics.inputs import MetricInput

DIRECTIONS = frozenset({"higher", "lower", "info"})
NEEDS = frozenset({"text", "image", "clip"})
LEVELS = frozenset({"video", "set"})


@dataclass(frozen=True)
class Score:
    """One metric on one video.

    ``per_frame`` holds the values the score averages (per frame or per consecutive pair,
    ``details["per"]`` says which), so that a report can show where a video goes wrong.
    """

    value: float
    per_frame: tuple[float, ...] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    direction: str  # "higher" | "lower" | "info" (informational, never gated)
    tolerance: float  # default absolute gate tolerance, in the metric's own units
    definition: str  # one line, printed by the report
    source: str
    # A subset of {"text", "image", "clip"}, given as any collection; kept as a frozenset.
    needs: Collection[str]
    version: str  # part of the score cache key: bump it when the formula changes
    evaluate: Callable[[MetricInput], Score]
    backend: str = ""  # the model or algorithm that computes it, for the metric catalogue
    # Names of the weight files (metrics/weights.py) its own model loads; checked at
    # collection, and part of its scores' cache keys.
    weights: tuple[str, ...] = ()
    # "video": one score per video, compared by paired deltas; "set": one value per set of
    # videos (FVD), computed by the study from all the videos of a variant and a reference.
    level: str = "video"
    # The options a profile may set in its [metrics.<name>] table, each with the function
    # that checks a value: check(value, where) returns the value to use, or raises
    # ValueError naming ``where`` and what is allowed.
    options: Mapping[str, Callable[[Any, str], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"metric name must be a non-empty string, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"metric {self.name!r}: direction must be one of {sorted(DIRECTIONS)}, got {self.direction!r}"
            )
        if not isinstance(self.tolerance, (int, float)) or not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"metric {self.name!r}: tolerance must be a finite number >= 0, got {self.tolerance!r}")
        needs = frozenset(self.needs)
        if not needs <= NEEDS:
            raise ValueError(
                f"metric {self.name!r}: needs must be a subset of {sorted(NEEDS)}, got unknown {sorted(needs - NEEDS)}"
            )
        object.__setattr__(self, "needs", needs)
        if not callable(self.evaluate):
            raise ValueError(f"metric {self.name!r}: evaluate must be callable")
        if isinstance(self.weights, str) or not all(isinstance(w, str) for w in self.weights):
            raise ValueError(f"metric {self.name!r}: weights must be a list of weight-file names, got {self.weights!r}")
        object.__setattr__(self, "weights", tuple(self.weights))
        if self.level not in LEVELS:
            raise ValueError(f"metric {self.name!r}: level must be one of {sorted(LEVELS)}, got {self.level!r}")
        if not isinstance(self.options, Mapping) or not all(
            isinstance(key, str) and callable(check) for key, check in self.options.items()
        ):
            raise ValueError(
                f"metric {self.name!r}: options must map option names to checking functions, got {self.options!r}"
            )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def weights_problems(self) -> list[str]:
        """Why this metric cannot run here (missing weights or extra); empty when it can."""
        if not self.weights:
            return []
        from pytest_ablation.metrics.weights import weight_file

        return [p for p in (weight_file(name).problem() for name in self.weights) if p]


# The modules of metrics/dimensions, each declaring the metric of its own name (``SPEC``).
BUILTIN_MODULES = (
    "aesthetic_quality",
    "background_consistency",
    "clip_score",
    "condition_consistency",
    "dynamic_degree",
    "dynamic_degree_vbench",
    "fvd",
    "imaging_quality",
    "motion_smoothness",
    "subject_consistency",
    "temporal_consistency",
    "temporal_flickering",
    "video_coherence",
    "video_quality",
)
BUILTIN_METRICS: frozenset[str] = frozenset(BUILTIN_MODULES)


@functools.cache
def builtin_metrics() -> tuple[MetricSpec, ...]:
    """The built-in metrics' specs, by name: read from their modules once (they are frozen)."""
    specs = []
    for name in BUILTIN_MODULES:
        spec = importlib.import_module(f"{__package__}.dimensions.{name}").SPEC
        if spec.name != name:
            raise RuntimeError(f"metrics/dimensions/{name}.py declares {spec.name!r}")
        specs.append(spec)
    return tuple(specs)


def get_metric(name: str) -> MetricSpec:
    """A built-in metric's spec; ValueError naming the closest built-in for another name.
    (A run's own metrics, a project's included, are its ``MetricRegistry``'s.)"""
    return MetricRegistry.builtin().get(name)


def metric_names() -> list[str]:
    """The built-in metrics' names, sorted."""
    return sorted(BUILTIN_METRICS)


class MetricRegistry:
    """The metrics one run knows, by name: the built-in ones, then those it registers."""

    def __init__(self, specs: Iterable[MetricSpec] = ()) -> None:
        self._specs: dict[str, MetricSpec] = {}
        self._installed_added = False
        for spec in specs:
            self.register(spec)

    @classmethod
    def builtin(cls) -> MetricRegistry:
        return cls(builtin_metrics())

    def register(self, spec: MetricSpec, *, replace: bool = False) -> None:
        """Add ``spec``; a name already taken is refused unless ``replace``."""
        if not isinstance(spec, MetricSpec):
            raise TypeError(f"register expects a MetricSpec, got {type(spec).__name__}")
        if spec.name in self._specs and not replace:
            raise ValueError(f"a metric named {spec.name!r} is already registered; pass replace=True to override it")
        self._specs[spec.name] = spec

    def get(self, name: str) -> MetricSpec:
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown metric {name!r}; {did_you_mean(name, self.names())}known metrics: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(self._specs[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def add_installed(self) -> None:
        """The metrics of installed packages (``installed_metrics()``) under the names not yet
        taken (a project's conftest or a plugin keeps its own); once. InstalledMetricError as
        there."""
        if self._installed_added:
            return
        self._installed_added = True
        for spec in installed_metrics():
            if spec.name not in self._specs:
                self.register(spec)

    def check_options(self, tables: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """A profile's [metrics.<name>] tables, each option checked by its metric: ValueError
        naming the first unknown metric, unknown option or refused value."""
        known = ", ".join(f"[metrics.{spec.name}] {', '.join(spec.options)}" for spec in self if spec.options) or "none"
        checked: dict[str, dict[str, Any]] = {}
        for metric, options in tables.items():
            spec = self._specs.get(metric)
            if spec is None or not spec.options:
                with_options = [s.name for s in self if s.options]
                raise ValueError(
                    f"metrics.{metric}: no options for this metric; {did_you_mean(metric, with_options)}known: {known}"
                )
            checked[metric] = {}
            for key, value in options.items():
                check = spec.options.get(key)
                if check is None:
                    raise ValueError(
                        f"metrics.{metric}.{key}: unknown option; {did_you_mean(key, spec.options)}known: {known}"
                    )
                checked[metric][key] = check(value, f"metrics.{metric}.{key}")
        return checked


# Installed packages declare metrics here, as model kinds under pytest_ablation.model_kinds:
#   [project.entry-points."pytest_ablation.metrics"]
#   sharpness = "my_metrics.sharpness:SPEC"
ENTRY_POINT_GROUP = "pytest_ablation.metrics"


class InstalledMetricError(ValueError):
    """An entry point of ``pytest_ablation.metrics`` that does not give a usable metric."""


def installed_metrics() -> tuple[MetricSpec, ...]:
    """The metrics installed packages declare in the ``pytest_ablation.metrics`` entry-point
    group, by entry-point name: each entry point names a ``MetricSpec`` of the same name.

    Loading one imports the module it names, so such a module should import its heavy
    libraries inside its evaluate function, as the built-in metrics do. A built-in metric's
    name is refused: an installed package does not replace a built-in metric without the
    project saying so (a conftest's registration does).
    """
    from importlib import metadata

    specs: dict[str, MetricSpec] = {}
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if entry.name in specs:
            continue
        package = getattr(getattr(entry, "dist", None), "name", None)
        where = f"entry point {ENTRY_POINT_GROUP}:{entry.name} = {entry.value!r}" + (
            f" (package {package})" if package else ""
        )
        try:
            spec = entry.load()
        except Exception as error:  # noqa: BLE001 - any failure of a third party's import
            raise InstalledMetricError(f"{where} could not be loaded: {type(error).__name__}: {error}") from None
        if not isinstance(spec, MetricSpec):
            raise InstalledMetricError(f"{where}: expected a MetricSpec, got {type(spec).__name__}")
        if spec.name != entry.name:
            raise InstalledMetricError(
                f"{where}: names a MetricSpec called {spec.name!r}; the entry point's name is the metric's"
            )
        if spec.name in BUILTIN_METRICS:
            raise InstalledMetricError(
                f"{where}: {spec.name!r} is a built-in metric; choose another name (a "
                "project's conftest may replace a built-in metric, an installed package not)"
            )
        specs[entry.name] = spec
    return tuple(specs.values())
