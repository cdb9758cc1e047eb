"""Dynamic degree: how much the video moves, from OpenCV optical flow.

VBench thresholds the RAFT flow into a moving/static verdict; this keeps the continuous
quantity under that threshold, the mean magnitude of the largest 5% of flow vectors,
normalised to a 256 px short side so resolutions compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import numpy as np
    import torch
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "dynamic_degree"
TOP_FRACTION = 0.05


def top_mean_magnitude(flow: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Mean length of the ``fraction`` longest vectors of a (H, W, 2) flow field."""
    import numpy as np

    magnitude = np.hypot(flow[..., 0], flow[..., 1]).ravel()
    count = max(1, int(magnitude.size * fraction))
    return float(np.partition(magnitude, magnitude.size - count)[-count:].mean())


def evaluate(inp: MetricInput) -> Score:
    import numpy as np

    from pytest_ablation.metrics.flow import check_flow_size
    from pytest_ablation.metrics.flow import consecutive_flows

    inp.require(NAME, min_frames=2)
    height, width = inp.video.shape[-2:]
    check_flow_size(height, width, NAME)
    scale = min(height, width) / 256.0
    flows = consecutive_flows(inp.uint8_frames)
    per_pair = np.array([top_mean_magnitude(f) for f in flows]) / scale
    return Score(float(per_pair.mean()), tuple(per_pair.tolist()), {"per": "pair", "flow": "opencv-dis"})


def dynamic_degree_per_pair(video: torch.Tensor) -> list[float]:
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video)).per_frame))


def dynamic_degree(video: torch.Tensor) -> float:
    """Mean over consecutive pairs of the mean optical-flow magnitude of the top 5% vectors,
    divided by ``min(H, W) / 256``; 0 for a still video."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video)).value


SPEC = MetricSpec(
    name="dynamic_degree",
    direction="info",
    # Informational, never gated; one pixel per 256 px of short side is the smallest
    # motion change worth mentioning in a report.
    tolerance=1.0,
    definition=("mean over pairs of the mean optical-flow magnitude of the top 5% vectors, divided by min(H, W) / 256"),
    source="VBench dynamic_degree (RAFT there; OpenCV DIS flow here)",
    backend="OpenCV DIS optical flow",
    needs=(),
    version="1",
    evaluate=evaluate,
)
