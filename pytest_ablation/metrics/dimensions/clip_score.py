"""CLIP score: how well the frames match the prompt (torchmetrics ``CLIPScore``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.clip_model import ClipModel
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "clip_score"


def evaluate(inp: MetricInput) -> Score:
    """Per frame ``100 * cos(frame, prompt)``; the score is their mean, clamped at 0.

    The per-frame values are not clamped, so that they still average to the unclamped mean.
    """
    from pytest_ablation.metrics.clip_model import cosine

    inp.require(NAME, {"text", "clip"})
    per_frame = 100.0 * cosine(inp.frame_features, inp.text_features)
    value = max(0.0, per_frame.double().mean().item())
    return Score(value, tuple(per_frame.tolist()), {"per": "frame"})


def clip_score_per_frame(video: torch.Tensor, text: str, model: ClipModel) -> list[float]:
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, text=text, clip=model)).per_frame))


def clip_score(video: torch.Tensor, text: str, model: ClipModel) -> float:
    """Mean over frames of ``100 * cos(CLIP(frame), CLIP(text))``, clamped at 0: in [0, 100]."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, text=text, clip=model)).value


SPEC = MetricSpec(
    name="clip_score",
    direction="higher",
    # 0-100 scale; papers separate methods by ~0.5-2 points, while fp32 device and
    # resampling differences move it by ~0.1.
    tolerance=0.5,
    definition="mean over frames of 100 * cos(CLIP(frame), CLIP(prompt)), clamped at 0",
    source="torchmetrics CLIPScore",
    backend="the profile's CLIP judge (role clip): image and text towers",
    needs=("clip", "text"),
    version="1",
    evaluate=evaluate,
)
