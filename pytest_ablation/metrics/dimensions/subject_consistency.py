"""Subject consistency (VBench): how much the DINO features of the frames stay the same.

DINO ViT-B/16 [CLS] features (self-supervised, sensitive to the identity and appearance of
the main subject) of every frame, preprocessed as VBench does (``metrics/vbench.py``); each
frame t >= 1 scores ``(max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2`` and the video
scores their mean: VBench's per-video value (its ``video_results``).

VBench's headline number for a set of videos is not the mean of these: it sums the frame
scores of all videos and divides by the number of frames t >= 1 in all of them, i.e. the
mean of the per-video values weighted by ``F - 1`` (equal weights when every video has the
same length). Its multi-GPU path, though, averages the per-video values unweighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score
from pytest_ablation.metrics.weights import load_once

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "subject_consistency"
WEIGHTS = "dino-vitb16"


def _model(device):
    from pytest_ablation.metrics.backends import dino

    return load_once(WEIGHTS, device, dino.build)


def evaluate(inp: MetricInput) -> Score:
    import pytest_ablation.metrics.vbench as vbench

    inp.require(NAME, min_frames=2)
    features = vbench.encode(inp.uint8_frames, vbench.dino_input, _model(inp.device))
    per_frame = vbench.consistency_per_frame(features)
    return Score(vbench.mean(per_frame), tuple(per_frame), {"per": "frame t>=1"})


def subject_consistency_per_frame(video: torch.Tensor, device: str | torch.device | None = None) -> list[float]:
    """One value per frame t >= 1."""
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, device=device)).per_frame))


def subject_consistency(video: torch.Tensor, device: str | torch.device | None = None) -> float:
    """VBench's subject consistency of one video, on DINO ViT-B/16 features (weights from
    ``PYTEST_ABLATION_WEIGHTS_DINO_VITB16`` or the Hugging Face cache)."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, device=device)).value


SPEC = MetricSpec(
    name="subject_consistency",
    direction="higher",
    # A clamped cosine like video_coherence: VBench's models sit at 0.90-0.98 and differ by
    # 0.005-0.03; float and device differences on the same frames move it by ~1e-4.
    tolerance=0.005,
    definition=(
        "mean over t>=1 of (max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2 on DINO "
        "ViT-B/16 features (VBench preprocessing)"
    ),
    source="VBench subject_consistency",
    backend="DINO ViT-B/16 (weights: PYTEST_ABLATION_WEIGHTS_DINO_VITB16)",
    needs=(),
    weights=("dino-vitb16",),
    version="1",
    evaluate=evaluate,
)
