"""What Stable Video Diffusion conditions on, shared by sampling and post-tuning.

The condition image (the video's first frame) enters twice: as a CLIP image embedding for
cross-attention, and as VAE latents (of the image with a little noise added, "noise
augmentation") concatenated to every frame's noisy latents. Three micro-conditions, fps - 1,
motion bucket and the noise-augmentation strength, are the added time ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CLIP_SIZE = 224


def check_image(image: object, name: str = "image") -> torch.Tensor:
    """A float ``(3, H, W)`` tensor in [0, 1] with H and W multiples of 8, or ValueError."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name}: got {type(image).__name__}; expected a torch.Tensor (3, H, W) in [0, 1]")
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"{name}: got shape {tuple(image.shape)}; expected (3, H, W)")
    if not image.is_floating_point():
        raise ValueError(f"{name}: got dtype {image.dtype}; expected floats in [0, 1]")
    height, width = image.shape[-2:]
    if height % 8 or width % 8 or height < 8 or width < 8:
        raise ValueError(
            f"{name}: got {height}x{width}; height and width must be positive multiples of 8 (the VAE downsamples by 8)"
        )
    if not bool(torch.isfinite(image).all()) or image.min() < 0 or image.max() > 1:
        raise ValueError(f"{name}: values must be finite and lie in [0, 1]")
    return image


def image_embeddings(image_encoder, feature_extractor, images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` in [0, 1] to CLIP image embeddings ``(B, 1, D)``."""
    ref = next(image_encoder.parameters())
    # The encoder's own input size: 224 for SVD's, smaller for toy encoders.
    size = int(getattr(image_encoder.config, "image_size", CLIP_SIZE))
    pixels = F.interpolate(
        images.to(torch.float32),
        size=(size, size),
        mode="bicubic",
        align_corners=False,
        antialias=True,
    ).clamp(0.0, 1.0)
    mean = torch.tensor(feature_extractor.image_mean, dtype=pixels.dtype, device=pixels.device)
    std = torch.tensor(feature_extractor.image_std, dtype=pixels.dtype, device=pixels.device)
    pixels = (pixels - mean[:, None, None]) / std[:, None, None]
    return image_encoder(pixels.to(device=ref.device, dtype=ref.dtype)).image_embeds[:, None, :]


def condition_latents(
    vae, images: torch.Tensor, noise_aug_strength: float, generator: torch.Generator | None
) -> torch.Tensor:
    """VAE latents (unscaled, as SVD uses them) of noise-augmented images ``(B, 3, H, W)``."""
    ref = next(vae.parameters())
    pixels = images.to(torch.float32) * 2.0 - 1.0
    noise = torch.randn(pixels.shape, generator=generator, dtype=pixels.dtype, device="cpu")
    pixels = pixels + noise_aug_strength * noise.to(pixels.device)
    return vae.encode(pixels.to(device=ref.device, dtype=ref.dtype)).latent_dist.mode()


def video_latents(vae, video: torch.Tensor, generator: torch.Generator | None, chunk: int = 8) -> torch.Tensor:
    """``(F, 3, H, W)`` in [0, 1] to scaled VAE latents ``(F, 4, H/8, W/8)``, a sample each."""
    ref = next(vae.parameters())
    out = []
    for start in range(0, video.shape[0], chunk):
        pixels = video[start : start + chunk].to(device=ref.device, dtype=ref.dtype) * 2.0 - 1.0
        dist = vae.encode(pixels).latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator, dtype=torch.float32, device="cpu")
        out.append(dist.mean + dist.std * noise.to(device=dist.mean.device, dtype=dist.mean.dtype))
    return torch.cat(out) * vae.config.scaling_factor


def added_time_ids(
    fps: int, motion_bucket_id: int, noise_aug_strength: float, batch: int, dtype, device
) -> torch.Tensor:
    # SVD was trained on fps - 1.
    ids = torch.tensor([[fps - 1, motion_bucket_id, noise_aug_strength]], dtype=dtype, device=device)
    return ids.repeat(batch, 1)


def decode_latents(vae, latents: torch.Tensor, chunk: int) -> torch.Tensor:
    """Scaled latents ``(F, 4, h, w)`` to frames ``(F, 3, H, W)`` in [0, 1], ``chunk`` frames
    per decoder call: memory stays bounded however long the video."""
    dtype = next(vae.parameters()).dtype  # float32 where SVD's VAE is upcast
    out = []
    for start in range(0, latents.shape[0], chunk):
        part = latents[start : start + chunk].to(dtype) / vae.config.scaling_factor
        frames = vae.decode(part, num_frames=part.shape[0]).sample
        out.append(frames.float().cpu())
    return (torch.cat(out) / 2 + 0.5).clamp(0.0, 1.0)
