"""What VBench's subject_consistency, background_consistency and aesthetic_quality share:
its frame preprocessing and its consistency formula (VBench, Huang et al. 2024,
github.com/Vchitect/VBench, ``vbench/utils.py`` and the dimension modules).

VBench reads every frame of the video file (no sampling) as uint8 and wraps them with
``torch.Tensor(...)``: a float32 tensor of values 0-255, not a uint8 one. Its resizes
therefore run on floats, without the rounding and clamping torchvision applies to uint8
images. That matters for bicubic resizing, which overshoots; it is reproduced here by
starting from :attr:`MetricInput.uint8_frames` (the frames as a video file would hold them)
converted to float32, never from the [0, 1] video directly.

Frames are preprocessed and encoded in chunks of :data:`CHUNK` (VBench's aesthetic batch
size); every step is per frame, so chunking changes nothing but memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

SIZE = 224
CHUNK = 32

# vbench/utils.py dino_transform: ImageNet statistics.
DINO_MEAN = (0.485, 0.456, 0.406)
DINO_STD = (0.229, 0.224, 0.225)
# vbench/utils.py clip_transform: OpenAI CLIP's statistics.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _levels(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 to (F, 3, H, W) float32 in 0-255, as VBench's load_video returns."""
    return torch.from_numpy(np.asarray(frames, dtype=np.float32)).permute(0, 3, 1, 2)


def dino_input(frames: np.ndarray) -> torch.Tensor:
    """VBench's ``dino_transform(224)``: the short side resized to 224 (bilinear, no
    antialiasing), the long side to ``int(224 * long / short)``, and no crop: DINO sees the
    whole frame at its aspect ratio. Then /255 and ImageNet normalisation."""
    x = TF.resize(_levels(frames), SIZE, interpolation=InterpolationMode.BILINEAR, antialias=False)
    return TF.normalize(x.div(255.0), DINO_MEAN, DINO_STD)


def clip_input(frames: np.ndarray) -> torch.Tensor:
    """VBench's ``clip_transform(224)``: the short side resized to 224 (bicubic, no
    antialiasing), a centre crop to 224x224, /255 and OpenAI CLIP normalisation. (Not
    open_clip's or OpenAI's own PIL preprocessing, which antialias: VBench replaces it.)"""
    x = TF.resize(_levels(frames), SIZE, interpolation=InterpolationMode.BICUBIC, antialias=False)
    x = TF.center_crop(x, SIZE)
    return TF.normalize(x.div(255.0), CLIP_MEAN, CLIP_STD)


def chunks(frames: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(frames), CHUNK):
        yield frames[start : start + CHUNK]


def encode(
    frames: np.ndarray,
    preprocess: Callable[[np.ndarray], torch.Tensor],
    model: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """(F, D) features of all frames, in the model's output dtype, on the model's device.

    Preprocessing runs on the CPU, as in VBench (its frames are moved to the device after
    the transform), so the resized pixels do not depend on the device."""
    with torch.inference_mode():
        return torch.cat([model(preprocess(chunk)) for chunk in chunks(frames)])


def consistency_per_frame(features: torch.Tensor) -> list[float]:
    """VBench's consistency of frames 1..F-1 from their (F, D) features.

    Features are L2-normalised in their own dtype (VBench does not cast them), then frame
    t scores ``(max(0, cos(f_t-1, f_t)) + max(0, cos(f_0, f_t))) / 2``: its similarity to
    the previous frame (local smoothness) and to the first (drift over the clip). The
    clamping and averaging happen on Python floats, as VBench's ``.item()`` loop does.
    """
    feats = F.normalize(features, dim=-1, p=2)
    later = feats[1:]
    to_previous = F.cosine_similarity(feats[:-1], later, dim=-1).tolist()
    to_first = F.cosine_similarity(feats[:1].expand_as(later), later, dim=-1).tolist()
    return [(max(0.0, p) + max(0.0, f)) / 2 for p, f in zip(to_previous, to_first)]


def mean(values: list[float]) -> float:
    """A left-to-right Python sum over the count, as VBench accumulates ``video_sim``."""
    total = 0.0
    for value in values:
        total += value
    return total / len(values)
