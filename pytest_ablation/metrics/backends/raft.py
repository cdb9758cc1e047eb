"""RAFT optical flow (torchvision's ``raft_large``) as VBench's dynamic_degree runs it.

VBench calls the original RAFT code with the ``raft-things.pth`` checkpoint (FlyingChairs +
FlyingThings3D). torchvision's ``Raft_Large_Weights.C_T_V1`` (``raft_large_C_T_V1-22a6c225.pth``)
is that checkpoint ported to torchvision's implementation, so it is the file to point
``PYTEST_ABLATION_WEIGHTS_RAFT_LARGE`` at; the other torchvision checkpoints (``C_T_V2``,
``C_T_SKHT_*``) load too, but give other flows than VBench's.

What VBench does around the network, reproduced here:

- frames are float RGB in [0, 255], mapped to [-1, 1] (the original RAFT does that inside its
  forward; torchvision's expects it done before);
- both frames are padded to a multiple of 8 by edge replication, the odd pixel after
  (RAFT's ``InputPadder`` in its default "sintel" mode), and the flow is *not* unpadded
  before the statistic is taken;
- 20 refinement iterations (``iters=20``; torchvision's default is 12), the last upsampled
  flow is the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

WEIGHTS = "raft-large"
ITERATIONS = 20
# torchvision's RAFT refuses feature maps under 16 px (its correlation pyramid pools the
# 1/8-resolution features three times by 2): 128 px after padding.
MIN_SIZE = 128
# Pairs per forward pass: enough to fill a GPU at VBench resolutions, small enough for CPU
# memory. Each pair's flow does not depend on the others in the batch (instance norm in the
# feature encoder, batch norm in eval mode in the context encoder).
BATCH = 4


def build(path: Path, device: Any) -> torch.nn.Module:
    from torchvision.models.optical_flow import raft_large

    model = raft_large(weights=None, progress=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    # Checkpoints saved from DataParallel prefix every key with "module.", as VBench strips.
    state = {key.removeprefix("module."): value for key, value in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RuntimeError(
            f"{path} is not a torchvision raft_large state dict (the weights "
            f"PYTEST_ABLATION_WEIGHTS_RAFT_LARGE names must be e.g. "
            f"raft_large_C_T_V1-22a6c225.pth): {exc}"
        ) from None
    return model.to(device).eval()


def load(device: Any) -> torch.nn.Module:
    from pytest_ablation.metrics.weights import load_once

    return load_once(WEIGHTS, device, build)


def sintel_padding(height: int, width: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding to the next multiple of 8, as RAFT's InputPadder."""
    pad_h = (8 - height % 8) % 8
    pad_w = (8 - width % 8) % 8
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


def check_size(height: int, width: int, what: str) -> None:
    left, right, top, bottom = sintel_padding(height, width)
    if min(height + top + bottom, width + left + right) < MIN_SIZE:
        raise ValueError(
            f"{what} needs frames of at least {MIN_SIZE - 7}x{MIN_SIZE - 7} px "
            f"(padded to {MIN_SIZE}) for torchvision's RAFT, got {height}x{width}"
        )


@torch.no_grad()
def flows(model: torch.nn.Module, frames: torch.Tensor, device: Any) -> torch.Tensor:
    """Flows between consecutive frames of ``frames`` (F, 3, H, W), float values in [0, 255]:
    (F-1, 2, H', W') on the padded frame size, on the CPU."""
    pad = sintel_padding(*frames.shape[-2:])
    out = []
    for start in range(0, frames.shape[0] - 1, BATCH):
        stop = min(start + BATCH, frames.shape[0] - 1)
        chunk = frames[start : stop + 1].to(device, torch.float32)
        chunk = F.pad(2 * (chunk / 255.0) - 1.0, pad, mode="replicate")
        predictions = model(chunk[:-1], chunk[1:], num_flow_updates=ITERATIONS)
        out.append(predictions[-1].float().cpu())
    return torch.cat(out)
