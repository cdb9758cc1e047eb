"""ZS²: zero-shot video sampling from a text-to-image diffusion model.

- ``TemporalMomentumAttnProcessor`` / ``install_tma``: Temporal Momentum Attention on the
  UNet's self-attention layers.
- ``dependency_noise`` (``two_stage``, ``random``, ``analytic``) and the reference noise
  models ``independent_noise``, ``mixed_noise``, ``progressive_noise``.
- ``ZS2Sampler``: text to video from Stable Diffusion components.

Names are imported on first use, so importing this package does not import torch.
"""

from __future__ import annotations

from pytest_ablation.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
