"""The toy world's parser metrics, as ``MetricSpec`` s, and their registration.

They are registered by the toy world itself (``pytest_ablation.toyworld.plugin``, a pytest11
entry point implementing ``pytest_ablation_add_metrics``), not declared in the core's
``metrics/dimensions``: their formulas need the toy world's parser, and the core imports
nothing of the toy world (``tests/test_layout.py``). Importing this module costs no torch:
each evaluator is imported on its first call. In Python, outside pytest:
``register_toy_metrics(registry.register)`` adds them to a ``MetricRegistry``.

Formulas: ``scene_metrics.py``; the parser: ``parser.py``. Units: positions over the
frame's side, colours in RGB [0, 1] (Euclidean distances), pixel values in [0, 1].
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from pytest_ablation.metrics.registry import MetricSpec, Score

_MODULE = "pytest_ablation.toyworld.scene_metrics"
_SOURCE = "pytest-ablation toy world"
_BACKEND = "toy-world scene parser (pytest_ablation.toyworld.parser): pixels, no model"


class _Lazy:
    """``scene_metrics.evaluate_<name>`` imported on first call."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._target: Callable | None = None

    def __call__(self, inp) -> Score:
        if self._target is None:
            self._target = getattr(importlib.import_module(_MODULE), f"evaluate_{self._name}")
        return self._target(inp)

    def __repr__(self) -> str:
        return f"<evaluate {_MODULE}.evaluate_{self._name}>"


def _spec(name: str, direction: str, tolerance: float, definition: str) -> MetricSpec:
    return MetricSpec(
        name=name,
        direction=direction,
        tolerance=tolerance,
        definition=definition,
        source=_SOURCE,
        needs=frozenset(),
        version="1",
        evaluate=_Lazy(name),
        backend=_BACKEND,
    )


TOY_METRICS: tuple[MetricSpec, ...] = (
    _spec(
        "identity_constancy",
        "higher",
        # A fraction of frames: a re-run moves it only when a borderline frame's colour or
        # shape flips. In a toy study (8 videos x 7 frames) one flip moves the mean by 1/56 =
        # 0.018, which 0.02 tolerates; two flips, or an identity lost for part of one clip
        # (4/7 of that clip: 0.07 of the mean), exceed it.
        0.02,
        "fraction of frames t>=1 whose parsed object has frame 0's colour and shape "
        "(a frame without an object disagrees)",
    ),
    _spec(
        "trajectory_jerk",
        "lower",
        # Over the frame's side. Another machine's frames differ by float rounding (~1e-3 of
        # a pixel value), which moves the centroid (linear in the pixels) by ~1e-3 px; the
        # third difference multiplies an error by at most 1 + 3 + 3 + 1 = 8: 0.008 px, 0.00025
        # of a 32-px frame. 0.005 (0.16 px) is twenty times that, and a fifth of what a
        # one-pixel jump adds to an 8-frame clip (4 / 5 / 32 = 0.025).
        0.005,
        "mean over windows of |c[t+3] - 3c[t+2] + 3c[t+1] - c[t]|, c the parsed centroid "
        "over the frame's width and height",
    ),
    _spec(
        "background_drift",
        "lower",
        # RGB distance per pixel: 0.005 is below one grey level in all three channels
        # (sqrt(3) / 255 = 0.0068) and far above float noise; backgrounds in data.py differ
        # by tenths.
        0.005,
        "mean over frames t>=1 of the mean over pixels of |B_t - B_0| (RGB), B the parsed background field",
    ),
    _spec(
        "warping_error",
        "lower",
        # Mean |difference| in [0, 1] like temporal_flickering's: 0.002 is half a grey level.
        0.002,
        "mean over pairs of mean |f[t+1] - P_t|, P_t = f_t with only the object's layer moved "
        "by its parsed displacement (bilinear)",
    ),
    _spec(
        "drift_vs_gap",
        "lower",
        # RGB-and-size distance per frame of gap: 0.002 per frame is half a grey level of
        # colour change per frame, a tenth of the 0.02/frame a visible fade over 8 frames has.
        0.002,
        "least-squares slope, over every pair of frames, of |a(t+g) - a(t)| against g; "
        "a = the object's (R, G, B, sqrt(area) / frame side)",
    ),
)


def register_toy_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register every toy metric with ``register``: the hook's callable, or a
    ``MetricRegistry``'s ``register``."""
    for spec in TOY_METRICS:
        register(spec)


__all__ = ["TOY_METRICS", "register_toy_metrics"]
