"""Aesthetic quality (VBench): the LAION aesthetic predictor's rating of each frame.

Every frame goes through VBench's CLIP preprocessing (``metrics/vbench.py``) and OpenAI
CLIP ViT-L/14's image tower; the features, cast to float32 and L2-normalised, go through
LAION's linear head (a 0-10 rating), divided by 10. The video scores the mean over its
frames (in [0, 1] for ratings in 0-10), VBench's per-video value; VBench's number for a set
of videos is the plain mean of the per-video values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score
from pytest_ablation.metrics.weights import load_once

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "aesthetic_quality"
CLIP_WEIGHTS = "clip-vitl14"
HEAD_WEIGHTS = "laion-aesthetic-vitl14"


def _models(device):
    from pytest_ablation.metrics.backends import clip_vit, laion_aesthetic

    return (
        load_once(CLIP_WEIGHTS, device, clip_vit.build_vit_l14),
        load_once(HEAD_WEIGHTS, device, laion_aesthetic.build),
    )


def evaluate(inp: MetricInput) -> Score:
    import torch
    import torch.nn.functional as F

    import pytest_ablation.metrics.vbench as vbench

    inp.require(NAME, min_frames=1)
    tower, head = _models(inp.device)
    features = vbench.encode(inp.uint8_frames, vbench.clip_input, tower)
    with torch.inference_mode():
        ratings = head(F.normalize(features.float(), dim=-1, p=2)).squeeze(-1)
    per_frame = ratings / 10
    # torch.mean over the float32 scores, as VBench takes it.
    value = per_frame.mean().item()
    return Score(
        value,
        tuple(per_frame.tolist()),
        {"per": "frame", "precision": str(tower.dtype).removeprefix("torch.")},
    )


def aesthetic_quality_per_frame(video: torch.Tensor, device: str | torch.device | None = None) -> list[float]:
    """One value per frame: the LAION rating / 10."""
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, device=device)).per_frame))


def aesthetic_quality(video: torch.Tensor, device: str | torch.device | None = None) -> float:
    """VBench's aesthetic quality of one video: the mean over frames of the LAION aesthetic
    rating / 10 on OpenAI CLIP ViT-L/14 features (weights from
    ``PYTEST_ABLATION_WEIGHTS_CLIP_VITL14`` and ``PYTEST_ABLATION_WEIGHTS_LAION_AESTHETIC``,
    or the Hugging Face cache for the former)."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, device=device)).value


SPEC = MetricSpec(
    name="aesthetic_quality",
    direction="higher",
    # LAION rating / 10: VBench's models spread over 0.4-0.7 and differ by 0.01-0.05; one
    # hundredth is a tenth of a rating point, far above float16/float32 differences.
    tolerance=0.01,
    definition=(
        "mean over frames of LAION aesthetic head(normalised CLIP ViT-L/14 features) / 10 (VBench preprocessing)"
    ),
    source="VBench aesthetic_quality",
    backend=(
        "OpenAI CLIP ViT-L/14 + LAION aesthetic linear head (weights: "
        "PYTEST_ABLATION_WEIGHTS_CLIP_VITL14, PYTEST_ABLATION_WEIGHTS_LAION_AESTHETIC)"
    ),
    needs=(),
    weights=("clip-vitl14", "laion-aesthetic-vitl14"),
    version="1",
    evaluate=evaluate,
)
