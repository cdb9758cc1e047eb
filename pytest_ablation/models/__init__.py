"""Models: turning a profile's ModelSpec into live objects, and naming them for cache keys.

Importing this package does not import torch or diffusers; `load_model` does, on first use.

Kinds (``ModelSpec.kind``) and what `load_model` returns for each:

- ``tiny-stable-diffusion``: StableDiffusionComponents of a toy SD built in-process.
- ``tiny-stable-video-diffusion``: StableVideoDiffusionComponents of a toy SVD, likewise.
- ``tiny-open-clip``: a ``metrics.ClipModel`` of the toy judge, seeded random weights.
- ``stable-diffusion`` / ``stable-video-diffusion``: the components, read with
  ``from_pretrained`` from a hub id or a local folder in the diffusers layout.
- ``open-clip``: a ``metrics.ClipModel``; ``options.name`` the architecture, the source a
  pretrained tag or a checkpoint file.
- ``exsvd``: StableVideoDiffusionComponents of SVD-XT (as ``stable-video-diffusion``) whose
  UNet is extended and loaded with an ExVideo ExSVD file (``options.exsvd``/``exsvd_file``).
- ``callable``: whatever ``function(device=device, **options)`` returns.
"""

from __future__ import annotations

import os
from typing import Any

from pytest_ablation.models.components import (
    StableDiffusionComponents,
    StableVideoDiffusionComponents,
)
from pytest_ablation.profiles import ModelSpec, ProfileError

__all__ = [
    "StableDiffusionComponents",
    "StableVideoDiffusionComponents",
    "load_model",
    "model_identity",
]


def load_model(spec: ModelSpec, device: str) -> Any:
    """The model `spec` describes, in eval mode with gradients off, on `device`."""
    if not isinstance(spec, ModelSpec):
        raise ProfileError(f"load_model: expected a ModelSpec, got {spec!r}")
    from pytest_ablation.models.loaders import load

    return load(spec, str(device))


def model_identity(spec: ModelSpec, cache_dir: str | os.PathLike[str] | None = None) -> dict:
    """A JSON-able description of the model, stable across runs and processes.

    Tiny kinds: kind, config digest and seed. Hub ids: id and revision. Local folders and
    files: resolved path and a sha256 over the weight files (memoised in
    `cache_dir`/file-hashes.json, by default ~/.cache/pytest-ablation). Callables: source.
    Every kind adds its options (dtype, variant, ...), which change the outputs too.
    """
    if not isinstance(spec, ModelSpec):
        raise ProfileError(f"model_identity: expected a ModelSpec, got {spec!r}")
    from pytest_ablation.models.identity import identity

    return identity(spec, cache_dir)
