"""The metric registry: names, directions, gate tolerances and evaluators.

The plugin imports this module at configure time, so it must not import torch: the built-in
evaluators are thin wrappers that import their module on first call.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pytest_ablation.metrics.inputs import MetricInput

DIRECTIONS = frozenset({"higher", "lower", "info"})
NEEDS = frozenset({"text", "image", "clip"})


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


_REGISTRY: dict[str, MetricSpec] = {}


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
            f"unknown metric {name!r}; known metrics: {', '.join(metric_names())}"
        ) from None


def metric_names() -> list[str]:
    return sorted(_REGISTRY)


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


def _builtin(name: str, **fields: Any) -> None:
    register_metric(
        MetricSpec(
            name=name,
            version="1",
            evaluate=_LazyEvaluate(f"pytest_ablation.metrics.dimensions.{name}"),
            **fields,
        )
    )


# Tolerances are what a re-run on another machine or library version can move a score by,
# plus a margin: well below the differences the ablations are about, above numerical noise.
_builtin(
    "clip_score",
    direction="higher",
    # 0-100 scale; papers separate methods by ~0.5-2 points, while fp32 device and
    # resampling differences move it by ~0.1.
    tolerance=0.5,
    definition="mean over frames of 100 * cos(CLIP(frame), CLIP(prompt)), clamped at 0",
    source="torchmetrics CLIPScore",
    needs=frozenset({"text", "clip"}),
)
_builtin(
    "temporal_consistency",
    direction="higher",
    # Cosine of consecutive CLIP frame features; real videos sit at 0.95-0.99, so 0.005 is
    # a tenth of that spread and about ten times the cross-device jitter.
    tolerance=0.005,
    definition="mean over consecutive pairs of cos(CLIP(frame t), CLIP(frame t+1))",
    source="Text2Video-Zero / EditVerse CLIP frame consistency",
    needs=frozenset({"clip"}),
)
_builtin(
    "video_coherence",
    direction="higher",
    tolerance=0.005,  # same units and spread as temporal_consistency
    definition=(
        "mean over t>=1 of (max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2 "
        "on CLIP frame features"
    ),
    source="VBench subject_consistency formula",
    needs=frozenset({"clip"}),
)
_builtin(
    "condition_consistency",
    direction="higher",
    tolerance=0.005,  # a clamped cosine, like temporal_consistency
    definition="mean over frames of max(0, cos(CLIP(condition image), CLIP(frame)))",
    source="VBench-I2V subject consistency, simplified",
    needs=frozenset({"image", "clip"}),
)
_builtin(
    "video_quality",
    direction="higher",
    # A probability; one percentage point is below what separates visibly different
    # videos and far above float noise.
    tolerance=0.01,
    definition='mean over frames of softmax(CLIP logits for "Good photo." vs "Bad photo.")[good]',
    source="CLIP-IQA (Wang et al. 2023)",
    needs=frozenset({"clip"}),
)
_builtin(
    "temporal_flickering",
    direction="higher",
    # (255 - MAE) / 255 on uint8 frames: 0.002 is half a grey level of mean change, below
    # the ~0.005 gaps VBench reports between models and above uint8 rounding effects.
    tolerance=0.002,
    definition="(255 - mean over pairs of mean |f_t - f_t+1|) / 255 on uint8 frames",
    source="VBench temporal_flickering",
    needs=frozenset(),
)
_builtin(
    "motion_smoothness",
    direction="higher",
    tolerance=0.002,  # same units as temporal_flickering
    definition=(
        "(255 - mean |odd frame - interpolation of its even neighbours|) / 255 on uint8 frames"
    ),
    source="VBench motion_smoothness (AMT interpolator there)",
    needs=frozenset(),
)
_builtin(
    "dynamic_degree",
    direction="info",
    # Informational, never gated; one pixel per 256 px of short side is the smallest
    # motion change worth mentioning in a report.
    tolerance=1.0,
    definition=(
        "mean over pairs of the mean optical-flow magnitude of the top 5% vectors, "
        "divided by min(H, W) / 256"
    ),
    source="VBench dynamic_degree (RAFT there; OpenCV DIS flow here)",
    needs=frozenset(),
)
