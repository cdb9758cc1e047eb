"""The metric registry: names, directions, gate tolerances and evaluators.

The plugin imports this module at configure time, so it must not import torch: the built-in
evaluators are thin wrappers that import their module on first call.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

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
    needs: frozenset[str]  # subset of {"text", "image", "clip"}
    version: str  # part of the score cache key: bump it when the formula changes
    evaluate: Callable[[MetricInput], Score]
    backend: str = ""  # the model or algorithm that computes it, for the metric catalogue
    # Names of the weight files (metrics/weights.py) its own model loads; checked at
    # collection, and part of its scores' cache keys.
    weights: tuple[str, ...] = ()
    # "video": one score per video, compared by paired deltas; "set": one value per set of
    # videos (FVD), computed by the study from all the videos of a variant and a reference.
    level: str = "video"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"metric name must be a non-empty string, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"metric {self.name!r}: direction must be one of {sorted(DIRECTIONS)}, "
                f"got {self.direction!r}"
            )
        if not isinstance(self.tolerance, (int, float)) or not (
            math.isfinite(self.tolerance) and self.tolerance >= 0
        ):
            raise ValueError(
                f"metric {self.name!r}: tolerance must be a finite number >= 0, "
                f"got {self.tolerance!r}"
            )
        needs = frozenset(self.needs)
        if not needs <= NEEDS:
            raise ValueError(
                f"metric {self.name!r}: needs must be a subset of {sorted(NEEDS)}, "
                f"got unknown {sorted(needs - NEEDS)}"
            )
        object.__setattr__(self, "needs", needs)
        if not callable(self.evaluate):
            raise ValueError(f"metric {self.name!r}: evaluate must be callable")
        if isinstance(self.weights, str) or not all(isinstance(w, str) for w in self.weights):
            raise ValueError(
                f"metric {self.name!r}: weights must be a list of weight-file names, "
                f"got {self.weights!r}"
            )
        object.__setattr__(self, "weights", tuple(self.weights))
        if self.level not in LEVELS:
            raise ValueError(
                f"metric {self.name!r}: level must be one of {sorted(LEVELS)}, got {self.level!r}"
            )

    def weights_problems(self) -> list[str]:
        """Why this metric cannot run here (missing weights or extra); empty when it can."""
        if not self.weights:
            return []
        from pytest_ablation.metrics.weights import weight_file

        return [p for p in (weight_file(name).problem() for name in self.weights) if p]


_REGISTRY: dict[str, MetricSpec] = {}
# The names of builtin.toml's metrics (set as they are registered, at import).
BUILTIN_METRICS: frozenset[str] = frozenset()


def register_metric(spec: MetricSpec, *, replace: bool = False) -> None:
    """Add ``spec`` to the registry; a name already taken is refused unless ``replace``."""
    if not isinstance(spec, MetricSpec):
        raise TypeError(f"register_metric expects a MetricSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(
            f"a metric named {spec.name!r} is already registered; "
            "pass replace=True to override it"
        )
    _REGISTRY[spec.name] = spec


def get_metric(name: str) -> MetricSpec:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown metric {name!r}; {did_you_mean(name, metric_names())}known metrics: "
            f"{', '.join(metric_names())}"
        ) from None


def metric_names() -> list[str]:
    return sorted(_REGISTRY)


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
        where = (f"entry point {ENTRY_POINT_GROUP}:{entry.name} = {entry.value!r}"
                 + (f" (package {package})" if package else ""))
        try:
            spec = entry.load()
        except Exception as error:  # noqa: BLE001 - any failure of a third party's import
            raise InstalledMetricError(
                f"{where} could not be loaded: {type(error).__name__}: {error}") from None
        if not isinstance(spec, MetricSpec):
            raise InstalledMetricError(
                f"{where}: expected a MetricSpec, got {type(spec).__name__}")
        if spec.name != entry.name:
            raise InstalledMetricError(
                f"{where}: names a MetricSpec called {spec.name!r}; the entry point's name is "
                "the metric's")
        if spec.name in BUILTIN_METRICS:
            raise InstalledMetricError(
                f"{where}: {spec.name!r} is a built-in metric; choose another name (a "
                "project's conftest may replace a built-in metric, an installed package not)")
        specs[entry.name] = spec
    return tuple(specs.values())


def register_installed_metrics() -> None:
    """Register ``installed_metrics()`` under the names not yet taken (a project's conftest
    or a plugin registered through the hook keeps its own); InstalledMetricError as there."""
    taken = set(_REGISTRY)
    for spec in installed_metrics():
        if spec.name not in taken:
            register_metric(spec)


class _LazyEvaluate:
    """``module.function`` imported on first call, so that registering costs no import."""

    def __init__(self, module: str, function: str = "evaluate") -> None:
        self._module = module
        self._function = function
        self._target: Callable[[MetricInput], Score] | None = None

    def __call__(self, inp: MetricInput) -> Score:
        if self._target is None:
            self._target = getattr(importlib.import_module(self._module), self._function)
        return self._target(inp)

    def __repr__(self) -> str:
        return f"<evaluate {self._module}.{self._function}>"


def _register_builtins() -> None:
    """The metrics declared in builtin.toml, each evaluated by its dimensions/<name>.py."""
    import sys
    from pathlib import Path

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib

    global BUILTIN_METRICS
    declared = tomllib.loads(Path(__file__).with_name("builtin.toml").read_text(encoding="utf-8"))
    BUILTIN_METRICS = frozenset(declared)
    for name, fields in declared.items():
        register_metric(
            MetricSpec(
                name=name,
                version="1",
                evaluate=_LazyEvaluate(f"pytest_ablation.metrics.dimensions.{name}"),
                **{**fields, "needs": frozenset(fields["needs"]),
                   "weights": tuple(fields.get("weights", ()))},
            )
        )


_register_builtins()
