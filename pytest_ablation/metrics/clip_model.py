"""An open_clip model with tensor preprocessing, batched over frames."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import Any
from collections.abc import Iterator, Sequence

import open_clip
import torch
import torch.nn.functional as F

from pytest_ablation.metrics.validation import check_video

TINY_MODEL = "pytest-ablation-tiny"  # the tiny-open-clip kind's architecture
_TEXT_CACHE_SIZE = 1024

# The package's own open_clip architectures ship beside this file, one config per name
# (the tiny random judge, the toy world's trained judge): registered once on import.
for _config in sorted(Path(__file__).parent.glob("pytest-ablation-*.json")):
    if _config.stem not in open_clip.list_models():
        open_clip.add_model_config(_config)


@contextlib.contextmanager
def _quiet_random_init_warning() -> Iterator[None]:
    # open_clip warns on the root logger that no weights were loaded; random weights are
    # what the caller asked for here.
    def keep(record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _tag_uses_quick_gelu(name: str, pretrained: str) -> bool:
    """Whether an open_clip tag's weights were trained with QuickGELU.

    open_clip builds ``ViT-L-14`` with GELU even for ``pretrained="openai"``, whose weights
    need QuickGELU, and only warns: the features come out subtly wrong. Following the tag
    fixes that for every name, with or without the ``-quickgelu`` suffix.
    """
    if os.path.isfile(pretrained):
        return False
    return bool(open_clip.get_pretrained_cfg(name, pretrained).get("quick_gelu", False))


def _weights_digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        # A byte view hashes any dtype (bfloat16 included) without a numpy conversion.
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class ClipModel:
    """An open_clip model, its preprocessing done on tensors, and its tokenizer.

    ``encode_images`` and ``encode_texts`` return L2-normalised float32 features on the CPU
    (scores are computed from them there; keeping them off the accelerator lets a
    ``MetricInput`` hold them without pinning device memory).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        name: str,
        pretrained: str | None,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        # An open_clip model: encode_image and encode_text are its own, not nn.Module's.
        self.model: Any = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self.batch_size = batch_size
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        self.image_size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        self.mean = tuple(float(m) for m in cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std = tuple(float(s) for s in cfg.get("std", open_clip.OPENAI_DATASET_STD))
        self.interpolation: str = cfg.get("interpolation", "bicubic")
        self.resize_mode: str = cfg.get("resize_mode", "shortest")
        self.fill_color: int = cfg.get("fill_color", 0)
        if self.interpolation not in ("bicubic", "bilinear"):
            raise ValueError(f"unsupported interpolation {self.interpolation!r} in {name}")
        if self.resize_mode not in ("shortest", "longest", "squash"):
            raise ValueError(f"unsupported resize_mode {self.resize_mode!r} in {name}")
        self._identity: dict[str, Any] | None = None
        self._text_cache: dict[tuple[str, ...], torch.Tensor] = {}

    @classmethod
    def from_open_clip(
        cls,
        name: str,
        pretrained: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        *,
        seed: int = 0,
        batch_size: int = 32,
    ) -> ClipModel:
        """Build ``name`` from open_clip's configs (``pytest-ablation-tiny`` included).

        ``pretrained``: an open_clip tag (``"openai"``), a local checkpoint file, or None for
        random weights drawn from ``seed`` (the same on every machine and device, and the
        global RNG is left untouched).
        """
        pretrained_arg = os.fspath(pretrained) if pretrained is not None else None
        if pretrained_arg is None:
            # Initialise on the CPU so that the draws do not depend on the device.
            with torch.random.fork_rng(devices=[]), _quiet_random_init_warning():
                torch.manual_seed(seed)
                model = open_clip.create_model(name, pretrained=None, device="cpu")
            label = f"random(seed={seed})"
        else:
            model = open_clip.create_model(
                name,
                pretrained=pretrained_arg,
                device="cpu",
                force_quick_gelu=_tag_uses_quick_gelu(name, pretrained_arg),
            )
            label = os.path.basename(pretrained_arg) if os.path.isfile(pretrained_arg) else pretrained_arg
        model = model.to(device)
        return cls(
            model,
            open_clip.get_tokenizer(name),
            name=name,
            pretrained=label,
            batch_size=batch_size,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def logit_scale(self) -> float:
        scale = getattr(self.model, "logit_scale", None)
        # open_clip keeps the log of the scale; CLIP's own value is the fallback.
        return float(scale.detach().exp()) if scale is not None else 100.0

    @property
    def identity(self) -> dict[str, Any]:
        """What determines the features: part of every score cache key."""
        if self._identity is None:
            self._identity = {
                "name": self.name,
                "pretrained": self.pretrained,
                "weights_sha256": _weights_digest(self.model),
                "preprocess": {
                    "size": list(self.image_size),
                    "mean": list(self.mean),
                    "std": list(self.std),
                    "interpolation": self.interpolation,
                    "resize_mode": self.resize_mode,
                },
            }
        return dict(self._identity)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] to the model's normalised input, on the model's device."""
        th, tw = self.image_size
        x = frames.to(self.device, torch.float32)
        h, w = x.shape[-2:]
        if self.resize_mode == "squash":
            size = (th, tw)
        elif self.resize_mode == "shortest":
            scale = max(th / h, tw / w)
            size = (max(th, round(h * scale)), max(tw, round(w * scale)))
        else:
            scale = min(th / h, tw / w)
            size = (min(th, round(h * scale)), min(tw, round(w * scale)))
        if size != (h, w):
            # antialias=True is what makes a tensor resize agree with PIL's on downscaling.
            x = F.interpolate(x, size=size, mode=self.interpolation, align_corners=False, antialias=True).clamp_(0, 1)
        h, w = size
        if self.resize_mode == "shortest":
            top, left = (h - th) // 2, (w - tw) // 2
            x = x[..., top : top + th, left : left + tw]
        elif self.resize_mode == "longest" and (h, w) != (th, tw):
            top, left = (th - h) // 2, (tw - w) // 2
            x = F.pad(x, (left, tw - w - left, top, th - h - top), value=self.fill_color / 255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def encode_images(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] to (N, D) L2-normalised features, ``batch_size`` at a time."""
        frames = check_video(frames, "frames")
        out = []
        for start in range(0, frames.shape[0], self.batch_size):
            chunk = self.preprocess(frames[start : start + self.batch_size])
            out.append(self.model.encode_image(chunk).float())
        return F.normalize(torch.cat(out), dim=-1).cpu()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """A list of strings to (N, D) L2-normalised features."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("encode_texts expects a list of strings")
        if len(texts) == 0:
            raise ValueError("encode_texts needs at least one text")
        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu()

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """``encode_texts``, memoised: prompts and quality anchors recur across every video
        of a study, and their features are a constant of the model."""
        key = tuple(texts)
        features = self._text_cache.get(key)
        if features is None:
            if len(self._text_cache) >= _TEXT_CACHE_SIZE:
                self._text_cache.pop(next(iter(self._text_cache)))
            features = self._text_cache[key] = self.encode_texts(list(key))
        return features

    def __repr__(self) -> str:
        return f"ClipModel({self.name!r}, pretrained={self.pretrained!r}, device={self.device})"


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of L2-normalised features, clamped against rounding past +-1."""
    return (a * b).sum(-1).clamp(-1.0, 1.0)


__all__ = ["ClipModel", "TINY_MODEL", "cosine"]
