"""Condition consistency: how much each frame still looks like the conditioning image."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.clip_model import ClipModel
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "condition_consistency"


def evaluate(inp: MetricInput) -> Score:
    from pytest_ablation.metrics.clip_model import cosine

    inp.require(NAME, {"image", "clip"})
    per_frame = cosine(inp.frame_features, inp.image_features).clamp(min=0)
    return Score(per_frame.double().mean().item(), tuple(per_frame.tolist()), {"per": "frame"})


def condition_consistency_per_frame(video: torch.Tensor, image: torch.Tensor, model: ClipModel) -> list[float]:
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, image=image, clip=model)).per_frame))


def condition_consistency(video: torch.Tensor, image: torch.Tensor, model: ClipModel) -> float:
    """Mean over frames of ``max(0, cos(CLIP(image), CLIP(f_t)))``; ``image`` is (3, H, W)
    in [0, 1], the size of the frames."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, image=image, clip=model)).value


SPEC = MetricSpec(
    name="condition_consistency",
    direction="higher",
    tolerance=0.005,  # a clamped cosine, like temporal_consistency
    definition="mean over frames of max(0, cos(CLIP(condition image), CLIP(frame)))",
    source="VBench-I2V subject consistency, simplified",
    backend="the profile's CLIP judge (role clip): image tower",
    needs=("clip", "image"),
    version="1",
    evaluate=evaluate,
)
