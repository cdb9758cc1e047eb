"""``tiny-stable-video-diffusion``: Stable Video Diffusion's structure at toy size, built
in-process."""

from __future__ import annotations

from typing import Any

from pytest_ablation.models.kinds.tiny_stable_diffusion import identity
from pytest_ablation.profiles import ModelKind, ModelSpec, checks


def load(spec: ModelSpec, device: str) -> Any:
    from pytest_ablation.models.tiny import build_tiny_stable_video_diffusion

    return build_tiny_stable_video_diffusion(
        seed=spec.options.get("seed", 0),
        device=device,
        dtype=spec.options.get("dtype"),
        num_frames=spec.options.get("num_frames"),
    )


KIND = ModelKind(
    name="tiny-stable-video-diffusion",
    description="Stable Video Diffusion's structure at toy size, built in-process from a fixed seed",
    load=load,
    identity=identity,
    options={"seed": checks.seed, "dtype": checks.dtype, "num_frames": checks.positive_int},
)
