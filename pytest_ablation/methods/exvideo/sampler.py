"""Image to (long) video with an ExVideo-extended SVD UNet.

    components = load_model(profile.model("svd"), "cuda")     # or any SVD components
    extend_unet(components.unet, max_frames=128)               # or an ExSVD checkpoint
    sampler = ExVideoSampler(components)
    out = sampler(image, frames=128, steps=25)                 # GeneratedVideo
    out.video.shape                                            # (128, 3, H, W) in [0, 1]

The loop is SVD's (Euler, v-prediction, classifier-free guidance rising linearly over the
frames from ``min_guidance_scale`` to ``guidance_scale``), run on all frames at once by the
extended UNet; only VAE decoding is chunked. All randomness (noise augmentation, initial
noise) comes from one CPU generator, so a seed gives the same video on any device.
"""

from __future__ import annotations

import math
import warnings
from typing import Any
from collections.abc import Callable

import torch

from pytest_ablation.run.keys import source_digest
from pytest_ablation.models.components import DeferredComponents
from pytest_ablation.run.generation import GeneratedVideo

from .conditioning import (
    added_time_ids,
    check_image,
    condition_latents,
    decode_latents,
    image_embeddings,
)
from .data import scene_image
from .positions import check_frames
from .temporal import exvideo_settings, is_extended

# Bump when a change alters the videos for the same inputs; it is part of the cache identity.
VERSION = "1"


def code_digest() -> str | None:
    """The code that decides an ExVideo video: positions, temporal blocks, conditioning,
    scenes and this sampler."""
    parts = ("positions", "temporal", "conditioning", "data")
    return source_digest(*(f"{__package__}.{part}" for part in parts), __name__)


def _number(value: Any, name: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: got {value!r}; expected a finite number")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: got {value!r}; expected a number >= {minimum}")
    return float(value)


class ExVideoSampler:
    """SVD image-to-video sampling, beyond 25 frames with an extended UNet.

    ``components`` has ``image_encoder``, ``feature_extractor``, ``unet``, ``vae`` and
    ``scheduler`` (``pytest_ablation.models.StableVideoDiffusionComponents``), or is a
    function returning them, called on first use. ``unet`` replaces ``components.unet``.
    A plain SVD UNet samples up to the frames it was trained on, as SVD does.

    ``generate(request)`` is the pytest-ablation generator protocol: the condition image is
    drawn by ``image_source(height, width, generator=request.generator)`` (a procedural
    moving-shapes scene by default) and recorded with the video.
    """

    def __init__(
        self,
        components: Any | Callable[[], Any],
        unet: torch.nn.Module | None = None,
        *,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.02,
        min_guidance_scale: float = 1.0,
        decode_chunk_size: int = 8,
        image_source: Callable[..., torch.Tensor] | None = None,
        model_identity: dict | None = None,
    ):
        self._components = DeferredComponents(components)
        self._unet = unet
        self.motion_bucket_id = int(_number(motion_bucket_id, "motion_bucket_id", 0))
        self.noise_aug_strength = _number(noise_aug_strength, "noise_aug_strength", 0)
        self.min_guidance_scale = _number(min_guidance_scale, "min_guidance_scale", 0)
        self.decode_chunk_size = check_frames(decode_chunk_size, "decode_chunk_size")
        self.image_source = image_source or scene_image
        self.model_identity = model_identity

    @property
    def components(self) -> Any:
        return self._components.get()

    @property
    def unet(self) -> torch.nn.Module:
        return self._unet if self._unet is not None else self.components.unet

    # -- the generator protocol ---------------------------------------------------------
    def cache_identity(self) -> dict:
        unet = (
            self._unet
            if self._unet is not None
            else (self._components.loaded.unet if self._components.loaded else None)
        )
        return {
            "method": "exvideo-sampler",
            "version": VERSION,
            "source": code_digest(),
            "models": {"svd": self.model_identity},
            "unet": exvideo_settings(unet).to_dict() if unet is not None and is_extended(unet) else None,
            "defaults": {
                "motion_bucket_id": self.motion_bucket_id,
                "noise_aug_strength": self.noise_aug_strength,
                "min_guidance_scale": self.min_guidance_scale,
                "decode_chunk_size": self.decode_chunk_size,
                "image_source": getattr(self.image_source, "__qualname__", repr(self.image_source)),
            },
        }

    def generate(self, request: Any) -> GeneratedVideo:
        if getattr(request, "config", None):
            raise ValueError(
                f"ExVideoSampler: takes no configuration, got {sorted(request.config)}; "
                "configure the UNet (extend_unet) instead"
            )
        return self.sample(request)

    def generate_batch(self, requests: list) -> list[GeneratedVideo]:
        for request in requests:
            if getattr(request, "config", None):
                raise ValueError(
                    f"ExVideoSampler: takes no configuration, got {sorted(request.config)}; "
                    "configure the UNet (extend_unet) instead"
                )
        return self.sample_batch(requests)

    def sample(self, request: Any) -> GeneratedVideo:
        """A video at the request's settings, from a condition image drawn with its generator."""
        return self.sample_batch([request])[0]

    def sample_batch(self, requests: list) -> list[GeneratedVideo]:
        """One video per request, denoised together; each from its own generator's image."""
        first = requests[0]
        shared = ("frames", "steps", "height", "width", "guidance_scale", "fps")
        for request in requests[1:]:
            differing = [name for name in shared if getattr(request, name) != getattr(first, name)]
            if differing:
                raise ValueError(
                    f"ExVideoSampler.sample_batch: the requests differ in {', '.join(differing)}; "
                    "a batch shares its settings"
                )
        images = [self.image_source(request.height, request.width, generator=request.generator) for request in requests]
        return self.batch(
            images,
            generators=[request.generator for request in requests],
            frames=first.frames,
            steps=first.steps,
            guidance_scale=first.guidance_scale,
            fps=first.fps,
        )

    # -- sampling -----------------------------------------------------------------------
    def _max_frames(self) -> int:
        unet: Any = self.unet  # a diffusers UNet: ``config`` is its own, not nn.Module's
        if is_extended(unet):
            return exvideo_settings(unet).max_frames
        return int(unet.config.num_frames)

    def __call__(
        self,
        image: torch.Tensor,
        *,
        frames: int = 25,
        steps: int = 25,
        guidance_scale: float = 3.0,
        fps: int = 7,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> GeneratedVideo:
        """A ``frames``-frame video of ``image`` ((3, H, W) in [0, 1]) at its size."""
        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        return self.batch(
            [image],
            generators=[generator],
            frames=frames,
            steps=steps,
            guidance_scale=guidance_scale,
            fps=fps,
        )[0]

    @torch.no_grad()
    def batch(
        self,
        images: list[torch.Tensor],
        *,
        generators: list[torch.Generator],
        frames: int = 25,
        steps: int = 25,
        guidance_scale: float = 3.0,
        fps: int = 7,
    ) -> list[GeneratedVideo]:
        """One video per condition image (all of one size), through one UNet pass per step.

        ``generators[i]`` draws video i's noise augmentation and initial noise, in the order a
        lone video draws them, so a video does not depend on the others in its batch.
        """
        images = [check_image(image) for image in images]
        if len(generators) != len(images):
            raise ValueError(f"generators: got {len(generators)} for {len(images)} images; give one per image")
        if len({tuple(image.shape) for image in images}) > 1:
            raise ValueError("images: a batch's condition images must share one size")
        check_frames(frames, "frames")
        check_frames(steps, "steps")
        check_frames(fps, "fps")
        guidance = _number(guidance_scale, "guidance_scale", 0)
        limit = self._max_frames()
        if frames > limit:
            raise ValueError(
                f"frames: got {frames}; this UNet samples at most {limit} frames "
                "(extend_unet(unet, max_frames=...) for longer videos)"
            )
        parts = self.components
        unet: Any = self.unet  # a diffusers UNet: ``config`` is its own, not nn.Module's
        device = next(unet.parameters()).device
        dtype = next(unet.parameters()).dtype
        height, width = images[0].shape[-2:]
        # The VAE's downsampling, as diffusers' SVD pipeline reads it (8 for SVD's VAE).
        vae_scale = 2 ** (len(parts.vae.config.block_out_channels) - 1)
        shape = (1, frames, unet.config.out_channels, height // vae_scale, width // vae_scale)

        embeddings, conds, noises = [], [], []
        for image, generator in zip(images, generators):
            embeddings.append(image_embeddings(parts.image_encoder, parts.feature_extractor, image[None]).to(dtype))
            conds.append(condition_latents(parts.vae, image[None], self.noise_aug_strength, generator).to(dtype))
            # Drawn on the CPU, then moved: the same noise on every device.
            noises.append(torch.randn(shape, generator=generator, dtype=torch.float32))
        embedding, cond = torch.cat(embeddings), torch.cat(conds)
        guided = guidance > 1.0
        if guided:
            embedding = torch.cat([torch.zeros_like(embedding), embedding])
            cond = torch.cat([torch.zeros_like(cond), cond])
        rows = embedding.shape[0]
        cond = cond[:, None].expand(rows, frames, *cond.shape[1:])
        time_ids = added_time_ids(fps, self.motion_bucket_id, self.noise_aug_strength, rows, dtype, device)

        scheduler = type(parts.scheduler).from_config(parts.scheduler.config)
        with warnings.catch_warnings():
            # diffusers' Euler scheduler hands a torch tensor to np.array(), which numpy 2
            # warns about on every call: nothing a caller can change, so not shown.
            warnings.filterwarnings(
                "ignore", message="__array__ implementation doesn't accept a copy", category=DeprecationWarning
            )
            scheduler.set_timesteps(steps, device=device)
        latents = torch.cat(noises).to(device=device, dtype=dtype)
        latents = latents * scheduler.init_noise_sigma
        scale = torch.linspace(self.min_guidance_scale, guidance, frames, device=device, dtype=dtype)
        scale = scale[None, :, None, None, None]
        step_generator = generators[0] if len(generators) == 1 else list(generators)

        for t in scheduler.timesteps:
            model_in = torch.cat([latents] * (2 if guided else 1))
            model_in = scheduler.scale_model_input(model_in, t)
            model_in = torch.cat([model_in, cond], dim=2)
            pred = unet(model_in, t, encoder_hidden_states=embedding, added_time_ids=time_ids, return_dict=False)[0]
            if guided:
                uncond, conditioned = pred.chunk(2)
                pred = uncond + scale * (conditioned - uncond)
            latents = scheduler.step(pred, t, latents, generator=step_generator).prev_sample

        return [
            GeneratedVideo(
                video=decode_latents(parts.vae, video_latents, self.decode_chunk_size),
                condition_image=image.detach().float().cpu(),
                info={"frames": frames, "steps": steps, "height": int(height), "width": int(width)},
            )
            for image, video_latents in zip(images, latents)
        ]
