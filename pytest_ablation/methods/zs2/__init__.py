"""ZS²: zero-shot video sampling from a text-to-image diffusion model.

- ``TemporalMomentumAttnProcessor`` / ``install_tma``: Temporal Momentum Attention on the
  UNet's self-attention layers.
- ``dependency_noise`` (``two_stage``, ``random``, ``analytic``) and the reference noise
  models ``independent_noise``, ``mixed_noise``, ``progressive_noise``;
  ``noise_statistics`` (what a noise achieved: per-frame std, consecutive correlation) and
  ``lambda_for_correlation`` (the lam that reaches a correlation, for equal-dependency
  comparisons).
- ``ZS2Sampler``: text to video from Stable Diffusion components.

Names are imported on first use, so importing this package does not import torch.
"""

from __future__ import annotations

from pytest_ablation.lazy import lazy_exports

_EXPORTS = {
    "attention": (
        "TemporalMomentumAttnProcessor",
        "install_tma",
        "tma_installed",
        "momentum_weights",
        "self_attention_names",
    ),
    "noise": (
        "DependencyNoise",
        "dependency_noise",
        "divergence",
        "expected_correlation",
        "independent_noise",
        "mixed_noise",
        "progressive_noise",
        "pyoco_alpha",
        "DEPENDENCY_METHODS",
        "noise_statistics",
        "lambda_for_correlation",
    ),
    "sampler": ("ZS2Sampler", "NOISE_METHODS", "DEFAULT_LAMBDA", "VERSION"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
