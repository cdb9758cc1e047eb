"""Temporal flickering (VBench): how little consecutive uint8 frames differ."""

from __future__ import annotations

import numpy as np
import torch

from pytest_ablation.metrics.inputs import MetricInput
from pytest_ablation.metrics.registry import Score

NAME = "temporal_flickering"


def evaluate(inp: MetricInput) -> Score:
    inp.require(NAME, min_frames=2)
    frames = inp.uint8_frames.astype(np.int16)
    mae = np.abs(frames[1:] - frames[:-1]).mean(axis=(1, 2, 3))
    per_pair = (255.0 - mae) / 255.0
    return Score(float(per_pair.mean()), tuple(per_pair.tolist()), {"per": "pair"})


def temporal_flickering_per_pair(video: torch.Tensor) -> list[float]:
    return list(evaluate(MetricInput(video)).per_frame)


def temporal_flickering(video: torch.Tensor) -> float:
    """``(255 - mean_t mean |f_t - f_t+1|) / 255`` on uint8 frames; 1 for a still video."""
    return evaluate(MetricInput(video)).value
