"""``MetricInput``: one video and what its metrics need, with CLIP features memoised."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from pytest_ablation.metrics.validation import (
    check_condition_image,
    check_frames,
    check_video,
    to_uint8,
)

if TYPE_CHECKING:
    from pytest_ablation.metrics.clip_model import ClipModel
    from pytest_ablation.metrics.interpolators import Interpolator

_WHAT = {
    "text": "a prompt (text=...)",
    "image": "a condition image (image=...)",
    "clip": "a CLIP model (clip=ClipModel...)",
}


class MetricInput:
    """One video (F, 3, H, W) in [0, 1], plus the optional prompt, condition image (3, H, W),
    CLIP model and frame interpolator its metrics may need, and the device their own models
    run on (the video's by default).

    The inputs are validated once, here. CLIP features of the frames and of the condition
    image, and the uint8 frames, are computed on first use and kept, so every CLIP metric of
    one video shares a single pass of the image encoder (text features are memoised by the
    ClipModel itself, since prompts recur across videos). The fields are read-only for that
    reason: build a new ``MetricInput`` for a new video.
    """

    def __init__(
        self,
        video: torch.Tensor,
        *,
        text: str | None = None,
        image: torch.Tensor | None = None,
        clip: ClipModel | None = None,
        interpolator: Interpolator | None = None,
        device: str | torch.device | None = None,
        fps: float | None = None,
    ) -> None:
        self._video = check_video(video)
        if text is not None and not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        if image is not None:
            check_condition_image(image, video)
        self._text = text
        self._image = image
        self._clip = clip
        self._interpolator = interpolator
        self._device = torch.device(device) if device is not None else self._video.device
        if fps is not None and not (
            isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps) and fps > 0
        ):
            raise ValueError(f"fps must be a positive number or None, got {fps!r}")
        self._fps = fps
        self._uint8: np.ndarray | None = None
        self._frame_features: torch.Tensor | None = None
        self._image_features: torch.Tensor | None = None

    video = property(lambda self: self._video)
    text = property(lambda self: self._text)
    image = property(lambda self: self._image)
    clip = property(lambda self: self._clip)
    interpolator = property(lambda self: self._interpolator)
    # Where a metric's own model (metrics/weights.py) runs: the worker's device.
    device = property(lambda self: self._device)
    # Frames per second the video plays at, when known (VBench's dynamic degree subsamples
    # by it); None for a bare tensor.
    fps = property(lambda self: self._fps)

    @property
    def num_frames(self) -> int:
        return int(self._video.shape[0])

    def require(self, metric: str, needs: Iterable[str] = (), min_frames: int = 1) -> None:
        """Raise ValueError naming what ``metric`` needs and this input lacks."""
        missing = [need for need in sorted(needs) if getattr(self, need) is None]
        if missing:
            raise ValueError(
                f"{metric} needs {' and '.join(_WHAT[m] for m in missing)}, which this MetricInput does not have"
            )
        check_frames(self._video, min_frames, metric)

    @property
    def uint8_frames(self) -> np.ndarray:
        """(F, H, W, 3) uint8 frames, for the metrics defined on 8-bit video."""
        if self._uint8 is None:
            self._uint8 = to_uint8(self._video)
            self._uint8.flags.writeable = False
        return self._uint8

    @property
    def frame_features(self) -> torch.Tensor:
        """(F, D) CLIP features of the frames."""
        if self._frame_features is None:
            self.require("frame features", {"clip"})
            assert self._clip is not None  # require() raised without one
            self._frame_features = self._clip.encode_images(self._video)
        return self._frame_features

    @property
    def image_features(self) -> torch.Tensor:
        """(D,) CLIP feature of the condition image."""
        if self._image_features is None:
            self.require("condition-image features", {"clip", "image"})
            assert self._clip is not None and self._image is not None  # require() raised without them
            self._image_features = self._clip.encode_images(self._image.unsqueeze(0))[0]
        return self._image_features

    @property
    def text_features(self) -> torch.Tensor:
        """(D,) CLIP feature of the prompt."""
        self.require("text features", {"clip", "text"})
        assert self._text is not None  # require() raised without one
        return self.texts_features((self._text,))[0]

    def texts_features(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, D) CLIP features of fixed texts (the prompt, quality anchors); the model
        memoises them across videos."""
        self.require("text features", {"clip"})
        assert self._clip is not None  # require() raised without one
        return self._clip.text_features(texts)

    def __repr__(self) -> str:
        parts = [f"video={tuple(self._video.shape)}"]
        if self._text is not None:
            parts.append(f"text={self._text!r}")
        if self._image is not None:
            parts.append(f"image={tuple(self._image.shape)}")
        if self._clip is not None:
            parts.append(f"clip={self._clip.name}")
        if self._interpolator is not None:
            parts.append(f"interpolator={getattr(self._interpolator, 'name', '?')}")
        return f"MetricInput({', '.join(parts)})"
