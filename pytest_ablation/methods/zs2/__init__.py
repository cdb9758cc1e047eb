"""ZS²: zero-shot video sampling from a text-to-image diffusion model.

- ``TemporalMomentumAttnProcessor`` / ``install_tma``: Temporal Momentum Attention on the
  UNet's self-attention layers.
- ``dependency_noise`` (``two_stage``, ``random``, ``analytic``) and the reference noise
  models ``independent_noise``, ``mixed_noise``, ``progressive_noise``.
- ``ZS2Sampler``: text to video from Stable Diffusion components.

Names are imported on first use, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TemporalMomentumAttnProcessor": "attention",
    "install_tma": "attention",
    "tma_installed": "attention",
    "momentum_weights": "attention",
    "self_attention_names": "attention",
    "DependencyNoise": "noise",
    "dependency_noise": "noise",
    "divergence": "noise",
    "expected_correlation": "noise",
    "independent_noise": "noise",
    "mixed_noise": "noise",
    "progressive_noise": "noise",
    "pyoco_alpha": "noise",
    "DEPENDENCY_METHODS": "noise",
    "ZS2Sampler": "sampler",
    "NOISE_METHODS": "sampler",
    "DEFAULT_LAMBDA": "sampler",
    "VERSION": "sampler",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
