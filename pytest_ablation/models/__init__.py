"""Models: turning a profile's ModelSpec into live objects, and naming them for cache keys.

Each kind (``ModelSpec.kind``) is one module that declares its options, how it loads and how
it is identified (`pytest_ablation.profiles.kinds.ModelKind`). The package's own:

- ``tiny-stable-diffusion``, ``tiny-stable-video-diffusion`` (``models/kinds/``): the
  StableDiffusionComponents / StableVideoDiffusionComponents of a toy model built in-process.
- ``stable-diffusion`` / ``stable-video-diffusion`` (``models/kinds/``): the components, read
  with ``from_pretrained`` from a hub id or a local folder in the diffusers layout.
- ``callable`` (``models/kinds/``): whatever ``function(device=device, **options)`` returns.
- ``open-clip``, ``tiny-open-clip`` (``metrics/kinds/``): a ``metrics.ClipModel`` judge.
- ``exsvd`` (``methods/exvideo/kind.py``): SVD-XT's components whose UNet is extended and
  loaded with an ExVideo ExSVD file.

Importing this package does not import torch or diffusers; `load_model` does, on first use.
"""

from __future__ import annotations

import os
from typing import Any

from pytest_ablation.models.components import (
    StableDiffusionComponents,
    StableVideoDiffusionComponents,
)
from pytest_ablation.profiles import ModelSpec, ProfileError
from pytest_ablation.profiles.kinds import model_kind

__all__ = [
    "StableDiffusionComponents",
    "StableVideoDiffusionComponents",
    "load_model",
    "model_identity",
]


def _checked(spec: Any, what: str) -> ModelSpec:
    if not isinstance(spec, ModelSpec):
        raise ProfileError(f"{what}: expected a ModelSpec, got {spec!r}")
    return spec


def load_model(spec: ModelSpec, device: str) -> Any:
    """The model `spec` describes, in eval mode with gradients off, on `device`."""
    spec = _checked(spec, "load_model")
    return model_kind(spec.kind, f"models.{spec.role}.kind").load(spec, str(device))


def model_identity(spec: ModelSpec, cache_dir: str | os.PathLike[str] | None = None) -> dict:
    """A JSON-able description of the model, stable across runs and processes.

    Tiny kinds: kind, config digest and seed. Hub ids: id and revision. Local folders and
    files: a sha256 over the weight files (memoised in `cache_dir`/file-hashes.json, by
    default ~/.cache/pytest-ablation). Callables: source. Every kind adds its options
    (dtype, variant, ...), which change the outputs too.
    """
    spec = _checked(spec, "model_identity")
    return model_kind(spec.kind, f"models.{spec.role}.kind").identity(spec, cache_dir)
