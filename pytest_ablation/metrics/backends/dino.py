"""DINO ViT-B/16 (Caron et al. 2021), the feature model of VBench's subject_consistency.

VBench loads it with ``torch.hub.load("facebookresearch/dino:main", "dino_vitb16")``: the
backbone without a head, whose output is the [CLS] token after the final LayerNorm. Here the
architecture is timm's ``vit_base_patch16_224`` (same modules and parameter names as DINO's
``vision_transformer.py``: LayerNorm eps 1e-6, qkv bias, exact GELU), run with DINO's own
forward: VBench does not crop, so non-square videos reach the model at e.g. 224x398, and
DINO stretches its 14x14 position embeddings to that grid in its particular way (bicubic,
with a scale factor of ``(n + 0.1) / 14``, not timm's antialiased resampling to a size).

Checkpoints read (a local file; nothing is downloaded):

- facebookresearch's ``dino_vitbase16_pretrain.pth``, the file torch.hub fetches for VBench:
  a plain state dict;
- timm's ``model.safetensors`` of ``timm/vit_base_patch16_224.dino``: the same weights under
  the same names;
- either wrapped as ``{"state_dict": ...}``/``{"model": ...}``/``{"teacher": ...}``, with
  ``module.`` or ``backbone.`` prefixes (DINO's training checkpoints). A ``head.*`` entry
  (DINO's projection head) is not part of the backbone and is ignored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from pytest_ablation.metrics.backends import state_dicts

ARCH = "vit_base_patch16_224"
PATCH = 16
EXPECTED = (
    "a DINO ViT-B/16 backbone state dict (facebookresearch's dino_vitbase16_pretrain.pth or "
    "timm's vit_base_patch16_224.dino model.safetensors)"
)


class DinoViT(nn.Module):
    """A timm ViT-B/16 evaluated as DINO's ``VisionTransformer.forward``."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        # timm's VisionTransformer, whose parts (pos_embed, patch_embed, blocks...) are
        # reached by name; nn.Module types them only as tensors or modules.
        self.vit: Any = vit

    def position_embedding(self, height: int, width: int, patches: int) -> torch.Tensor:
        pos = self.vit.pos_embed
        grid = pos.shape[1] - 1
        if patches == grid and height == width:
            return pos
        side = math.sqrt(grid)
        dim = pos.shape[-1]
        # DINO adds 0.1 so that interpolate's floor(side * scale) lands on the patch count
        # despite float error; the interpolation itself uses this scale factor, not the
        # output/input ratio, so both are kept as DINO has them.
        rows, cols = height // PATCH + 0.1, width // PATCH + 0.1
        table = pos[:, 1:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
        table = F.interpolate(table, scale_factor=(rows / side, cols / side), mode="bicubic")
        if table.shape[-2:] != (int(rows), int(cols)):
            raise RuntimeError(
                f"DINO position embeddings resized to {tuple(table.shape[-2:])}, expected "
                f"{(int(rows), int(cols))} for a {height}x{width} input"
            )
        table = table.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((pos[:, :1], table), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Frames are preprocessed on the CPU (as VBench does); they meet the weights here.
        weight = self.vit.cls_token
        images = images.to(device=weight.device, dtype=weight.dtype)
        height, width = images.shape[-2:]
        # The patch convolution alone: like DINO's, it drops the pixels past the last whole
        # patch, where timm's PatchEmbed would refuse a size that is not a multiple of 16.
        patches = self.vit.patch_embed.proj(images)
        tokens = self.vit.patch_embed.norm(patches.flatten(2).transpose(1, 2))
        cls = self.vit.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat((cls, tokens), dim=1)
        tokens = tokens + self.position_embedding(height, width, tokens.shape[1] - 1)
        for block in self.vit.blocks:
            tokens = block(tokens)
        return self.vit.norm(tokens)[:, 0]


def architecture() -> nn.Module:
    """timm's ViT-B/16 without a head, on the meta device: shapes only, no random
    initialisation to pay for, since every parameter comes from the checkpoint."""
    import timm

    with torch.device("meta"):
        return timm.create_model(ARCH, pretrained=False, num_classes=0, dynamic_img_size=True)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    loaded: Any = state_dicts.read(path, EXPECTED)
    for key in ("teacher", "state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, expected {EXPECTED}")
    state = {}
    for name, tensor in loaded.items():
        for prefix in ("module.", "backbone."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        if not name.startswith("head."):
            state[name] = tensor
    return state


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    problem = state_dicts.mismatch(model.state_dict(), state)
    if problem:
        raise ValueError(f"{path} is not {EXPECTED}: {problem}")
    model.load_state_dict(state, strict=True, assign=True)
    state_dicts.no_meta_left(model, path)


def build(path: Path, device: Any) -> DinoViT:
    """``load_once`` builder: the DINO backbone from ``path``, in float32 (as VBench runs it)
    on ``device``, in eval mode."""
    vit = architecture()
    load_weights(vit, read_state_dict(path), path)
    return DinoViT(vit).float().eval().to(device)
