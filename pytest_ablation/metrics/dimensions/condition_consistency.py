"""Condition consistency: how much each frame still looks like the conditioning image."""

from __future__ import annotations

import torch

from pytest_ablation.metrics.clip_model import ClipModel, cosine
from pytest_ablation.metrics.inputs import MetricInput
from pytest_ablation.metrics.registry import Score

NAME = "condition_consistency"


def evaluate(inp: MetricInput) -> Score:
    inp.require(NAME, {"image", "clip"})
    per_frame = cosine(inp.frame_features, inp.image_features).clamp(min=0)
    return Score(per_frame.double().mean().item(), tuple(per_frame.tolist()), {"per": "frame"})


def condition_consistency_per_frame(
    video: torch.Tensor, image: torch.Tensor, model: ClipModel
) -> list[float]:
    return list(evaluate(MetricInput(video, image=image, clip=model)).per_frame)


def condition_consistency(video: torch.Tensor, image: torch.Tensor, model: ClipModel) -> float:
    """Mean over frames of ``max(0, cos(CLIP(image), CLIP(f_t)))``; ``image`` is (3, H, W)
    in [0, 1], the size of the frames."""
    return evaluate(MetricInput(video, image=image, clip=model)).value
