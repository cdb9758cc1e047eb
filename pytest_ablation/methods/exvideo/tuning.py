"""ExVideo post-tuning: SVD's denoising objective, only the temporal transformers train.

    extend_unet(components.unet, max_frames=128)
    clips = moving_shapes(8, 128, 256, 256, generator=torch.Generator().manual_seed(0))
    result = post_tune(components.unet, clips, steps=100, components=components, lr=1e-5)

Trained: every parameter of every temporal transformer *block*, the positional MLP
(``time_pos_embed``) and the new parts (the trainable position table, the identity
convolution) -- what ExSVD's released file holds. Everything else (spatial layers,
temporal resnets, mixing factors, the image encoder and the VAE) is frozen, and checked
unchanged afterwards.

The objective is SVD's (EDM with v-scaling): ``sigma = exp(N(0.7, 1.6^2))``, input
``c_in * (x + sigma * n)`` with ``c_noise = log(sigma) / 4``, denoised
``c_skip * x_noisy + c_out * F``, loss weighted by ``(sigma^2 + 1) / sigma^2``.
"""

from __future__ import annotations

import contextlib

import math
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Mapping

import torch

from .conditioning import added_time_ids, condition_latents, image_embeddings, video_latents
from .positions import check_frames
from .temporal import NEW_PART_MODULES, exvideo_parameter_names, exvideo_part, exvideo_settings


@dataclass(frozen=True)
class TuningData:
    """Clips encoded once for post-tuning: the frozen encoders never see them again."""

    latents: torch.Tensor  # (N, F, 4, h, w), scaled
    embeddings: torch.Tensor  # (N, 1, D), CLIP image embedding of each clip's first frame
    conditions: torch.Tensor  # (N, 4, h, w), latents of the noise-augmented first frame
    noise_aug_strength: float

    @property
    def clips(self) -> int:
        return self.latents.shape[0]

    @property
    def frames(self) -> int:
        return self.latents.shape[1]


@dataclass(frozen=True)
class TuningResult:
    steps: int
    losses: tuple[float, ...]
    seconds: float
    frames_per_second: float  # video frames through forward and backward, per second
    trainable: tuple[str, ...]
    trainable_parameters: int
    frozen_parameters: int


def check_videos(videos: object) -> torch.Tensor:
    if not isinstance(videos, torch.Tensor):
        raise ValueError(f"videos: got {type(videos).__name__}; expected a tensor (N, F, 3, H, W) in [0, 1]")
    if videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"videos: got shape {tuple(videos.shape)}; expected (N, F, 3, H, W)")
    if videos.shape[0] < 1 or videos.shape[1] < 1:
        raise ValueError(f"videos: got shape {tuple(videos.shape)}; expected at least one clip of one frame")
    height, width = videos.shape[-2:]
    if height % 8 or width % 8:
        raise ValueError(f"videos: got {height}x{width} frames; height and width must be multiples of 8")
    if not videos.is_floating_point() or not bool(torch.isfinite(videos).all()) or videos.min() < 0 or videos.max() > 1:
        raise ValueError("videos: values must be finite floats in [0, 1]")
    return videos


@torch.no_grad()
def encode_videos(
    components: Any,
    videos: torch.Tensor,
    *,
    noise_aug_strength: float = 0.02,
    generator: torch.Generator | None = None,
) -> TuningData:
    """Latents, first-frame embeddings and condition latents of ``(N, F, 3, H, W)`` clips."""
    videos = check_videos(videos)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    latents, embeddings, conditions = [], [], []
    for clip in videos:
        latents.append(video_latents(components.vae, clip, generator))
        first = clip[:1]
        embeddings.append(image_embeddings(components.image_encoder, components.feature_extractor, first))
        conditions.append(condition_latents(components.vae, first, noise_aug_strength, generator))
    return TuningData(
        latents=torch.stack(latents),
        embeddings=torch.cat(embeddings),
        conditions=torch.cat(conditions),
        noise_aug_strength=float(noise_aug_strength),
    )


def denoising_loss(
    unet: torch.nn.Module,
    data: TuningData,
    index: torch.Tensor,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    *,
    fps: int = 7,
    motion_bucket_id: int = 127,
) -> torch.Tensor:
    """SVD's weighted denoising loss on clips ``index`` at noise levels ``sigma`` (B,)."""
    ref = next(unet.parameters())
    device, dtype = ref.device, ref.dtype
    x0 = data.latents[index].to(device=device, dtype=dtype)
    batch, frames = x0.shape[:2]
    s = sigma.to(device=device, dtype=torch.float32).view(batch, 1, 1, 1, 1)
    noisy = x0 + (s * noise.to(device)).to(dtype)
    c_in = (s**2 + 1).rsqrt()
    c_skip = 1.0 / (s**2 + 1)
    c_out = -s * c_in
    c_noise = 0.25 * sigma.to(device=device, dtype=torch.float32).log()
    cond = data.conditions[index].to(device=device, dtype=dtype)[:, None].expand(batch, frames, *x0.shape[2:])
    model_in = torch.cat([(noisy * c_in).to(dtype), cond], dim=2)
    time_ids = added_time_ids(fps, motion_bucket_id, data.noise_aug_strength, batch, dtype, device)
    out = unet(
        model_in,
        c_noise.to(dtype),
        encoder_hidden_states=data.embeddings[index].to(device=device, dtype=dtype),
        added_time_ids=time_ids,
        return_dict=False,
    )[0]
    denoised = c_skip * noisy.float() + c_out * out.float()
    weight = (s**2 + 1) / s**2
    return (weight * (denoised - x0.float()) ** 2).mean()


def draw_noise(data: TuningData, index: torch.Tensor, generator: torch.Generator, p_mean: float, p_std: float):
    """Noise levels (log-normal, SVD's) and noise for clips ``index``, from ``generator``."""
    sigma = (p_mean + p_std * torch.randn(len(index), generator=generator)).exp()
    noise = torch.randn((len(index), *data.latents.shape[1:]), generator=generator)
    return sigma, noise


def _checksums(params: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    with torch.no_grad():
        return {n: (float(p.double().sum()), float(p.double().square().sum())) for n, p in params.items()}


def _part_rates(part_lr: Mapping[str, float] | None) -> dict[str, float]:
    if part_lr is None:
        return {}
    if not isinstance(part_lr, Mapping) or set(part_lr) - set(NEW_PART_MODULES):
        raise ValueError(
            f"part_lr: got {part_lr!r}; expected a mapping of "
            f"{' and/or '.join(repr(p) for p in NEW_PART_MODULES)} to a learning rate"
        )
    return {part: _number(rate, f"part_lr[{part!r}]", 0.0, strict=True) for part, rate in part_lr.items()}


def _parameter_groups(
    trainable: Mapping[str, torch.nn.Parameter], lr: float, part_rates: Mapping[str, float]
) -> list[dict[str, Any]]:
    """AdamW's parameter groups: one at ``lr``, and one per part given its own rate."""
    groups: dict[str | None, list[torch.nn.Parameter]] = {}
    for name, param in trainable.items():
        part = exvideo_part(name)
        groups.setdefault(part if part in part_rates else None, []).append(param)
    return [{"params": params, "lr": part_rates[part] if part is not None else lr} for part, params in groups.items()]


def _number(value: Any, name: str, minimum: float, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: got {value!r}; expected a finite number")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name}: got {value!r}; expected a number {'>' if strict else '>='} {minimum}")
    return float(value)


@contextlib.contextmanager
def deterministic_on(device: torch.device):
    """Post-tuning on a GPU gives the same weights on every run and worker: torch's
    deterministic algorithms (cuBLAS with the fixed workspace ``select_device`` sets, the
    deterministic index backward), and attention by the memory-efficient or math kernels,
    whose backward is deterministic there (flash attention's is not). Where torch has no
    deterministic kernel for an operation it warns rather than stops. Nothing changes on the
    CPU, whose kernels are deterministic at a fixed thread count."""
    if device.type != "cuda":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    was, was_warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
            yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn_only)


def post_tune(
    unet: torch.nn.Module,
    videos: torch.Tensor | TuningData,
    steps: int,
    *,
    components: Any,
    lr: float = 1e-5,
    part_lr: Mapping[str, float] | None = None,
    batch_size: int = 1,
    generator: torch.Generator | None = None,
    seed: int = 0,
    gradient_checkpointing: bool = False,
    fps: int = 7,
    motion_bucket_id: int = 127,
    noise_aug_strength: float = 0.02,
    p_mean: float = 0.7,
    p_std: float = 1.6,
    max_grad_norm: float | None = 1.0,
    callback: Callable[[int, float], None] | None = None,
) -> TuningResult:
    """Post-tune an extended UNet in place on ``videos`` ((N, F, 3, H, W) in [0, 1], or
    ``TuningData``) for ``steps`` AdamW steps; returns the losses and the throughput.

    ``components`` supplies the frozen ``vae``, ``image_encoder`` and ``feature_extractor``
    that encode the clips. All randomness (latent samples, clip order, noise levels, noise)
    comes from ``generator`` (default: seeded with ``seed``).

    ``part_lr`` gives a new part its own learning rate (``{"conv": 2.5e-4}``; parts:
    ``NEW_PART_MODULES``); every other post-tuned parameter trains at ``lr``. Adam moves a
    parameter by about its rate per step, so the identity convolution (entries 0 and 1) and
    the position table (entries up to about 0.6) can need different rates to move alike.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: got {steps!r}; expected an integer >= 0")
    lr = _number(lr, "lr", 0.0, strict=True)
    part_rates = _part_rates(part_lr)
    check_frames(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: got {seed!r}; expected an integer >= 0")
    if not isinstance(gradient_checkpointing, bool):
        # A string such as "no" would be truthy: turn checkpointing on when asked for off.
        raise ValueError(f"gradient_checkpointing: got {gradient_checkpointing!r}; expected True or False")
    settings = exvideo_settings(unet)  # refuses a UNet that extend_unet has not patched
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    data = (
        videos
        if isinstance(videos, TuningData)
        else encode_videos(components, videos, noise_aug_strength=noise_aug_strength, generator=generator)
    )
    if data.frames > settings.max_frames:
        raise ValueError(
            f"videos: clips of {data.frames} frames; this UNet was extended to max_frames={settings.max_frames}"
        )
    if batch_size > data.clips:
        raise ValueError(f"batch_size: got {batch_size}; only {data.clips} clip(s) to draw from")

    trainable_names = exvideo_parameter_names(unet)
    wanted = set(trainable_names)
    named = dict(unet.named_parameters())
    trainable = {n: p for n, p in named.items() if n in wanted}
    frozen = {n: p for n, p in named.items() if n not in wanted}
    flags = {n: p.requires_grad for n, p in named.items()}
    was_training = unet.training
    had_checkpointing = bool(
        getattr(unet, "gradient_checkpointing", False)
        or any(getattr(m, "gradient_checkpointing", False) for m in unet.modules())
    )
    before = _checksums(frozen)

    unet.requires_grad_(False)
    # Half-precision UNets train as ExVideo did: float32 master copies of the trained
    # parameters, the forward pass under autocast, and (float16) a loss scaler.
    ref = next(iter(frozen.values()), next(iter(trainable.values())))
    half = ref.dtype in (torch.float16, torch.bfloat16)
    stored_dtypes = {n: p.dtype for n, p in trainable.items()}
    for p in trainable.values():
        if half:
            p.data = p.data.float()
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(_parameter_groups(trainable, lr, part_rates), weight_decay=0.0)
    scaler = torch.amp.GradScaler(ref.device.type, enabled=ref.dtype == torch.float16)
    if gradient_checkpointing:
        unet.enable_gradient_checkpointing()  # type: ignore[operator]  # diffusers' method; torch types it a Tensor
    unet.train()
    losses: list[float] = []
    order: list[int] = []
    started = time.perf_counter()
    deterministic = deterministic_on(ref.device)
    deterministic.__enter__()
    try:
        for step in range(steps):
            if len(order) < batch_size:
                order.extend(torch.randperm(data.clips, generator=generator).tolist())
            index = torch.tensor(order[:batch_size])
            del order[:batch_size]
            sigma, noise = draw_noise(data, index, generator, p_mean, p_std)
            with torch.autocast(ref.device.type, dtype=ref.dtype, enabled=half):
                loss = denoising_loss(unet, data, index, sigma, noise, fps=fps, motion_bucket_id=motion_bucket_id)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"post_tune: the loss became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if max_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(list(trainable.values()), max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            if callback is not None:
                callback(step, losses[-1])
    finally:
        deterministic.__exit__(None, None, None)
        seconds = time.perf_counter() - started
        optimizer.zero_grad(set_to_none=True)
        if gradient_checkpointing and not had_checkpointing:
            unet.disable_gradient_checkpointing()  # type: ignore[operator]  # diffusers' method; torch types it a Tensor
        unet.train(was_training)
        for name, param in trainable.items():
            param.data = param.data.to(stored_dtypes[name])
        for name, param in named.items():
            param.requires_grad_(flags[name])

    changed = sorted(n for n, sums in _checksums(frozen).items() if sums != before[n])
    if changed:
        raise RuntimeError(f"post_tune: frozen parameters changed: {', '.join(changed[:20])}")
    return TuningResult(
        steps=steps,
        losses=tuple(losses),
        seconds=seconds,
        frames_per_second=(steps * batch_size * data.frames / seconds) if seconds > 0 and steps else 0.0,
        trainable=tuple(trainable_names),
        trainable_parameters=sum(p.numel() for p in trainable.values()),
        frozen_parameters=sum(p.numel() for p in frozen.values()),
    )
