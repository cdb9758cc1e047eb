"""Temporal consistency: CLIP similarity of consecutive frames."""

from __future__ import annotations

import torch

from pytest_ablation.metrics.clip_model import ClipModel, cosine
from pytest_ablation.metrics.inputs import MetricInput
from pytest_ablation.metrics.registry import Score

NAME = "temporal_consistency"


def evaluate(inp: MetricInput) -> Score:
    inp.require(NAME, {"clip"}, min_frames=2)
    feats = inp.frame_features
    per_pair = cosine(feats[:-1], feats[1:])
    return Score(per_pair.double().mean().item(), tuple(per_pair.tolist()), {"per": "pair"})


def temporal_consistency_per_pair(video: torch.Tensor, model: ClipModel) -> list[float]:
    return list(evaluate(MetricInput(video, clip=model)).per_frame)


def temporal_consistency(video: torch.Tensor, model: ClipModel) -> float:
    """Mean over consecutive pairs of ``cos(CLIP(f_t), CLIP(f_t+1))``; 1 for a still video."""
    return evaluate(MetricInput(video, clip=model)).value
