"""Temporal flickering (VBench): how little consecutive uint8 frames differ."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "temporal_flickering"


def evaluate(inp: MetricInput) -> Score:
    import numpy as np

    inp.require(NAME, min_frames=2)
    frames = inp.uint8_frames.astype(np.int16)
    mae = np.abs(frames[1:] - frames[:-1]).mean(axis=(1, 2, 3))
    per_pair = (255.0 - mae) / 255.0
    return Score(float(per_pair.mean()), tuple(per_pair.tolist()), {"per": "pair"})


def temporal_flickering_per_pair(video: torch.Tensor) -> list[float]:
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video)).per_frame))


def temporal_flickering(video: torch.Tensor) -> float:
    """``(255 - mean_t mean |f_t - f_t+1|) / 255`` on uint8 frames; 1 for a still video."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video)).value


SPEC = MetricSpec(
    name="temporal_flickering",
    direction="higher",
    # (255 - MAE) / 255 on uint8 frames: 0.002 is half a grey level of mean change, below
    # the ~0.005 gaps VBench reports between models and above uint8 rounding effects.
    tolerance=0.002,
    definition="(255 - mean over pairs of mean |f_t - f_t+1|) / 255 on uint8 frames",
    source=(
        "VBench temporal_flickering (scored there only on the videos its RAFT static filter "
        "keeps as static; here on every video, so a stiller video scores higher: read it beside "
        "dynamic_degree)"
    ),
    backend="none: pixels",
    needs=(),
    version="1",
    evaluate=evaluate,
)
