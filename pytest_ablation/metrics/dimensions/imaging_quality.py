"""Imaging quality as VBench defines it: MUSIQ (SPAQ) per frame, / 100, averaged.

Frames are the uint8 frames a player shows, as VBench reads them from a file; frames whose
longer side exceeds 512 px are resized to it (VBench's default "longer" preprocessing;
backends/musiq.py). Higher is better; 0-1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import torch
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "imaging_quality"


def evaluate(inp: MetricInput) -> Score:
    import torch

    from pytest_ablation.metrics.backends import musiq

    inp.require(NAME)
    frames = torch.from_numpy(inp.uint8_frames.copy()).permute(0, 3, 1, 2).float()
    frames = musiq.preprocess(frames)
    model = musiq.load(inp.device)
    per_frame = [s / 100.0 for s in musiq.frame_scores(model, frames, inp.device)]
    return Score(
        sum(per_frame) / len(per_frame),
        tuple(per_frame),
        {"per": "frame", "model": "musiq-spaq", "size": list(frames.shape[-2:])},
    )


def imaging_quality_per_frame(video: torch.Tensor) -> list[float]:
    """MUSIQ's score / 100 of each frame."""
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video)).per_frame))


def imaging_quality(video: torch.Tensor) -> float:
    """Mean over frames of MUSIQ (SPAQ) / 100, frames resized to a 512 px longer side when
    larger. Needs pyiqa and ``PYTEST_ABLATION_WEIGHTS_MUSIQ``."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video)).value


SPEC = MetricSpec(
    name="imaging_quality",
    direction="higher",
    # MUSIQ / 100: VBench separates models by 0.01-0.05; float and device differences on the
    # same frames move it by far less than 0.005.
    tolerance=0.005,
    definition=("mean over frames of MUSIQ(SPAQ) / 100, frames with a longer side above 512 px resized to 512"),
    source="VBench imaging_quality",
    backend="MUSIQ through pyiqa (weights: PYTEST_ABLATION_WEIGHTS_MUSIQ)",
    needs=(),
    weights=("musiq",),
    version="1",
    evaluate=evaluate,
)
