"""Background consistency (VBench): how much the CLIP features of the frames stay the same.

OpenAI CLIP ViT-B/32 image features (global scene content, where the background dominates)
of every frame, preprocessed as VBench does (``metrics/vbench.py``: resize, centre crop,
no antialiasing); then VBench's consistency formula as for subject consistency: each frame
t >= 1 scores ``(max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2`` and the video scores
their mean, VBench's per-video value.

VBench's number for a set of videos is the sum of all frame scores over the number of
frames t >= 1 in all videos: the mean of the per-video values weighted by ``F - 1``.
On a GPU the tower runs in float16 and the cosines are taken in float16, as in VBench.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score
from pytest_ablation.metrics.weights import load_once

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "background_consistency"
WEIGHTS = "clip-vitb32"


def _model(device):
    from pytest_ablation.metrics.backends import clip_vit

    return load_once(WEIGHTS, device, clip_vit.build_vit_b32)


def evaluate(inp: MetricInput) -> Score:
    import pytest_ablation.metrics.vbench as vbench

    inp.require(NAME, min_frames=2)
    model = _model(inp.device)
    features = vbench.encode(inp.uint8_frames, vbench.clip_input, model)
    per_frame = vbench.consistency_per_frame(features)
    return Score(
        vbench.mean(per_frame),
        tuple(per_frame),
        {"per": "frame t>=1", "precision": str(model.dtype).removeprefix("torch.")},
    )


def background_consistency_per_frame(video: torch.Tensor, device: str | torch.device | None = None) -> list[float]:
    """One value per frame t >= 1."""
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, device=device)).per_frame))


def background_consistency(video: torch.Tensor, device: str | torch.device | None = None) -> float:
    """VBench's background consistency of one video, on OpenAI CLIP ViT-B/32 features
    (weights from ``PYTEST_ABLATION_WEIGHTS_CLIP_VITB32`` or the Hugging Face cache)."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, device=device)).value


SPEC = MetricSpec(
    name="background_consistency",
    direction="higher",
    tolerance=0.005,  # same units and spread as subject_consistency
    definition=(
        "mean over t>=1 of (max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2 on OpenAI CLIP "
        "ViT-B/32 features (VBench preprocessing)"
    ),
    source="VBench background_consistency",
    backend="OpenAI CLIP ViT-B/32 (weights: PYTEST_ABLATION_WEIGHTS_CLIP_VITB32)",
    needs=(),
    weights=("clip-vitb32",),
    version="1",
    evaluate=evaluate,
)
