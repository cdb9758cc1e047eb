"""Motion smoothness (VBench): can the odd frames be predicted from their even neighbours?

Frames 0, 2, 4, ... are kept; each odd frame with two kept neighbours is interpolated from
them and compared with the real one on uint8 frames. The score depends on the interpolator,
so the interpolator's name goes into the score's details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import pytest_ablation.metrics.interpolator_choice as interpolator_choice
from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.inputs import MetricInput
    from pytest_ablation.metrics.interpolators import FlowMidpointInterpolator, Interpolator

NAME = "motion_smoothness"


def default_interpolator() -> FlowMidpointInterpolator:
    from pytest_ablation.metrics.interpolators import FlowMidpointInterpolator

    return FlowMidpointInterpolator()


def evaluate(inp: MetricInput) -> Score:
    import numpy as np
    import torch

    from pytest_ablation.metrics.interpolators import interpolator_name
    from pytest_ablation.metrics.validation import to_uint8

    inp.require(NAME, min_frames=3)
    interpolator = inp.interpolator if inp.interpolator is not None else default_interpolator()
    name = interpolator_name(interpolator)
    frames = inp.uint8_frames  # (F, H, W, 3)
    kept = torch.from_numpy(frames[0::2].copy()).permute(0, 3, 1, 2).float() / 255.0
    # With an even frame count the last odd frame has no right neighbour: it is skipped.
    odd = frames[1::2][: kept.shape[0] - 1].astype(np.int16)
    with torch.no_grad():
        mid = interpolator(kept[:-1], kept[1:])
    if not isinstance(mid, torch.Tensor) or tuple(mid.shape) != tuple(kept[:-1].shape):
        got = tuple(mid.shape) if isinstance(mid, torch.Tensor) else type(mid).__name__
        raise ValueError(f"interpolator {name!r} returned {got}, expected a tensor of shape {tuple(kept[:-1].shape)}")
    if not bool(torch.isfinite(mid).all()):
        raise ValueError(f"interpolator {name!r} returned NaN or infinite values")
    predicted = to_uint8(mid.clamp(0, 1)).astype(np.int16)
    mae = np.abs(odd - predicted).mean(axis=(1, 2, 3))
    per_frame = (255.0 - mae) / 255.0
    return Score(
        float(per_frame.mean()),
        tuple(per_frame.tolist()),
        {"per": "odd frame", "interpolator": name},
    )


def motion_smoothness_per_frame(video: torch.Tensor, interpolator: Interpolator | None = None) -> list[float]:
    """One value per interpolated odd frame (1, 3, 5, ...)."""
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, interpolator=interpolator)).per_frame))


def motion_smoothness(video: torch.Tensor, interpolator: Interpolator | None = None) -> float:
    """``(255 - mean |odd frame - interpolated|) / 255`` on uint8 frames, the odd frames
    interpolated from the even ones by ``interpolator`` (default: optical-flow midpoint
    warp). Needs at least 3 frames."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, interpolator=interpolator)).value


SPEC = MetricSpec(
    name="motion_smoothness",
    direction="higher",
    tolerance=0.002,  # same units as temporal_flickering
    definition=("(255 - mean |odd frame - interpolation of its even neighbours|) / 255 on uint8 frames"),
    source=(
        "VBench motion_smoothness (AMT interpolator there; a still video is interpolated "
        "perfectly, so read it beside dynamic_degree)"
    ),
    backend=(
        "OpenCV DIS optical flow (midpoint warp interpolator; a profile's "
        "[metrics.motion_smoothness] interpolator selects another)"
    ),
    needs=(),
    version="1",
    evaluate=evaluate,
    options={"interpolator": interpolator_choice.check},
)
