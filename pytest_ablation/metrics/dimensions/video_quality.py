"""Video quality, CLIP-IQA style: does CLIP call each frame a good or a bad photo?"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.clip_model import ClipModel
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "video_quality"
ANCHORS = ("Good photo.", "Bad photo.")


def evaluate(inp: MetricInput) -> Score:
    inp.require(NAME, {"clip"})
    logits = inp.clip.logit_scale * inp.frame_features @ inp.texts_features(ANCHORS).T
    per_frame = logits.double().softmax(dim=-1)[:, 0]
    return Score(per_frame.mean().item(), tuple(per_frame.tolist()), {"per": "frame"})


def video_quality_per_frame(video: torch.Tensor, model: ClipModel) -> list[float]:
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, clip=model)).per_frame))


def video_quality(video: torch.Tensor, model: ClipModel) -> float:
    """Mean over frames of P("Good photo." | frame) against "Bad photo.", with the model's
    logit scale: in [0, 1]."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, clip=model)).value


SPEC = MetricSpec(
    name="video_quality",
    direction="higher",
    # A probability; one percentage point is below what separates visibly different
    # videos and far above float noise.
    tolerance=0.01,
    definition=('mean over frames of softmax(CLIP logits for "Good photo." vs "Bad photo.")[good]'),
    source="CLIP-IQA (Wang et al. 2023)",
    backend="the profile's CLIP judge (role clip): image and text towers",
    needs=("clip",),
    version="1",
    evaluate=evaluate,
)
