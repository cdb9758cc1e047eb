"""Reading checkpoints and saying precisely why one does not fit a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Mapping

import torch


def read(path: Path, expected: str) -> Any:
    """What a ``.safetensors`` or ``torch.save`` file holds, on the CPU. ``torch.load`` runs
    with ``weights_only``: a checkpoint is data, and refusing pickled code is the safe
    default. ``expected`` describes the wanted file for the error message."""
    try:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read {path} as {expected}: {error}") from error


def mismatch(model: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str | None:
    """How ``state`` differs from a model's state dict (names and shapes), or None."""
    missing = sorted(set(model) - set(state))
    unexpected = sorted(set(state) - set(model))
    wrong = sorted(n for n in set(model) & set(state) if model[n].shape != state[n].shape)
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        shapes = [f"{n} {tuple(state[n].shape)} != {tuple(model[n].shape)}" for n in wrong[:3]]
        parts.append(f"wrong shapes: {', '.join(shapes)}")
    return "; ".join(parts) or None


def no_meta_left(module: torch.nn.Module, path: Path) -> None:
    """A model built on the meta device must have received every tensor from ``path``."""
    left = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"{path}: no weights for {', '.join(left[:3])} after loading")
