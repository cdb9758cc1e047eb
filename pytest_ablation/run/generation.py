"""What the plugin asks of a video generator, and what it gets back.

A generator is anything with ``generate(request) -> video`` (and, ideally,
``cache_identity() -> dict`` naming the models and code that determine its output), or a
plain function ``fn(request) -> video``. The methods in ``pytest_ablation.methods`` provide
such objects; a study may also pass its own.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping

from .keys import source_digest

if TYPE_CHECKING:
    import torch


# The study settings a request carries for its one video (the settings' schema is
# `pytest_ablation.profiles.StudySettings`; prompts, seeds and batch size are the study's).
VIDEO_SETTINGS = ("frames", "steps", "height", "width", "guidance_scale", "fps")


@dataclass(frozen=True)
class GenerationRequest:
    """One video to generate: a prompt, a seeded CPU generator, and the study's settings."""

    prompt: str
    seed: int
    generator: torch.Generator
    frames: int
    steps: int
    height: int
    width: int
    guidance_scale: float
    fps: int
    device: str
    config: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = False
    # Which of the profile's seeds this is (0 .. seeds-1): names the sample, e.g. in a
    # folder of videos made elsewhere (VideoFolder); None when not made for a study.
    seed_index: int | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        prompt: str,
        seed: int,
        device: str,
        config: Mapping[str, Any],
        progress: bool = False,
        seed_index: int | None = None,
    ) -> GenerationRequest:
        """The request for one (prompt, seed) sample under a profile's `StudySettings`: the
        video fields come from the settings by name, the generator from ``seed``."""
        import torch

        shared = {name: getattr(settings, name) for name in VIDEO_SETTINGS}
        return cls(
            prompt=prompt,
            seed=seed,
            generator=torch.Generator("cpu").manual_seed(seed),
            device=device,
            config=dict(config),
            progress=progress,
            seed_index=seed_index,
            **shared,
        )


@dataclass
class GeneratedVideo:
    """A generated video ``(F, 3, H, W)`` in [0, 1], and the image it was conditioned on."""

    video: torch.Tensor
    condition_image: torch.Tensor | None = None
    info: dict = field(default_factory=dict)


class GeneratorError(ValueError):
    pass


@dataclass(frozen=True)
class BoundGenerator:
    """A generator together with what identifies its output in the cache."""

    name: str
    identity: Mapping[str, Any]
    call: Callable[[GenerationRequest], Any]
    # ``generate_batch(requests) -> [video, ...]``, when the generator can make several
    # videos in one pass; each request's video must not depend on the others in its batch.
    call_batch: Callable[[list], Any] | None = None


def bind_generator(obj: Any, fallback_identity: Callable[[], Mapping[str, Any]]) -> BoundGenerator:
    """Accept a generator object or a plain function.

    Objects that know their identity (``cache_identity()``) are trusted with it. For the
    others the identity is the function's qualified name and a digest of its source, plus
    the profile's models (``fallback_identity``), so editing the function or switching
    checkpoints invalidates the cache.
    """
    if hasattr(obj, "generate") and callable(obj.generate):
        target = type(obj)
        call = obj.generate
    elif callable(obj):
        target = obj
        call = obj
    else:
        raise GeneratorError(
            f"ablation.run: expected a generator (an object with generate(request)) or a "
            f"function of a GenerationRequest, got {type(obj).__name__}"
        )
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    if hasattr(obj, "cache_identity"):
        identity = dict(obj.cache_identity())
        identity.setdefault("generator", name)
    else:
        identity = {"generator": name, "source": source_digest(target), "models": dict(fallback_identity())}
    batch = getattr(obj, "generate_batch", None)
    return BoundGenerator(name=name, identity=identity, call=call, call_batch=batch if callable(batch) else None)


def check_output(output: Any, *, generator: str) -> GeneratedVideo:
    """Normalise a generator's output and refuse what no metric could score."""
    import torch

    result = output if isinstance(output, GeneratedVideo) else GeneratedVideo(video=output)
    video = result.video
    if not isinstance(video, torch.Tensor):
        raise GeneratorError(f"{generator} returned {type(video).__name__}, not a torch.Tensor video")
    if video.ndim != 4 or video.shape[1] != 3:
        raise GeneratorError(f"{generator} returned a video of shape {tuple(video.shape)}; expected (F, 3, H, W)")
    _check_range(video, f"{generator} returned a video")
    image = result.condition_image
    if image is not None and (not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3):
        raise GeneratorError(
            f"{generator} returned a condition image of shape "
            f"{tuple(getattr(image, 'shape', ()))}; expected a tensor (3, H, W)"
        )
    if image is not None:
        _check_range(image, f"{generator} returned a condition image")
    return result


# Float rounding (e.g. of ``(x + 1) / 2``) may step this far outside [0, 1]; more is a bug.
RANGE_SLACK = 1e-4


def _check_range(tensor: torch.Tensor, what: str) -> None:
    """A video is float in [0, 1]: refuse 8-bit frames, [0, 255] or [-1, 1] scales, NaN."""
    import torch

    if not tensor.is_floating_point():
        raise GeneratorError(
            f"{what} of dtype {tensor.dtype}; expected floats in [0, 1] (for 8-bit frames divide by 255)"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise GeneratorError(f"{what} with NaN or infinite values")
    if tensor.numel():
        low, high = float(tensor.min()), float(tensor.max())
        if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
            raise GeneratorError(
                f"{what} with values in [{low:.4g}, {high:.4g}]; expected [0, 1] "
                "(rescale, e.g. (x + 1) / 2 for [-1, 1] or x / 255 for [0, 255]); it is refused "
                "rather than clamped, so that no score is computed on a clipped video"
            )


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Frames as a video file holds them; every score is computed from these."""
    import torch

    return (frames.detach().float().cpu().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


@functools.cache
def stored_as() -> str | None:
    """What turns a generator's output into the frames the cache keeps (``to_uint8``'s code):
    part of every video's key in place of the package's version, so a release that leaves
    it alone keeps every cached video."""
    return source_digest(to_uint8)
