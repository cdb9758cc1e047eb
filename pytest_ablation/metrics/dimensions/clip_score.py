"""CLIP score: how well the frames match the prompt (torchmetrics ``CLIPScore``)."""

from __future__ import annotations

import torch

from pytest_ablation.metrics.clip_model import ClipModel, cosine
from pytest_ablation.metrics.inputs import MetricInput
from pytest_ablation.metrics.registry import Score

NAME = "clip_score"


def evaluate(inp: MetricInput) -> Score:
    """Per frame ``100 * cos(frame, prompt)``; the score is their mean, clamped at 0.

    The per-frame values are not clamped, so that they still average to the unclamped mean.
    """
    inp.require(NAME, {"text", "clip"})
    per_frame = 100.0 * cosine(inp.frame_features, inp.text_features)
    value = max(0.0, per_frame.double().mean().item())
    return Score(value, tuple(per_frame.tolist()), {"per": "frame"})


def clip_score_per_frame(video: torch.Tensor, text: str, model: ClipModel) -> list[float]:
    return list(evaluate(MetricInput(video, text=text, clip=model)).per_frame)


def clip_score(video: torch.Tensor, text: str, model: ClipModel) -> float:
    """Mean over frames of ``100 * cos(CLIP(frame), CLIP(text))``, clamped at 0: in [0, 100]."""
    return evaluate(MetricInput(video, text=text, clip=model)).value
