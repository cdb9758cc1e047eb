"""Video coherence: VBench's subject-consistency formula on CLIP frame features.

Each frame is compared with its predecessor (local smoothness) and with the first frame
(drift over the whole clip), negative similarities counting as 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.clip_model import ClipModel
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "video_coherence"


def evaluate(inp: MetricInput) -> Score:
    from pytest_ablation.metrics.clip_model import cosine

    inp.require(NAME, {"clip"}, min_frames=2)
    feats = inp.frame_features
    to_previous = cosine(feats[:-1], feats[1:]).clamp(min=0)
    to_first = cosine(feats[:1], feats[1:]).clamp(min=0)
    per_frame = (to_previous + to_first) / 2
    return Score(per_frame.double().mean().item(), tuple(per_frame.tolist()), {"per": "frame t>=1"})


def video_coherence_per_frame(video: torch.Tensor, model: ClipModel) -> list[float]:
    """One value per frame t >= 1."""
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, clip=model)).per_frame))


def video_coherence(video: torch.Tensor, model: ClipModel) -> float:
    """Mean over t >= 1 of ``(max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2``."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, clip=model)).value


SPEC = MetricSpec(
    name="video_coherence",
    direction="higher",
    tolerance=0.005,  # same units and spread as temporal_consistency
    definition=("mean over t>=1 of (max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2 on CLIP frame features"),
    source="VBench subject_consistency formula",
    backend="the profile's CLIP judge (role clip): image tower",
    needs=("clip",),
    version="1",
    evaluate=evaluate,
)
