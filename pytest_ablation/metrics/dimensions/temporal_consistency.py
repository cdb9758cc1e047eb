"""Temporal consistency: CLIP similarity of consecutive frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.clip_model import ClipModel
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "temporal_consistency"


def evaluate(inp: MetricInput) -> Score:
    from pytest_ablation.metrics.clip_model import cosine

    inp.require(NAME, {"clip"}, min_frames=2)
    feats = inp.frame_features
    per_pair = cosine(feats[:-1], feats[1:])
    return Score(per_pair.double().mean().item(), tuple(per_pair.tolist()), {"per": "pair"})


def temporal_consistency_per_pair(video: torch.Tensor, model: ClipModel) -> list[float]:
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, clip=model)).per_frame))


def temporal_consistency(video: torch.Tensor, model: ClipModel) -> float:
    """Mean over consecutive pairs of ``cos(CLIP(f_t), CLIP(f_t+1))``; 1 for a still video."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, clip=model)).value


SPEC = MetricSpec(
    name="temporal_consistency",
    direction="higher",
    # Cosine of consecutive CLIP frame features; real videos sit at 0.95-0.99, so 0.005 is
    # a tenth of that spread and about ten times the cross-device jitter.
    tolerance=0.005,
    definition="mean over consecutive pairs of cos(CLIP(frame t), CLIP(frame t+1))",
    source="Text2Video-Zero / EditVerse CLIP frame consistency",
    backend="the profile's CLIP judge (role clip): image tower",
    needs=("clip",),
    version="1",
    evaluate=evaluate,
)
