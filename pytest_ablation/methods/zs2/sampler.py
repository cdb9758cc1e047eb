"""ZS² text-to-video sampling with a Stable Diffusion image model, no training.

All frames of the video, and both classifier-free-guidance branches, go through the UNet as
one batch per denoising step (``[uncond frames..., cond frames...]``), with Temporal Momentum
Attention on every self-attention layer tying the frames together, and initial noise from
the dependency noise model (or a reference noise model).

    sampler = ZS2Sampler(components, frames=8, steps=50)
    video = sampler("a horse galloping on a street", seed=0)     # (8, 3, 512, 512) in [0, 1]

``generate(request)`` is the pytest-ablation generator protocol: the request's settings
(frames, steps, size, guidance, the seeded generator) and its ``config`` (``momentum``,
``noise``, ``lam``, ``alpha``, ...) override the sampler's defaults.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

import torch

from pytest_ablation.run.keys import source_digest
from pytest_ablation.models.components import DeferredComponents
from pytest_ablation.metrics.validation import check_frames

from .attention import check_momentum, tma_installed
from .noise import (
    DEPENDENCY_METHODS,
    check_alpha,
    check_lambda,
    dependency_noise,
    expected_correlation,
    independent_noise,
    lambda_for_correlation,
    mixed_noise,
    noise_statistics,
    progressive_noise,
    pyoco_alpha,
)

__all__ = ["NOISE_METHODS", "VERSION", "ZS2Sampler"]

# Bump when a change alters the videos for the same inputs; it is part of the cache identity.
VERSION = "1"

NOISE_METHODS = DEPENDENCY_METHODS + ("independent", "mixed", "progressive")

# The paper's default lam = 0.01 ends the (NaN-safe) two-stage search at a = 1, a still video:
# below about 0.04 the search's error at a = 1 (= lam) beats its error at a = 0.9. 0.1 is in the
# middle of the authors' motion-control sweep (0 to 0.25) and lands the search near a = 0.9
# (consecutive noise correlation about 0.95), the analytic solution at a = 0.88.
DEFAULT_LAMBDA = 0.1

# What ``request.config`` / keyword overrides may set, besides the request's settings.
CONFIG_KEYS = ("momentum", "noise", "lam", "alpha", "correlation", "negative_prompt", "decode_chunk_size")
# Videos the lam of a ``correlation`` target is calibrated on (one fixed draw of this many).
CALIBRATION_VIDEOS = 8


@functools.lru_cache(maxsize=1)
def _source_digest() -> str | None:
    return source_digest(f"{__package__}.attention", f"{__package__}.noise", __name__)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be an integer >= 1, got {value!r}")
    return int(value)


def _guidance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"guidance_scale must be a finite number, got {value!r}")
    return float(value)


def check_noise_method(noise: Any) -> str:
    if noise not in NOISE_METHODS:
        raise ValueError(f"noise must be one of {', '.join(map(repr, NOISE_METHODS))}, got {noise!r}")
    return noise


class ZS2Sampler:
    """Zero-shot text-to-video sampling from Stable Diffusion components.

    ``components`` has ``tokenizer``, ``text_encoder``, ``unet``, ``vae`` and ``scheduler``
    (e.g. ``pytest_ablation.models.StableDiffusionComponents``), or is a function returning
    them, called on first use: a run served from a cache then never loads the model.

    Defaults (each can be overridden per call): ``momentum`` of TMA in [0, 1] (0.98, the
    paper's); ``noise`` one of ``NOISE_METHODS`` (``"two_stage"``); ``lam`` the dependency
    target (0.1, see ``DEFAULT_LAMBDA``); ``alpha`` PYoCo's parameter for ``"mixed"`` and
    ``"progressive"`` noise (``None``: matched to the consecutive correlation that ``lam``
    asks for, ``1 - lam / e^(1/2)``); ``correlation`` (``None``: off) a target
    consecutive-frame noise correlation in [0, 1] that replaces ``lam`` and ``alpha``: the
    dependency searches get the ``lam`` that reaches it on this latent shape
    (``noise.lambda_for_correlation``, calibrated once per shape on a fixed draw), the
    analytic rule and PYoCo's noises the exact value, so that noise models can be compared
    at equal dependency (independent noise has none to set); ``frames``, ``steps``,
    ``guidance_scale``, ``height``
    and ``width`` (``None``: the UNet's native size), ``seed``; ``decode_chunk_size`` frames
    per VAE decode (``None``: all at once); ``progress`` shows a progress bar.
    ``model_identity`` names the weights in ``cache_identity()``.
    """

    def __init__(
        self,
        components: Any | Callable[[], Any],
        *,
        momentum: float = 0.98,
        noise: str = "two_stage",
        lam: float = DEFAULT_LAMBDA,
        alpha: float | None = None,
        correlation: float | None = None,
        frames: int = 8,
        steps: int = 50,
        guidance_scale: float = 7.5,
        height: int | None = None,
        width: int | None = None,
        seed: int = 0,
        negative_prompt: str = "",
        decode_chunk_size: int | None = None,
        progress: bool = True,
        model_identity: Mapping[str, Any] | None = None,
    ):
        self._components = DeferredComponents(components)
        self.defaults = self._checked(
            dict(
                momentum=momentum,
                noise=noise,
                lam=lam,
                alpha=alpha,
                correlation=correlation,
                frames=frames,
                steps=steps,
                guidance_scale=guidance_scale,
                height=height,
                width=width,
                seed=seed,
                negative_prompt=negative_prompt,
                decode_chunk_size=decode_chunk_size,
                progress=progress,
            )
        )
        self.model_identity = dict(model_identity) if model_identity is not None else None

    # -- parts --------------------------------------------------------------------------
    @property
    def components(self) -> Any:
        return self._components.get()

    @staticmethod
    def _checked(options: dict) -> dict:
        out = dict(options)
        out["momentum"] = check_momentum(out["momentum"])
        out["noise"] = check_noise_method(out["noise"])
        out["lam"] = check_lambda(out["lam"])
        if out["alpha"] is not None:
            out["alpha"] = check_alpha(out["alpha"])
        if out.get("correlation") is not None:
            rho = out["correlation"]
            if isinstance(rho, bool) or not isinstance(rho, Real) or not 0.0 <= float(rho) <= 1.0:
                raise ValueError(f"correlation must be a number in [0, 1] or None, got {rho!r}")
            if out["noise"] == "independent":
                raise ValueError("correlation: independent noise has no dependency to set; use another noise")
            out["correlation"] = float(rho)
        else:
            out["correlation"] = None
        out["frames"] = check_frames(out["frames"], what="frames")
        out["steps"] = _positive_int(out["steps"], "steps")
        out["guidance_scale"] = _guidance(out["guidance_scale"])
        for side in ("height", "width"):
            if out[side] is not None:
                out[side] = _positive_int(out[side], side)
        if isinstance(out["seed"], bool) or not isinstance(out["seed"], int):
            raise ValueError(f"seed must be an integer, got {out['seed']!r}")
        if not isinstance(out["negative_prompt"], str):
            raise ValueError(f"negative_prompt must be a string, got {out['negative_prompt']!r}")
        if out["decode_chunk_size"] is not None:
            out["decode_chunk_size"] = _positive_int(out["decode_chunk_size"], "decode_chunk_size")
        out["progress"] = bool(out["progress"])
        return out

    # -- the generator protocol ---------------------------------------------------------
    def cache_identity(self) -> dict:
        """What decides the videos besides the request: code, weights and defaults."""
        defaults = {k: v for k, v in self.defaults.items() if k not in ("progress", "seed")}
        return {
            "method": "zs2",
            "version": VERSION,
            "source": _source_digest(),
            "models": {"sd": self.model_identity},
            "defaults": defaults,
        }

    def generate(self, request: Any):
        """One request's ``GeneratedVideo`` (see ``generate_batch``)."""
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list) -> list:
        """Several requests of one configuration and settings through one UNet pass per step.

        Every request's noise comes from its own generator, so its video is the one it would
        get alone (to within float rounding: another batch size may sum in another order).
        Each ``GeneratedVideo``'s ``info["details"]`` holds what its initial noise achieved:
        ``noise_std`` and ``noise_correlation`` (``noise.noise_statistics``), and
        ``noise_lam``, the lam it was drawn at (dependency noises).
        """
        from pytest_ablation.run.generation import GeneratedVideo

        first = requests[0]
        config = dict(getattr(first, "config", None) or {})
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"ZS2Sampler: unknown configuration {', '.join(map(repr, unknown))}; allowed: {', '.join(CONFIG_KEYS)}"
            )
        shared = ("frames", "steps", "height", "width", "guidance_scale", "config")
        for request in requests[1:]:
            differing = [name for name in shared if getattr(request, name, None) != getattr(first, name, None)]
            if differing:
                raise ValueError(
                    f"ZS2Sampler.generate_batch: the requests differ in {', '.join(differing)}; "
                    "a batch shares its configuration and settings"
                )
        videos, details = self._sample_batch(
            [request.prompt for request in requests],
            [request.generator for request in requests],
            dict(
                frames=first.frames,
                steps=first.steps,
                height=first.height,
                width=first.width,
                guidance_scale=first.guidance_scale,
                progress=bool(getattr(first, "progress", False)),
                **config,
            ),
        )
        return [GeneratedVideo(video=v, info={"details": d}) for v, d in zip(videos, details)]

    def __call__(self, prompt: str, **overrides: Any) -> torch.Tensor:
        return self.sample(prompt, **overrides)

    # -- sampling -----------------------------------------------------------------------
    def sample(self, prompt: str, *, generator: torch.Generator | None = None, **overrides: Any) -> torch.Tensor:
        """One video ``(F, 3, H, W)`` in [0, 1], float32 on the CPU.

        ``generator`` (a CPU ``torch.Generator``) drives every random draw; without one, a
        generator seeded with ``seed`` is used.
        """
        return self.sample_batch([prompt], generators=[generator], **overrides)[0]

    def sample_batch(
        self,
        prompts: list[str],
        *,
        generators: list[torch.Generator | None] | None = None,
        **overrides: Any,
    ) -> list[torch.Tensor]:
        """One video per prompt, all denoised together; ``generators[i]`` drives video i."""
        return self._sample_batch(prompts, generators, overrides)[0]

    def _sample_batch(self, prompts, generators, overrides) -> tuple[list[torch.Tensor], list[dict]]:
        """The videos, and per video what its initial noise achieved."""
        if isinstance(prompts, str) or not prompts:
            raise ValueError(f"prompts must be a non-empty list of strings, got {prompts!r}")
        for prompt in prompts:
            if not isinstance(prompt, str):
                raise ValueError(f"prompt must be a string, got {prompt!r}")
        generators = list(generators) if generators is not None else [None] * len(prompts)
        if len(generators) != len(prompts):
            raise ValueError(f"generators: got {len(generators)} for {len(prompts)} prompts; give one per prompt")
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"ZS2Sampler: unknown option(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(self.defaults)}"
            )
        o = self._checked({**self.defaults, **overrides})
        generators = [g if g is not None else torch.Generator("cpu").manual_seed(o["seed"]) for g in generators]
        parts = self.components
        unet, vae = parts.unet, parts.vae
        device, dtype = unet.device, unet.dtype
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        height = o["height"] or unet.config.sample_size * scale
        width = o["width"] or unet.config.sample_size * scale
        if height % scale or width % scale:
            raise ValueError(
                f"height and width must be multiples of {scale} (the VAE's downscaling), got {height}x{width}"
            )
        frames = o["frames"]
        guided = o["guidance_scale"] > 1.0
        branches = 2 if guided else 1

        with torch.no_grad():
            context = self._encode_batch(parts, prompts, o["negative_prompt"], frames, guided, device)
            shape = (1, frames, unet.config.in_channels, height // scale, width // scale)
            # Drawn on the CPU from each video's own generator, then moved: the same noise on
            # every device and in every batch.
            noises = [self.initial_noise(shape, o, g) for g in generators]
            details = [self.noise_details(noise, shape, o) for noise in noises]
            latents = torch.cat([noise[0] for noise in noises]).to(device=device, dtype=dtype)
            scheduler = type(parts.scheduler).from_config(parts.scheduler.config)
            scheduler.set_timesteps(o["steps"], device=device)
            latents = latents * scheduler.init_noise_sigma
            step_kwargs = {}
            if "generator" in inspect.signature(scheduler.step).parameters:
                # Stochastic schedulers draw per step; in a batch, each frame from its video's
                # generator (diffusers takes one generator per batch row).
                step_kwargs["generator"] = (
                    generators[0] if len(generators) == 1 else [g for g in generators for _ in range(frames)]
                )
            timesteps = scheduler.timesteps
            if o["progress"]:
                from tqdm.auto import tqdm

                timesteps = tqdm(timesteps, desc="ZS² denoising", leave=False)
            with tma_installed(unet, o["momentum"], frames):
                for t in timesteps:
                    model_in = torch.cat([latents] * branches) if branches > 1 else latents
                    model_in = scheduler.scale_model_input(model_in, t)
                    prediction = unet(model_in, t, encoder_hidden_states=context).sample
                    if guided:
                        uncond, cond = prediction.chunk(2)
                        prediction = uncond + o["guidance_scale"] * (cond - uncond)
                    latents = scheduler.step(prediction, t, latents, **step_kwargs).prev_sample
            return [
                self._decode(vae, video_latents, o["decode_chunk_size"]) for video_latents in latents.split(frames)
            ], details

    @staticmethod
    def initial_noise(shape: tuple, options: Mapping[str, Any], generator: torch.Generator) -> torch.Tensor:
        """``(1, F, C, h, w)`` initial latents for ``options["noise"]``, drawn on the CPU."""
        method = options["noise"]
        if method in DEPENDENCY_METHODS:
            return dependency_noise(shape, ZS2Sampler.noise_lambda(shape, options), method, generator)
        if method == "independent":
            return independent_noise(shape, generator)
        alpha = options["alpha"]
        if options.get("correlation") is not None:
            alpha = pyoco_alpha(options["correlation"], method)
        elif alpha is None:
            alpha = pyoco_alpha(expected_correlation(options["lam"]), method)
        if method == "mixed":
            return mixed_noise(shape, alpha, generator)
        return progressive_noise(shape, alpha, generator)

    @staticmethod
    def noise_lambda(shape: tuple, options: Mapping[str, Any]) -> float:
        """The lam a dependency noise is drawn at: ``options["lam"]``, or with a
        ``correlation`` target the lam that reaches it on latents of ``shape``."""
        if options.get("correlation") is None:
            return options["lam"]
        return _calibrated_lambda(options["correlation"], options["noise"], tuple(shape[1:]))

    @staticmethod
    def noise_details(noise: torch.Tensor, shape: tuple, options: Mapping[str, Any]) -> dict:
        """What one video's initial noise achieved (``noise_std``, ``noise_correlation``),
        and the lam a dependency noise was drawn at (``noise_lam``)."""
        stats = noise_statistics(noise)
        details = {"noise_std": round(stats["std"], 6)}
        if math.isfinite(stats["correlation"]):  # one frame has no consecutive pair
            details["noise_correlation"] = round(stats["correlation"], 6)
        if options["noise"] in DEPENDENCY_METHODS:
            details["noise_lam"] = round(ZS2Sampler.noise_lambda(shape, options), 6)
        return details

    @classmethod
    def _encode_batch(cls, parts, prompts: list[str], negative: str, frames: int, guided: bool, device) -> torch.Tensor:
        """Text conditioning for ``[uncond videos..., cond videos...]``, frames contiguous."""
        # Each prompt is encoded as it is alone, so a batch does not change its embedding.
        per_video = [cls._encode(parts, p, negative, frames, guided, device) for p in prompts]
        if len(per_video) == 1:
            return per_video[0]
        branches = [piece.chunk(2 if guided else 1) for piece in per_video]
        return torch.cat([video[b] for b in range(len(branches[0])) for video in branches])

    @staticmethod
    def _encode(parts, prompt: str, negative: str, frames: int, guided: bool, device) -> torch.Tensor:
        texts = [negative, prompt] if guided else [prompt]
        tokens = parts.tokenizer(
            texts,
            padding="max_length",
            max_length=parts.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(device)
        encoded = parts.text_encoder(tokens)[0].to(parts.unet.dtype)
        # Branches outermost, frames contiguous inside a branch: the layout TMA expects.
        return encoded.repeat_interleave(frames, dim=0)

    @staticmethod
    def _decode(vae, latents: torch.Tensor, chunk: int | None) -> torch.Tensor:
        latents = latents.to(vae.dtype) / vae.config.scaling_factor
        shift = getattr(vae.config, "shift_factor", None)
        if shift:
            latents = latents + shift
        size = chunk or latents.shape[0]
        pieces = [vae.decode(part).sample for part in latents.split(size)]
        images = torch.cat(pieces).float().cpu()
        return (images / 2 + 0.5).clamp(0.0, 1.0)


@functools.lru_cache(maxsize=64)
def _calibrated_lambda(correlation: float, method: str, frame_shape: tuple) -> float:
    # One calibration per (target, method, latent shape): the bisection draws its noise from
    # a fixed seed, so every worker and run gets the same lam.
    return lambda_for_correlation(correlation, method, (CALIBRATION_VIDEOS, *frame_shape))
