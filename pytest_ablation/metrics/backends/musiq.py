"""MUSIQ (Ke et al. 2021) through pyiqa, as VBench's imaging_quality runs it.

VBench builds ``pyiqa.archs.musiq_arch.MUSIQ(pretrained_model_path=...)`` from
``musiq_spaq_ckpt-358bb6af.pth`` (MUSIQ trained on SPAQ, smartphone photos; one output, a
0-100 quality score), the file ``PYTEST_ABLATION_WEIGHTS_MUSIQ`` must name. VBench then sets
``model.training = False`` on the top module only, which switches on MUSIQ's own input
handling (scaling to [-1, 1], multi-scale patches); the submodules stay in training mode, but
MUSIQ's dropout rates are 0 and it has no batch norm, so ``eval()`` here computes the same.

pyiqa is not a dependency of this package (README, Metrics): ``pip install pyiqa`` brings
facexlib, which installs ``opencv-python`` over the pinned ``opencv-python-headless``. Its
MUSIQ needs only pyiqa itself and scipy: ``pip install --no-deps pyiqa==0.1.16 scipy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

WEIGHTS = "musiq"
# VBench's default preprocessing ("longer"): frames whose longer side exceeds this are
# resized so that it equals it.
LONGER_SIDE = 512


def build(path: Path, device: Any) -> torch.nn.Module:
    from pyiqa.archs.musiq_arch import MUSIQ

    # pretrained_model_path given: pyiqa loads that file (strictly) and never downloads.
    model = MUSIQ(pretrained_model_path=str(path))
    return model.to(device).eval()


def load(device: Any) -> torch.nn.Module:
    from pytest_ablation.metrics.weights import load_once

    return load_once(WEIGHTS, device, build)


def preprocess(frames: torch.Tensor) -> torch.Tensor:
    """VBench's "longer" mode on float frames (F, 3, H, W) with values in [0, 255]: when
    ``max(H, W) > 512``, bilinear resize without antialiasing to
    ``(int(s * H), int(s * W))`` with ``s = 512 / max(H, W)``; then divide by 255."""
    height, width = frames.shape[-2:]
    if max(height, width) > LONGER_SIDE:
        scale = LONGER_SIDE / max(height, width)
        size = (int(scale * height), int(scale * width))
        # What torchvision's Resize(size, antialias=False) does on a float tensor.
        frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=False)
    return frames / 255.0


@torch.no_grad()
def frame_scores(model: torch.nn.Module, frames: torch.Tensor, device: Any) -> list[float]:
    """MUSIQ's 0-100 score of each preprocessed frame, one frame per call as VBench does
    (MUSIQ's patch sequence depends on the frame's size, not on its batch)."""
    return [float(model(frame.unsqueeze(0).to(device))) for frame in frames]
