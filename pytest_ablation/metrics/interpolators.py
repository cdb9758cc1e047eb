"""Frame interpolators for ``motion_smoothness``.

An interpolator is any callable ``interpolator(frames_a, frames_b) -> midpoints`` on float
tensors (N, 3, H, W) in [0, 1] (N pairs at once), returning the (N, 3, H, W) frames halfway
between each pair, ideally with a ``name`` attribute that reports print. A learned model
such as AMT plugs in with the same signature; it should split N into chunks itself if
memory requires.

A run picks one in its profile, ``[metrics.motion_smoothness] interpolator = ...``: a name of
``interpolator_choice.BUILTINS`` or ``"package.module:factory"`` (interpolator_choice.py).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from pytest_ablation.metrics.flow import FlowEstimator, check_flow_size, warp


@runtime_checkable
class Interpolator(Protocol):
    name: str

    def __call__(self, frames_a: torch.Tensor, frames_b: torch.Tensor) -> torch.Tensor: ...


def interpolator_name(interpolator: object) -> str:
    return str(
        getattr(interpolator, "name", None) or getattr(interpolator, "__name__", None) or type(interpolator).__name__
    )


def _batched(frames_a: torch.Tensor, frames_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if frames_a.shape != frames_b.shape:
        raise ValueError(f"frames to interpolate differ in shape: {tuple(frames_a.shape)} and {tuple(frames_b.shape)}")
    single = frames_a.ndim == 3
    if single:
        frames_a, frames_b = frames_a.unsqueeze(0), frames_b.unsqueeze(0)
    if frames_a.ndim != 4 or frames_a.shape[1] != 3:
        raise ValueError(f"frames to interpolate must be (N, 3, H, W) or (3, H, W), got {tuple(frames_a.shape)}")
    return frames_a, frames_b, single


class LinearInterpolator:
    """The average of the two frames: right for fades, blurs anything that moves."""

    name = "linear-blend"

    def __call__(self, frames_a: torch.Tensor, frames_b: torch.Tensor) -> torch.Tensor:
        a, b, single = _batched(frames_a, frames_b)
        mid = (a + b) / 2
        return mid[0] if single else mid

    def __repr__(self) -> str:
        return "LinearInterpolator()"


class FlowMidpointInterpolator:
    """Both frames warped halfway along their optical flows (OpenCV), then averaged.

    The flow at the midpoint is approximated from the two endpoint flows as in Super SloMo
    (Jiang et al. 2018) at t = 1/2: ``F_mid->a = (F_b->a - F_a->b) / 4`` and
    ``F_mid->b = -F_mid->a``, exact for motion that is uniform across the pair.
    """

    def __init__(self, method: str = "dis") -> None:
        self.method = method
        self.name = "flow-midwarp" if method == "dis" else f"flow-midwarp-{method}"
        FlowEstimator(method)  # fail on an unknown method now, not on first use

    def __call__(self, frames_a: torch.Tensor, frames_b: torch.Tensor) -> torch.Tensor:
        a, b, single = _batched(frames_a, frames_b)
        check_flow_size(a.shape[-2], a.shape[-1], self.name)
        estimate = FlowEstimator(self.method)
        a_np = a.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
        b_np = b.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
        mids = []
        for fa, fb in zip(a_np, b_np):
            a8 = np.clip(np.rint(fa * 255), 0, 255).astype(np.uint8)
            b8 = np.clip(np.rint(fb * 255), 0, 255).astype(np.uint8)
            to_a = (estimate(b8, a8) - estimate(a8, b8)) / 4
            mids.append((warp(fa, to_a) + warp(fb, -to_a)) / 2)
        mid = torch.from_numpy(np.stack(mids)).permute(0, 3, 1, 2).clamp_(0, 1).to(a.dtype)
        mid = mid.to(a.device)
        return mid[0] if single else mid

    def __repr__(self) -> str:
        return f"FlowMidpointInterpolator(method={self.method!r})"


def farneback_midpoint() -> FlowMidpointInterpolator:
    """The midpoint warp on OpenCV's Farneback flow instead of DIS."""
    return FlowMidpointInterpolator("farneback")
