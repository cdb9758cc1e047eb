"""The toy world's image autoencoder: a small diffusers ``AutoencoderKL`` for 32x32 RGB.

Three levels give a downsampling factor of 4, so a 32x32 image becomes a 4x8x8 latent: the
shape of Stable Diffusion's latents at 1/64 of its area, small enough for a CPU to diffuse
many videos, large enough that a shape 10 pixels wide still spans several latent cells.
``ZS2Sampler`` reads the factor from ``len(block_out_channels)``, so it samples 32x32 videos
from these latents unchanged.

Training is plain reconstruction (L1 + L2) plus a small KL term on the posterior, no
adversarial loss: the world is flat colours and soft gradients, which pixel losses already
reproduce sharply. Every batch is freshly drawn (still images and frames of moving shapes),
so the model never sees the same picture twice and held-out images measure the real error.

After training, ``scaling_factor`` is set to 1 / std of the latents (posterior samples over
a fixed set of images), so the diffusion model trains on and samples unit-variance latents.

    python -m toyworld.train vae      # writes weights/t2i/vae/
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.toyworld.data import IMAGE_SIZE, captions, sample_images, sample_videos
from toyworld import judge as judge_module
from toyworld.training import (
    EVALUATION_SEED,
    Progress,
    StepProgress,
    check_steps,
    evaluation_images,
    folder_megabytes,
    save_folder_atomic,
    training_seed,
)
from toyworld.training import learning_rate as schedule

# Where the stage writes, relative to the weights folder: inside the text-to-image model's
# diffusers folder, so ``load_stable_diffusion`` finds it as the ``vae`` component.
SUBFOLDER = Path("t2i") / "vae"

VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    # 32 channels at the two outer levels carry the edges; the 8x8 level, where the latent
    # is made and read, gets the most. 64 channels at 16x16 would double the cost of the
    # decoder's upsampling to 32x32, the most expensive layer, for no visible gain on flat
    # shapes. The mid-block attention is dropped: at 8x8 a stack of 3x3 convolutions
    # already sees the whole image, and attention cost a fifth of a step.
    "block_out_channels": [32, 32, 64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": IMAGE_SIZE,
    "mid_block_add_attention": False,
    # Replaced by the measured value once trained (see measure_scaling_factor).
    "scaling_factor": 1.0,
}

# 0.2 s of one CPU thread a step at batch 16: five and a half minutes on one thread.
DEFAULT_STEPS = 1600
# Small batches, many steps: per image seen, more updates train an autoencoder faster.
BATCH_SIZE = 16
# High for an autoencoder, safe with the gradient clipping below: the budget is short.
LEARNING_RATE = 2e-3
# Per latent element, against per-pixel losses: Stable Diffusion's regime, where the KL
# only keeps the latents bounded and the posterior's noise stays far below their spread.
# At 1e-4 (posterior noise std 0.3 against a spread of 2.6; and half this learning rate)
# the same budget gave blurred edges, triangles and squares as blobs, 24.0 dB held-out
# PSNR; this setting gives 26.3 dB with the corners back.
KL_WEIGHT = 1e-6
L1_WEIGHT = 1.0
L2_WEIGHT = 1.0
# A quarter of every batch are frames of moving shapes, which the image-to-video model
# decodes: a shape cut smaller to fit its path, at any point along it.
VIDEO_SHARE = 0.25
VIDEO_FRAMES = 4

# The latent scale is measured on images from the evaluation range (above every training
# seed), but not the evaluation images themselves.
SCALE_SEED = EVALUATION_SEED + 1
SCALE_COUNT = 1024


def build_vae(seed: int = 0) -> Any:
    """A freshly initialised autoencoder with ``VAE_CONFIG``, the same for the same seed."""
    from diffusers import AutoencoderKL

    # Constructors draw from the global generator: fork it, so the caller's state survives.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoencoderKL(**VAE_CONFIG)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images to the [-1, 1] range Stable Diffusion's autoencoders work in."""
    return images * 2.0 - 1.0


def training_batches(batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless batches (batch_size, 3, 32, 32) in [-1, 1]: still images and video frames.

    Batch ``k`` depends only on ``(seed, k)``, so a run is reproducible and two seeds never
    share a batch. Images and videos get different data seeds: both draw their scenes first,
    so one seed would give the videos the images' shapes.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_frames_total = int(round(batch_size * VIDEO_SHARE))
    n_videos = math.ceil(n_frames_total / VIDEO_FRAMES)
    n_images = batch_size - n_frames_total
    step = 0
    while True:
        base = training_seed(seed, step) * 2
        parts = []
        if n_images:
            parts.append(sample_images(n_images, seed=base)[0])
        if n_videos:
            videos = sample_videos(n_videos, VIDEO_FRAMES, seed=base + 1)[0]
            parts.append(videos.flatten(0, 1)[:n_frames_total])
        yield to_model_range(torch.cat(parts))
        step += 1


def vae_loss(vae: Any, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Reconstruction (L1 + L2, per pixel) of a posterior sample plus the weighted KL."""
    posterior = vae.encode(batch).latent_dist
    latents = posterior.sample(generator=generator)
    reconstruction = vae.decode(latents).sample
    error = reconstruction - batch
    kl = posterior.kl().mean() / latents[0].numel()
    return L1_WEIGHT * error.abs().mean() + L2_WEIGHT * error.pow(2).mean() + KL_WEIGHT * kl


def train_vae(
    vae: Any,
    *,
    steps: int,
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
    learning_rate: float = LEARNING_RATE,
    progress: Progress | None = print,
) -> list[float]:
    """Train ``vae`` in place for ``steps`` batches; returns the loss of every step.

    Adam with a short warm-up and a cosine decay to a tenth of the rate (the toy world's
    shared schedule): the decay is what buys the last decibels of PSNR in a short run.
    """
    steps = check_steps(steps, DEFAULT_STEPS)
    vae.train()
    vae.requires_grad_(True)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=learning_rate, weight_decay=0.0)
    reporter = StepProgress("vae", steps, progress) if progress else None
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    batches = training_batches(batch_size, seed)
    for step in range(steps):
        for group in optimiser.param_groups:
            group["lr"] = schedule(step, steps, learning_rate)
        loss = vae_loss(vae, next(batches), generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
        if reporter:
            reporter.update(step, losses[-1])
    vae.eval()
    return losses


@torch.no_grad()
def encode_latents(
    vae: Any, images: torch.Tensor, *, sample: bool, seed: int = 0, batch_size: int = 256
) -> torch.Tensor:
    """Unscaled latents of [0, 1] images: posterior samples (``sample``) or means."""
    generator = torch.Generator().manual_seed(seed)
    pieces = []
    for chunk in images.split(batch_size):
        posterior = vae.encode(to_model_range(chunk)).latent_dist
        pieces.append(posterior.sample(generator=generator) if sample else posterior.mean)
    return torch.cat(pieces)


def measure_scaling_factor(vae: Any, images: torch.Tensor) -> float:
    """1 / std of posterior samples over ``images``: what makes the latents unit-variance.

    Samples, not means, because that is what the diffusion model is trained on.
    """
    latents = encode_latents(vae, images, sample=True, seed=SCALE_SEED)
    return float(1.0 / latents.float().std())


@torch.no_grad()
def reconstruction_psnr(vae: Any, images: torch.Tensor, batch_size: int = 256) -> float:
    """PSNR (dB, peak 1) of reconstructing [0, 1] images through the posterior means.

    The mean is the deterministic path a decoder of diffusion samples is judged on.
    """
    errors = []
    for chunk in images.split(batch_size):
        latents = vae.encode(to_model_range(chunk)).latent_dist.mean
        decoded = (vae.decode(latents).sample / 2 + 0.5).clamp(0.0, 1.0)
        errors.append((decoded - chunk).pow(2).flatten(1).mean(1))
    mse = torch.cat(errors).mean().item()
    return float(10 * math.log10(1.0 / max(mse, 1e-12)))


def held_out_images() -> torch.Tensor:
    """The toy world's evaluation images (1000, from seeds no training step draws)."""
    return evaluation_images()[0]


def save_vae(vae: Any, folder: Path) -> Path:
    """Write ``vae`` as a diffusers folder (config.json + safetensors), atomically."""
    return save_folder_atomic(lambda staging: vae.save_pretrained(staging, safe_serialization=True), Path(folder))


def load_vae(out: Path | str = WEIGHTS_DIR) -> Any:
    """The trained autoencoder under ``out`` (``t2i/vae``), frozen: what the text-to-image
    and image-to-video stages train on."""
    from diffusers import AutoencoderKL

    folder = Path(out) / SUBFOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"no vae at {folder}; run: python -m toyworld.train vae")
    return AutoencoderKL.from_pretrained(folder).eval().requires_grad_(False)


def train(
    out: Path | str = WEIGHTS_DIR, *, steps: int | None = None, seed: int = 0, progress: Progress = print
) -> dict[str, float]:
    """The ``vae`` stage: train, measure the latent scale, write ``out/t2i/vae/``."""
    steps = check_steps(steps, DEFAULT_STEPS)
    vae = build_vae(seed)
    start = time.perf_counter()
    losses = train_vae(vae, steps=steps, seed=seed, progress=progress)
    seconds = time.perf_counter() - start

    scale_images = sample_images(SCALE_COUNT, seed=SCALE_SEED)[0]
    scaling_factor = measure_scaling_factor(vae, scale_images)
    vae.register_to_config(scaling_factor=scaling_factor)
    psnr = reconstruction_psnr(vae, held_out_images())
    folder = save_vae(vae, Path(out) / SUBFOLDER)
    tail = losses[-min(50, len(losses)) :]
    figures = {
        "vae_train_seconds": seconds,
        "vae_steps": float(steps),
        "vae_final_loss": sum(tail) / len(tail),
        "vae_scaling_factor": scaling_factor,
        "vae_psnr_db": psnr,
        "vae_megabytes": folder_megabytes(folder),
    }
    progress(
        f"vae: {steps} steps in {seconds:.0f} s, held-out PSNR {psnr:.2f} dB, "
        f"scaling_factor {scaling_factor:.4f}, {figures['vae_megabytes']:.2f} MB -> {folder}"
    )
    return figures


def quality(out: Path | str = WEIGHTS_DIR, *, progress: Progress = print) -> dict[str, float]:
    """Held-out reconstruction PSNR of the shipped autoencoder and its scaled latents' std;
    with the judge trained, its zero-shot accuracy on the originals and on reconstructions
    (what a perfect diffusion model could at best reach through this decoder)."""
    vae = load_vae(out)
    images, labels = evaluation_images()
    psnr = reconstruction_psnr(vae, images)
    scaled = encode_latents(vae, images, sample=True, seed=SCALE_SEED) * vae.config.scaling_factor
    figures = {"vae_psnr_db": psnr, "vae_scaled_latent_std": float(scaled.std())}
    progress(
        f"vae: held-out PSNR {psnr:.2f} dB over {len(images)} images; "
        f"scaled latent std {figures['vae_scaled_latent_std']:.3f}"
    )
    try:
        judge = judge_module.load(Path(out))
    except FileNotFoundError:
        return figures
    with torch.no_grad():
        latents = encode_latents(vae, images, sample=False)
        decoded = torch.cat([vae.decode(part).sample for part in latents.split(256)])
    decoded = (decoded / 2 + 0.5).clamp(0.0, 1.0)
    texts = captions()
    for name, pictures in (("originals", images), ("reconstructions", decoded)):
        classes = judge_module.zero_shot_classes(judge, pictures, texts)
        figures[f"vae_judge_accuracy_{name}"] = float((classes == labels).float().mean())
    progress(
        f"vae: the judge classifies {figures['vae_judge_accuracy_originals']:.1%} of the "
        f"originals and {figures['vae_judge_accuracy_reconstructions']:.1%} of their "
        "reconstructions as their caption"
    )
    return figures


__all__ = [
    "SUBFOLDER",
    "VAE_CONFIG",
    "build_vae",
    "encode_latents",
    "load_vae",
    "measure_scaling_factor",
    "quality",
    "reconstruction_psnr",
    "save_vae",
    "train",
    "train_vae",
    "training_batches",
]
