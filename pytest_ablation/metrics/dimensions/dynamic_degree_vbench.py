"""Dynamic degree as VBench defines it: is the video moving, by RAFT optical flow?

Steps, each as in VBench's ``vbench/dynamic_degree.py``:

1. Frames are subsampled to about 8 per second: every ``max(1, round(fps / 8))``-th frame,
   starting with the first (Python's ``round``, which rounds halves to even: 12 and 20 fps
   both keep every 2nd frame). Without a frame rate (``fps=None``) every frame is kept, as
   VBench does for a folder of images.
2. For each consecutive pair of kept frames, RAFT flow (backends/raft.py) and the mean of the
   largest 5% flow magnitudes, counted on the padded frame (``int(0.05 * H' * W')``
   vectors).
3. A pair moves when that value exceeds ``6 * min(H, W) / 256`` (6 px at a 256 px short
   side). The video is moving when at least ``round(4 * n / 16)`` pairs move, ``n`` being
   the number of kept frames (4 of 16). A consequence of VBench's rule kept as is: with 2
   kept frames ``round(0.5) == 0`` pairs are needed, so such a video is always "moving".

The score is that verdict, 1.0 (moving) or 0.0 (static); the per-pair magnitudes, the
continuous quantity under the threshold, are ``Score.per_frame``. VBench's own number for a
model is the mean verdict over its videos, which a study's mean over prompts reproduces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast
from collections.abc import Sequence

from pytest_ablation.metrics.registry import MetricSpec, Score

if TYPE_CHECKING:
    import numpy as np
    import torch
    from pytest_ablation.metrics.inputs import MetricInput

NAME = "dynamic_degree_vbench"
TOP_FRACTION = 0.05
TARGET_FPS = 8
THRESHOLD_AT_256 = 6.0
PAIRS_PER_16_FRAMES = 4


def sample_interval(fps: float | None) -> int:
    """Keep every n-th frame: ``max(1, round(fps / 8))``, 1 without a frame rate."""
    import numpy as np

    if fps is None:
        return 1
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"{NAME}: fps must be a positive number or None, got {fps!r}")
    return max(1, round(fps / TARGET_FPS))


def sampled_indices(num_frames: int, fps: float | None) -> list[int]:
    return list(range(0, num_frames, sample_interval(fps)))


def top_mean(magnitude: np.ndarray) -> float:
    """Mean of the largest ``int(0.05 * size)`` values of a (H, W) magnitude map."""
    import numpy as np

    flat = np.asarray(magnitude, dtype=np.float64).ravel()
    count = int(flat.size * TOP_FRACTION)
    if count < 1:
        raise ValueError(f"{NAME}: a {magnitude.shape} flow has no top 5% to average")
    return float(np.partition(flat, flat.size - count)[-count:].mean())


def threshold(height: int, width: int) -> float:
    return THRESHOLD_AT_256 * (min(height, width) / 256.0)


def pairs_needed(kept_frames: int) -> int:
    return round(PAIRS_PER_16_FRAMES * (kept_frames / 16.0))


def is_moving(magnitudes: Sequence[float], height: int, width: int) -> bool:
    """VBench's verdict from the per-pair statistics of ``len(magnitudes) + 1`` kept frames
    of size ``height`` x ``width`` (before padding)."""
    if len(magnitudes) == 0:
        return False
    above = sum(1 for m in magnitudes if m > threshold(height, width))
    return above >= pairs_needed(len(magnitudes) + 1)


def pair_magnitudes(flows: torch.Tensor) -> list[float]:
    """The top-5% mean magnitude of each (2, H, W) flow in ``flows`` (N, 2, H, W)."""
    import torch

    radius = torch.linalg.vector_norm(flows.double(), dim=1).numpy()
    return [top_mean(r) for r in radius]


def evaluate(inp: MetricInput) -> Score:
    import numpy as np
    import torch

    from pytest_ablation.metrics.backends import raft

    inp.require(NAME, min_frames=2)
    height, width = (int(s) for s in inp.video.shape[-2:])
    raft.check_size(height, width, NAME)
    fps = getattr(inp, "fps", None)
    kept = sampled_indices(inp.num_frames, fps)
    if len(kept) < 2:
        raise ValueError(
            f"{NAME}: {inp.num_frames} frames at fps={fps} keep {len(kept)} frame after "
            f"subsampling to ~{TARGET_FPS} per second (every {sample_interval(fps)}th); "
            "at least 2 are needed"
        )
    frames = torch.from_numpy(np.ascontiguousarray(inp.uint8_frames[kept]))
    frames = frames.permute(0, 3, 1, 2).float()
    model = raft.load(inp.device)
    magnitudes = pair_magnitudes(raft.flows(model, frames, inp.device))
    moving = is_moving(magnitudes, height, width)
    return Score(
        1.0 if moving else 0.0,
        tuple(magnitudes),
        {
            "per": "pair of kept frames",
            "flow": "raft-large, 20 iterations",
            "fps": fps,
            "interval": sample_interval(fps),
            "kept_frames": len(kept),
            "threshold": threshold(height, width),
            "pairs_needed": pairs_needed(len(kept)),
            "pairs_above": sum(1 for m in magnitudes if m > threshold(height, width)),
            "moving": moving,
        },
    )


def dynamic_degree_vbench_per_pair(video: torch.Tensor, fps: float | None = None) -> list[float]:
    """The top-5% mean RAFT flow magnitude of each pair of kept frames, in pixels."""
    from pytest_ablation.metrics.inputs import MetricInput

    return list(cast("tuple[float, ...]", evaluate(MetricInput(video, fps=fps)).per_frame))


def dynamic_degree_vbench(video: torch.Tensor, fps: float | None = None) -> float:
    """VBench's verdict: 1.0 if the video moves, 0.0 if it is static (frames subsampled to
    ~8 per second when ``fps`` is given). Needs ``PYTEST_ABLATION_WEIGHTS_RAFT_LARGE``."""
    from pytest_ablation.metrics.inputs import MetricInput

    return evaluate(MetricInput(video, fps=fps)).value


SPEC = MetricSpec(
    name="dynamic_degree_vbench",
    direction="info",
    # A yes/no verdict (1 moving, 0 static), informational: a flip is 1.0, anything smaller
    # is float noise.
    tolerance=0.5,
    definition=(
        "1 if at least round(4 n / 16) of the pairs of n frames kept at ~8 fps have a top-5% "
        "mean RAFT flow magnitude above 6 min(H, W) / 256, else 0"
    ),
    source="VBench dynamic_degree",
    backend=("RAFT optical flow, torchvision raft_large (weights: PYTEST_ABLATION_WEIGHTS_RAFT_LARGE)"),
    needs=(),
    weights=("raft-large",),
    version="1",
    evaluate=evaluate,
)
