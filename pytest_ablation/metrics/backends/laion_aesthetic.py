"""The LAION aesthetic predictor v1 (github.com/LAION-AI/aesthetic-predictor): one linear
layer from a normalised OpenAI CLIP ViT-L/14 image embedding (768-d) to a rating on the
0-10 scale of its training annotations. VBench's aesthetic_quality puts it on top of
CLIP ViT-L/14 (``backends/clip_vit.py``).

The checkpoint is LAION's ``sa_0_4_vit_l_14_linear.pth`` (VBench keeps it in
``~/.cache/vbench/aesthetic_model/emb_reader/``): the state dict of ``nn.Linear(768, 1)``,
``weight`` (1, 768) and ``bias`` (1,). A safetensors file with the same two tensors reads too.
The head runs in float32, as in VBench (which casts the CLIP features to float32 first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from pytest_ablation.metrics.backends import state_dicts

EMBED_DIM = 768
EXPECTED = (
    "LAION's aesthetic head sa_0_4_vit_l_14_linear.pth: the state dict of nn.Linear(768, 1), "
    "weight (1, 768) and bias (1,)"
)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    loaded: Any = state_dicts.read(path, EXPECTED)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, expected {EXPECTED}")
    return dict(loaded)


def build(path: Path, device: Any) -> nn.Linear:
    """``load_once`` builder: the head from ``path``, float32, eval mode, on ``device``."""
    state = read_state_dict(path)
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if shapes != {"weight": (1, EMBED_DIM), "bias": (1,)}:
        raise ValueError(f"{path} is not {EXPECTED}: it holds {shapes}")
    head = nn.Linear(EMBED_DIM, 1)
    head.load_state_dict(state, strict=True)
    return head.float().eval().to(device)
