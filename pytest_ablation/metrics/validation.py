"""Input checks shared by every metric: one clear ValueError per kind of bad input."""

from __future__ import annotations

import numpy as np
import torch


def _check_pixels(x: object, name: str, layout: str, ndim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {layout}, got {x.ndim} (shape {tuple(x.shape)})")
    if x.shape[-3] != 3:
        raise ValueError(f"{name} must have 3 channels {layout}, got {x.shape[-3]} (shape {tuple(x.shape)})")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor with values in [0, 1], got dtype {x.dtype}")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = "NaN" if bool(torch.isnan(x).any()) else "infinite values"
        raise ValueError(f"{name} contains {bad}; values must lie in [0, 1]")
    lo, hi = torch.aminmax(x)
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} values must lie in [0, 1], got min {lo.item():.4g} and max {hi.item():.4g}")
    return x


def check_video(video: object, name: str = "video") -> torch.Tensor:
    """Return ``video`` if it is a float tensor (F, 3, H, W) in [0, 1]; raise otherwise."""
    return _check_pixels(video, name, "(F, 3, H, W)", 4)


def check_image(image: object, name: str = "image") -> torch.Tensor:
    """Return ``image`` if it is a float tensor (3, H, W) in [0, 1]; raise otherwise."""
    return _check_pixels(image, name, "(3, H, W)", 3)


def check_condition_image(image: object, video: torch.Tensor) -> torch.Tensor:
    """Return ``image`` if it is a condition image (3, H, W) of the frames' size; raise otherwise."""
    image = check_image(image, "condition image")
    if image.shape[-2:] != video.shape[-2:]:
        raise ValueError(
            f"condition image is {tuple(image.shape[-2:])} (H, W) but the video frames "
            f"are {tuple(video.shape[-2:])}; resize it to the video's size"
        )
    return image


def check_frames(frames: object, minimum: int = 1, what: str = "num_frames") -> int:
    """Return the number of frames, of a video (F, ...) or given as an integer, if it is at
    least ``minimum``; raise otherwise.

    ``what`` names what needs the frames: for a video, e.g. the metric ("clip_score needs at
    least 2 frames, got a video of 1"); for a count, the argument ("num_frames must be >= 1").
    """
    if isinstance(frames, torch.Tensor):
        count = int(frames.shape[0])
        if count < minimum:
            raise ValueError(f"{what} needs at least {minimum} frames, got a video of {count}")
        return count
    if isinstance(frames, bool) or not isinstance(frames, int):
        raise TypeError(f"{what} must be an integer >= {minimum}, got {frames!r}")
    if frames < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {frames}")
    return int(frames)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) in [0, 1] to (F, H, W, 3) uint8, rounding to the nearest level.

    Rounding (not truncation) keeps a frame that came from uint8 exactly as it was.
    """
    levels = (video.detach().to("cpu", torch.float32) * 255.0).round_()
    return levels.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
