"""Dense optical flow and warping with OpenCV, on uint8 RGB frames (H, W, 3)."""

from __future__ import annotations

import cv2
import numpy as np

METHODS = ("dis", "farneback")
# OpenCV's DIS refuses images under 12 px; a margin above that keeps its coarsest pyramid
# level meaningful.
MIN_SIZE = 16


def check_flow_size(height: int, width: int, what: str) -> None:
    if min(height, width) < MIN_SIZE:
        raise ValueError(
            f"{what} needs frames of at least {MIN_SIZE}x{MIN_SIZE} px for optical flow, got {height}x{width}"
        )


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Flow from frame a to frame b, such that ``a(x) ~ b(x + flow(x))``, in pixels."""

    def __init__(self, method: str = "dis") -> None:
        if method not in METHODS:
            raise ValueError(f"flow method must be one of {METHODS}, got {method!r}")
        self.method = method
        # One DIS object per estimator: it keeps buffers between calls, and estimators are
        # cheap enough to make one per video, which keeps threads from sharing it.
        self._dis = (
            cv2.DISOpticalFlow_create(  # type: ignore[attr-defined]  # cv2's stubs name only DISOpticalFlow.create
                cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
            )
            if method == "dis"
            else None
        )

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        check_flow_size(a.shape[0], a.shape[1], "optical flow")
        a, b = _gray(a), _gray(b)
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]  # cv2's stubs refuse flow=None
            a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0
        )


def consecutive_flows(frames: np.ndarray, method: str = "dis") -> list[np.ndarray]:
    """Flows between consecutive frames of a (F, H, W, 3) uint8 array: F-1 arrays (H, W, 2)."""
    estimate = FlowEstimator(method)
    return [estimate(a, b) for a, b in zip(frames[:-1], frames[1:])]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))``, bilinear, edges replicated."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image,
        grid_x + flow[..., 0],
        grid_y + flow[..., 1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
