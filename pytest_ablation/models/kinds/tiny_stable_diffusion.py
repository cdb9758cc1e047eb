"""``tiny-stable-diffusion``: Stable Diffusion's structure at toy size, built in-process."""

from __future__ import annotations

from typing import Any

from pytest_ablation.profiles import ModelKind, ModelSpec, checks
from pytest_ablation.profiles.spec import thaw

NAME = "tiny-stable-diffusion"


def load(spec: ModelSpec, device: str) -> Any:
    from pytest_ablation.models.tiny import build_tiny_stable_diffusion

    return build_tiny_stable_diffusion(seed=spec.options.get("seed", 0), device=device, dtype=spec.options.get("dtype"))


def identity(spec: ModelSpec, cache_dir: Any = None) -> dict[str, Any]:
    """The architecture's config digest, the seed and the init scheme: all that decides the
    weights of a model built in-process."""
    from pytest_ablation.models.tiny import INIT_SCHEME, config_sha256

    options = thaw(spec.options)
    return {
        "kind": spec.kind,
        "config_sha256": config_sha256(spec.kind, options.get("num_frames")),
        "seed": options.pop("seed", 0),
        "init": INIT_SCHEME,
        "options": options,
    }


KIND = ModelKind(
    name=NAME,
    description="Stable Diffusion's structure at toy size, built in-process from a fixed seed",
    load=load,
    identity=identity,
    options={"seed": checks.seed, "dtype": checks.dtype},
)
