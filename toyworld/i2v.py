"""The toy world's image-to-video model: Stable Video Diffusion at 32x32, 8 frames.

The parts and conventions are SVD's (img2vid-xt), so ``load_stable_video_diffusion``,
``ExVideoSampler``, ``extend_unet`` and ``post_tune`` use it as they use the real model:

- ``unet``: a diffusers ``UNetSpatioTemporalConditionModel`` with two levels (8x8 and 4x4
  latents, see ``UNET_CONFIG``) and spatio-temporal transformers at both levels and in the
  mid block, so every level has a temporal transformer for ExVideo to extend;
- conditioning: the CLIP image embedding of the first frame is the cross-attention context,
  the VAE latents (unscaled, a little pixel noise added) of the first frame are concatenated
  to every frame's noisy latents (8 input channels), and fps - 1, a motion bucket and the
  noise-augmentation strength are the added time ids;
- objective: EDM with SVD's v-scaling, exactly the preconditioning the Euler scheduler
  (``v_prediction``, continuous timesteps ``log(sigma) / 4``) undoes at sampling time;
- ``vae``: an ``AutoencoderKLTemporalDecoder`` that computes what the text-to-image
  autoencoder (``t2i/vae``) computes, frame by frame: its weights copied, the temporal
  layers set to the identity (see ``build_temporal_vae``); it is not trained further.

Trained on 8-frame clips of one shape bouncing off the frame's edges (``data.sample_videos``
with ``motion="bounce"``): a shape keeps its size and speed however long the clip, so a
32-frame video extended by ExVideo continues the motion the model learnt, and what differs
past frame 8 is the positions the studies ablate. The motion bucket carries the clip's
speed (127 = one pixel per frame, SVD's default bucket), fps is drawn at random so that any
fps a study asks for is one the model has seen.

    python -m toyworld.train i2v     # writes weights/i2v/
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pytest_ablation.models.tiny import seeded_init_, tiny_config
from pytest_ablation.toyworld import WEIGHTS_DIR
from pytest_ablation.toyworld.data import COLOURS, IMAGE_SIZE, SHAPES, captions, sample_videos
from toyworld import judge as judge_module
from toyworld.training import (
    EVALUATION_SEED,
    Progress,
    check_steps,
    folder_megabytes,
    save_folder_atomic,
    training_seed,
)
from toyworld.vae import load_vae, to_model_range

SUBFOLDER = Path("i2v")

# The clip length the UNet is trained on; the ExVideo studies extend it past this.
FRAMES = 8
# Bouncing, not straight-line, motion: a straight path must shrink or slow its shape to
# fit a long clip, so speed and size would depend on the clip length.
MOTION = "bounce"

UNET_CONFIG: dict[str, Any] = {
    "sample_size": IMAGE_SIZE // 4,  # the autoencoder downsamples by 4: 8x8 latents
    "in_channels": 8,  # noisy latents + condition-image latents
    "out_channels": 4,
    # Attention at both levels: a temporal transformer wherever ExVideo can patch one, and
    # spatial cross-attention to the image embedding at the 8x8 level, where shapes live.
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal"],
    "up_block_types": ["CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
    "block_out_channels": [32, 64],
    "addition_time_embed_dim": 32,
    "projection_class_embeddings_input_dim": 3 * 32,  # fps, motion bucket, noise aug
    "layers_per_block": 1,
    "cross_attention_dim": 64,  # the image encoder's projection_dim
    "transformer_layers_per_block": 1,
    "num_attention_heads": [2, 4],
    "num_frames": FRAMES,
}

# img2vid-xt's scheduler (the tiny Stable Video Diffusion's, ``pytest_ablation.models.tiny``),
# with sigma_max cut from 700 to EDM's 80: the latents have unit variance at 8x8, so sigma 80
# already buries them entirely, and the steps SVD spends above that are wasted at this size.
SCHEDULER_CONFIG: dict[str, Any] = {
    **tiny_config("tiny-stable-video-diffusion")["scheduler"],
    "sigma_max": 80.0,
}

MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableVideoDiffusionPipeline",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
    "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
}


@dataclass(frozen=True)
class Recipe:
    """How the UNet is trained."""

    steps: int = 1500
    batch_size: int = 8
    lr: float = 5e-4
    warmup: int = 50
    # log(sigma) ~ N(p_mean, p_std^2), SVD's log-normal moved down: 8x8 latents are
    # resolved at lower noise than SVD's 72x128; a share drawn log-uniformly over the
    # scheduler's whole range covers the high noise levels every sample starts from.
    p_mean: float = -0.4
    p_std: float = 1.4
    uniform_share: float = 0.15
    # Both conditions zeroed together, as ExVideoSampler's unconditional branch does.
    condition_dropout: float = 0.1
    noise_aug_strength: float = 0.02  # ExVideoSampler's and post_tune's default
    fps_range: tuple[int, int] = (1, 30)
    ema_decay: float = 0.995
    pool_clips: int = 1024
    max_grad_norm: float = 1.0


RECIPE = Recipe()

# Held-out clips come from seeds above every training seed (see ``training.training_seed``).
HELD_OUT_SEED = EVALUATION_SEED + 2
QUALITY_VIDEOS = 12
QUALITY_STEPS = 15
QUALITY_GUIDANCE = 3.0  # ExVideoSampler's default; 1.0 and 2.0 kept the condition less well
LONG_FRAMES = 32


# -- building -------------------------------------------------------------------------------
def build_unet(seed: int = 0) -> Any:
    """A freshly initialised UNet with ``UNET_CONFIG``, the same weights for the same seed."""
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.random.fork_rng(devices=[]):  # constructors draw from the global generator
        unet = UNetSpatioTemporalConditionModel(**UNET_CONFIG)
    return seeded_init_(unet, seed, "toyworld/i2v/unet")


def build_scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**SCHEDULER_CONFIG)


def motion_bucket(speed: float) -> int:
    """SVD's motion bucket for a clip moving ``speed`` pixels per frame: 127 per pixel."""
    return int(min(255, max(0, round(127 * speed))))


def _zero_(module: torch.nn.Module) -> None:
    """Zero a layer, so that a residual branch ending in it adds nothing."""
    with torch.no_grad():
        for param in module.parameters():
            param.zero_()


def _resnet_target(name: str) -> str:
    """A decoder resnet's name in the spatial autoencoder -> its spatial half in SVD's
    temporal decoder: ``decoder.<block>.resnets.<i>.<p>`` -> ``...resnets.<i>.spatial_res_block.<p>``."""
    head, tail = name.split("resnets.", 1)
    index, rest = tail.split(".", 1)
    return f"{head}resnets.{index}.spatial_res_block.{rest}"


@torch.no_grad()
def build_temporal_vae(spatial: Any) -> Any:
    """An ``AutoencoderKLTemporalDecoder`` that computes what the image autoencoder
    ``spatial`` (a diffusers ``AutoencoderKL``) computes, frame by frame.

    SVD's autoencoder ties its layout to ``layers_per_block``: its decoder mid block holds
    ``layers_per_block`` resnets (the image decoder's holds two) and always an attention.
    Built with one layer per block more than ``spatial``, it has a place for every layer of
    ``spatial``; each extra layer is a residual block whose last layer is zeroed, i.e. the
    identity (extra resnets, the mid-block attentions, every temporal resnet), and the
    output's temporal convolution is the identity. The encoder is therefore exact: same
    latents, same scaling factor. The decoder has no ``post_quant_conv``; folded into
    ``conv_in`` it is exact inside the latent grid and off by its bias only where
    ``conv_in``'s zero padding meets the border (a few thousandths of the pixel range on
    average for the shipped autoencoder, well under its reconstruction error).
    """
    from diffusers import AutoencoderKLTemporalDecoder

    config = spatial.config
    if config.norm_num_groups != 32:
        raise ValueError(
            f"t2i/vae: norm_num_groups is {config.norm_num_groups}; SVD's temporal decoder hard-codes 32 groups"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = AutoencoderKLTemporalDecoder(
            in_channels=config.in_channels,
            out_channels=config.out_channels,
            down_block_types=tuple(config.down_block_types),
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block + 1,
            latent_channels=config.latent_channels,
            sample_size=config.sample_size,
            scaling_factor=config.scaling_factor,
            force_upcast=False,
        )
    source = spatial.state_dict()
    target = vae.state_dict()
    copied: dict[str, torch.Tensor] = {}
    for name, value in source.items():
        mapped = _resnet_target(name) if name.startswith("decoder.") and "resnets." in name else name
        if mapped in target:
            copied[mapped] = value
    if getattr(config, "use_post_quant_conv", True):
        # post_quant_conv (1x1) then conv_in (3x3) is one 3x3 convolution, but at the border,
        # where conv_in's zero padding used to see post_quant_conv's bias and now sees zeros.
        weight = source["post_quant_conv.weight"][:, :, 0, 0]
        bias = source["post_quant_conv.bias"]
        conv_in = source["decoder.conv_in.weight"]
        copied["decoder.conv_in.weight"] = torch.einsum("oikl,ij->ojkl", conv_in, weight)
        copied["decoder.conv_in.bias"] = source["decoder.conv_in.bias"] + torch.einsum("oikl,i->o", conv_in, bias)
    unexpected = sorted(
        n
        for n in source
        if not n.startswith("post_quant_conv.")
        and (_resnet_target(n) if n.startswith("decoder.") and "resnets." in n else n) not in target
    )
    if unexpected:
        raise ValueError(f"t2i/vae: parameters with no place in SVD's autoencoder: {unexpected[:10]}")
    vae.load_state_dict({**target, **copied})

    # Everything not copied is new, and starts as the identity.
    fresh = {n for n in target if n not in copied}
    for prefix, module in vae.named_modules():
        kind = type(module).__name__
        owns_fresh = any(n.startswith(prefix + ".") for n in fresh)
        if not owns_fresh:
            continue
        if kind in ("ResnetBlock2D", "TemporalResnetBlock"):
            if getattr(module, "conv_shortcut", None) is not None:
                raise ValueError(f"{prefix}: a new resnet that changes channels cannot start as the identity")
            _zero_(module.conv2)
        elif kind == "Attention":
            _zero_(module.to_out[0])
    conv = vae.decoder.time_conv_out
    conv.weight.zero_()
    conv.bias.zero_()
    conv.weight[:, :, 1, 0, 0] = torch.eye(conv.weight.shape[0])
    return vae.eval().requires_grad_(False)


def load_image_encoder(out: Path) -> tuple[Any, Any]:
    """The image encoder and its processor the ``text`` stage wrote into ``out/i2v``."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    folder = Path(out) / SUBFOLDER
    encoder = CLIPVisionModelWithProjection.from_pretrained(folder / "image_encoder")
    processor = CLIPImageProcessor.from_pretrained(folder / "feature_extractor")
    return encoder.eval().requires_grad_(False), processor


# -- data -----------------------------------------------------------------------------------
def image_embeddings(image_encoder: Any, feature_extractor: Any, images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] to CLIP image embeddings (B, 1, D), as ExVideo's
    ``conditioning.image_embeddings`` computes them, but at the encoder's own input size.

    ExVideo resizes to 224 px, the released SVD encoder's size; the toy encoder reads
    32 px images and refuses any other size. Where the two sizes agree this is the same
    computation (resampling, clamping, the processor's mean and std), so the embeddings the
    UNet is trained on are the ones ExVideo feeds it once it reads the encoder's size.
    """
    import torch.nn.functional as F

    size = int(image_encoder.config.image_size)
    pixels = F.interpolate(
        images.to(torch.float32), size=(size, size), mode="bicubic", align_corners=False, antialias=True
    ).clamp(0.0, 1.0)
    mean = torch.tensor(feature_extractor.image_mean, dtype=pixels.dtype)[:, None, None]
    std = torch.tensor(feature_extractor.image_std, dtype=pixels.dtype)[:, None, None]
    return image_encoder((pixels - mean) / std).image_embeds[:, None, :]


@dataclass(frozen=True)
class Pool:
    """Training clips encoded once by the frozen encoders; each use draws fresh latents.

    Encoding costs about a third of a training step, so clips are encoded once and each
    visit draws a new posterior sample (and new noise): the UNet still never sees the same
    latents twice.
    """

    means: torch.Tensor  # (N, F, 4, h, w) posterior means, unscaled
    stds: torch.Tensor  # (N, F, 4, h, w) posterior standard deviations
    conditions: torch.Tensor  # (N, 4, h, w) unscaled latents of the noise-augmented first frame
    embeddings: torch.Tensor  # (N, 1, D) CLIP image embedding of the first frame
    speeds: torch.Tensor  # (N,) pixels per frame
    scaling_factor: float
    noise_aug_strength: float

    def __len__(self) -> int:
        return self.means.shape[0]


@dataclass(frozen=True)
class Batch:
    """What the UNet sees for a batch of clips."""

    latents: torch.Tensor  # (B, F, 4, h, w), scaled posterior samples
    conditions: torch.Tensor  # (B, 4, h, w), unscaled latents of the noise-augmented first frame
    embeddings: torch.Tensor  # (B, 1, D), CLIP image embedding of the first frame
    time_ids: torch.Tensor  # (B, 3): fps - 1, motion bucket, noise-augmentation strength


@torch.no_grad()
def encode_pool(
    components: Any,
    count: int,
    *,
    seed: int,
    noise_aug_strength: float,
    generator: torch.Generator,
    chunk: int = 32,
) -> Pool:
    """``count`` fresh 8-frame clips encoded as ``ExVideoSampler`` and ``post_tune`` encode
    a condition image (``condition_latents``, ``image_embeddings``), ``chunk`` clips per pass."""
    from pytest_ablation.methods.exvideo.conditioning import condition_latents

    vae = components.vae
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("means", "stds", "conditions", "embeddings", "speeds")}
    for number, start in enumerate(range(0, count, chunk)):
        size = min(chunk, count - start)
        videos, _, scenes = sample_videos(size, FRAMES, seed=training_seed(seed, number), motion=MOTION)
        posterior = vae.encode(to_model_range(videos.flatten(0, 1))).latent_dist
        shape = (size, FRAMES, *posterior.mean.shape[1:])
        first = videos[:, 0]
        parts["means"].append(posterior.mean.reshape(shape))
        parts["stds"].append(posterior.std.reshape(shape))
        parts["conditions"].append(condition_latents(vae, first, noise_aug_strength, generator))
        parts["embeddings"].append(image_embeddings(components.image_encoder, components.feature_extractor, first))
        parts["speeds"].append(torch.tensor([video[0].speed for video in scenes], dtype=torch.float32))
    return Pool(
        **{k: torch.cat(v) for k, v in parts.items()},
        scaling_factor=float(vae.config.scaling_factor),
        noise_aug_strength=float(noise_aug_strength),
    )


def draw_batch(pool: Pool, index: torch.Tensor, fps: list[int], generator: torch.Generator) -> Batch:
    """Clips ``index`` of the pool, with a fresh posterior sample of their latents."""
    noise = torch.randn(pool.means[index].shape, generator=generator)
    latents = (pool.means[index] + pool.stds[index] * noise) * pool.scaling_factor
    time_ids = torch.tensor(
        [
            [f - 1, motion_bucket(float(s)), pool.noise_aug_strength]
            for f, s in zip(fps, pool.speeds[index], strict=True)
        ],
        dtype=torch.float32,
    )
    return Batch(
        latents=latents, conditions=pool.conditions[index], embeddings=pool.embeddings[index], time_ids=time_ids
    )


# -- the objective --------------------------------------------------------------------------
def draw_sigmas(count: int, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """Noise levels: log-normal, a share of them log-uniform over the scheduler's range."""
    normal = (recipe.p_mean + recipe.p_std * torch.randn(count, generator=generator)).exp()
    low, high = math.log(SCHEDULER_CONFIG["sigma_min"]), math.log(SCHEDULER_CONFIG["sigma_max"])
    uniform = (low + (high - low) * torch.rand(count, generator=generator)).exp()
    pick = torch.rand(count, generator=generator) < recipe.uniform_share
    return torch.where(pick, uniform, normal)


def denoising_loss(
    unet: torch.nn.Module, batch: Batch, sigma: torch.Tensor, noise: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """SVD's weighted denoising loss, per-clip time ids and conditions (``keep`` (B,) bool:
    False zeroes both conditions of a clip, the sampler's unconditional branch).

    The preconditioning is the one ``EulerDiscreteScheduler`` (v-prediction, continuous
    timesteps) inverts: input ``c_in * (x + sigma n)`` with ``c_in = 1 / sqrt(sigma^2 + 1)``,
    timestep ``log(sigma) / 4``, denoised ``x_noisy / (sigma^2 + 1) - sigma c_in * F``; the
    weight ``(sigma^2 + 1) / sigma^2`` makes it a plain MSE on the v target.
    """
    x0 = batch.latents
    size = x0.shape[0]
    s = sigma.view(size, 1, 1, 1, 1)
    noisy = x0 + s * noise
    c_in = (s**2 + 1).rsqrt()
    c_skip = 1.0 / (s**2 + 1)
    c_out = -s * c_in
    mask = keep.to(x0.dtype)
    cond = (batch.conditions * mask.view(size, 1, 1, 1))[:, None].expand(-1, x0.shape[1], -1, -1, -1)
    context = batch.embeddings * mask.view(size, 1, 1)
    out = unet(
        torch.cat([noisy * c_in, cond], dim=2),
        0.25 * sigma.log(),
        encoder_hidden_states=context,
        added_time_ids=batch.time_ids,
        return_dict=False,
    )[0]
    denoised = c_skip * noisy + c_out * out
    weight = (s**2 + 1) / s**2
    return (weight * (denoised - x0) ** 2).mean()


# -- training -------------------------------------------------------------------------------
def _rate(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then a cosine decay to a tenth of the rate."""
    if step < warmup:
        return (step + 1) / warmup
    share = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * share))


@dataclass
class TrainingResult:
    losses: list[float]
    seconds: float
    trainable: int


def train_unet(
    unet: torch.nn.Module,
    components: Any,
    *,
    steps: int,
    seed: int = 0,
    recipe: Recipe = RECIPE,
    progress: Progress = print,
    log_every: int = 100,
) -> TrainingResult:
    """Train ``unet`` in place on fresh clips; the encoders in ``components`` stay frozen.

    The UNet ends with the exponential moving average of its weights (decay
    ``recipe.ema_decay``, warmed up over the first steps), which samples cleaner than the
    last iterate of a short run.
    """
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    # A short run needs no more clips than it can visit.
    clips = min(recipe.pool_clips, steps * recipe.batch_size)
    pool = encode_pool(
        components,
        clips,
        seed=seed,
        noise_aug_strength=recipe.noise_aug_strength,
        generator=generator,
    )
    progress(f"i2v: encoded {len(pool)} training clips in {time.perf_counter() - started:.0f} s")
    unet.requires_grad_(True)
    unet.train()
    params = list(unet.parameters())
    ema = [p.detach().clone() for p in params]
    optimiser = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=0.0)
    warmup = max(1, min(recipe.warmup, steps // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: _rate(k, steps, warmup))
    low, high = recipe.fps_range
    losses: list[float] = []
    order: list[int] = []
    for step in range(steps):
        if len(order) < recipe.batch_size:
            order.extend(torch.randperm(len(pool), generator=generator).tolist())
        index = torch.tensor(order[: recipe.batch_size])
        del order[: recipe.batch_size]
        fps = torch.randint(low, high + 1, (len(index),), generator=generator).tolist()
        batch = draw_batch(pool, index, fps, generator)
        sigma = draw_sigmas(len(index), recipe, generator)
        noise = torch.randn(batch.latents.shape, generator=generator)
        keep = torch.rand(len(index), generator=generator) >= recipe.condition_dropout
        loss = denoising_loss(unet, batch, sigma, noise, keep)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"i2v: the loss became {loss.item()} at step {step}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
        optimiser.step()
        schedule.step()
        decay = min(recipe.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for average, param in zip(ema, params, strict=True):
                average.lerp_(param.detach(), 1 - decay)
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            progress(
                f"i2v step {step + 1}/{steps}: loss {sum(recent) / len(recent):.4f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    seconds = time.perf_counter() - started
    with torch.no_grad():
        for average, param in zip(ema, params, strict=True):
            param.copy_(average)
    unet.eval().requires_grad_(False)
    return TrainingResult(losses=losses, seconds=seconds, trainable=sum(p.numel() for p in params))


# -- writing --------------------------------------------------------------------------------
def save_pipeline(folder: Path, unet: Any, vae: Any) -> None:
    """Write UNet, VAE, scheduler and model_index beside the image encoder in ``folder``.

    Each component folder is swapped in whole, so a reader never sees half of one.
    """
    import diffusers

    from pytest_ablation.files import write_json_atomic

    folder = Path(folder)
    for name, model in (("unet", unet), ("vae", vae)):
        # Stored in float16 to halve the shipped size; loaders upcast to the dtype they ask for.
        half = copy.deepcopy(model).to(torch.float16)
        save_folder_atomic(lambda d, m=half: m.save_pretrained(d, safe_serialization=True), folder / name)
    save_folder_atomic(lambda d: build_scheduler().save_pretrained(d), folder / "scheduler")
    write_json_atomic(folder / "model_index.json", {**MODEL_INDEX, "_diffusers_version": diffusers.__version__})


@dataclass
class Encoders:
    """The frozen SVD components that encode training clips, under the names
    ``StableVideoDiffusionComponents`` gives them (what ExVideo's helpers read)."""

    image_encoder: Any
    feature_extractor: Any
    vae: Any


def train(
    out: Path | str = WEIGHTS_DIR,
    *,
    steps: int | None = None,
    seed: int = 0,
    progress: Progress = print,
    recipe: Recipe = RECIPE,
) -> dict[str, float]:
    """The ``i2v`` stage: SVD's autoencoder from the image one, then the UNet; writes
    ``out/i2v/``.

    Reads ``out/i2v/image_encoder``, ``out/i2v/feature_extractor`` (the ``text`` stage) and
    ``out/t2i/vae`` (the ``vae`` stage). ``steps`` overrides ``recipe.steps``.
    """
    out = Path(out)
    steps = check_steps(steps, recipe.steps)
    image_encoder, feature_extractor = load_image_encoder(out)
    vae = build_temporal_vae(load_vae(out))

    parts = Encoders(image_encoder=image_encoder, feature_extractor=feature_extractor, vae=vae)
    unet = build_unet(seed)
    result = train_unet(unet, parts, steps=steps, seed=seed, recipe=recipe, progress=progress)
    folder = out / SUBFOLDER
    save_pipeline(folder, unet, vae)
    tail = result.losses[-min(100, len(result.losses)) :]
    figures = {
        "i2v_steps": float(steps),
        "i2v_train_seconds": result.seconds,
        "i2v_first_loss": result.losses[0],
        "i2v_final_loss": sum(tail) / len(tail),
        "i2v_unet_parameters": float(result.trainable),
        "i2v_unet_megabytes": folder_megabytes(folder / "unet"),
        "i2v_vae_megabytes": folder_megabytes(folder / "vae"),
        "i2v_megabytes": folder_megabytes(folder),
    }
    progress(
        f"i2v: {steps} steps in {result.seconds:.0f} s (clip encoding included), "
        f"loss {figures['i2v_first_loss']:.3f} -> {figures['i2v_final_loss']:.3f}, "
        f"{figures['i2v_megabytes']:.2f} MB -> {folder}"
    )
    return figures


# -- quality --------------------------------------------------------------------------------
def load_components(out: Path | str = WEIGHTS_DIR, device: str = "cpu") -> Any:
    """The shipped model through the project's own loader, as a profile would load it."""
    from pytest_ablation.models.pretrained import load_stable_video_diffusion

    return load_stable_video_diffusion(str(Path(out) / SUBFOLDER), {}, device)


def held_out_clips(count: int = QUALITY_VIDEOS, frames: int = FRAMES) -> tuple[torch.Tensor, list]:
    videos, _, scenes = sample_videos(count, frames, seed=HELD_OUT_SEED, motion=MOTION)
    return videos, scenes


def kept_identity(judge: Any, frames: torch.Tensor, scenes: list) -> tuple[float, float]:
    """Shares of ``frames`` (N, 3, H, W) whose judge zero-shot caption (over all of
    ``captions()``) has the colour, and the shape, of the scene each came from."""
    from pytest_ablation.metrics.clip_model import cosine

    texts = captions()  # colour-major: index = colour * len(SHAPES) + shape
    best = cosine(judge.encode_images(frames)[:, None], judge.text_features(texts)[None]).argmax(dim=1)
    colours, shapes = list(COLOURS), list(SHAPES)
    colour_kept = [colours[int(k) // len(shapes)] == s[0].colour for k, s in zip(best, scenes, strict=True)]
    shape_kept = [shapes[int(k) % len(shapes)] == s[0].shape for k, s in zip(best, scenes, strict=True)]
    return sum(colour_kept) / len(scenes), sum(shape_kept) / len(scenes)


def sample_videos_from(
    sampler: Any,
    images: torch.Tensor,
    frames: int,
    *,
    seed: int = 0,
    steps: int = QUALITY_STEPS,
    guidance: float = QUALITY_GUIDANCE,
) -> list[torch.Tensor]:
    return [
        sampler(image, frames=frames, steps=steps, guidance_scale=guidance, seed=seed + i).video
        for i, image in enumerate(images)
    ]


def scene_figures(videos: list[torch.Tensor] | torch.Tensor) -> dict[str, float]:
    """The scene parser's view of videos: identity constancy (the shape kept, 1 = the
    first frame's colour, shape and size throughout) and trajectory jerk (0 = the centroid
    moves at a steady velocity; a bounce adds its one reversal)."""
    from pytest_ablation.toyworld.scene_metrics import identity_constancy, trajectory_jerk

    count = len(videos)
    return {
        "identity_constancy": sum(identity_constancy(v) for v in videos) / count,
        "trajectory_jerk": sum(trajectory_jerk(v) for v in videos) / count,
    }


def video_figures(videos: list[torch.Tensor], images: torch.Tensor, scenes: list, judge: Any) -> dict[str, float]:
    """Dynamic degree, condition consistency (own vs another clip's condition image),
    whether the last frame still shows the condition's colour and shape (judge zero-shot),
    and the scene parser's figures."""
    from pytest_ablation.metrics import condition_consistency, dynamic_degree

    count = len(videos)
    dynamic = [dynamic_degree(v) for v in videos]
    own = [condition_consistency(v, images[i], judge) for i, v in enumerate(videos)]
    # Another clip's condition image: the pairing a video ignoring its condition would score.
    other = [condition_consistency(v, images[(i + 1) % count], judge) for i, v in enumerate(videos)]
    colour_kept, shape_kept = kept_identity(judge, torch.stack([v[-1] for v in videos]), scenes)
    return {
        "dynamic_degree": sum(dynamic) / count,
        "condition_consistency": sum(own) / count,
        "condition_consistency_random_pair": sum(other) / count,
        "last_frame_colour_kept": colour_kept,
        "last_frame_shape_kept": shape_kept,
        **scene_figures(videos),
    }


def quality(
    out: Path | str = WEIGHTS_DIR,
    *,
    progress: Progress = print,
    steps: int = QUALITY_STEPS,
    guidance: float = QUALITY_GUIDANCE,
) -> dict[str, float]:
    """Samples from held-out condition images, at the trained length and at 32 frames
    (``extend_unet``, not post-tuned), against a still video and real clips."""
    from pytest_ablation.methods.exvideo import ExVideoSampler, extend_unet
    from pytest_ablation.metrics import condition_consistency, dynamic_degree

    out = Path(out)
    components = load_components(out)
    judge = judge_module.load(out)
    clips, scenes = held_out_clips()
    images = clips[:, 0]
    figures: dict[str, float] = {}

    real = [dynamic_degree(c) for c in clips]
    still = [dynamic_degree(image[None].expand(FRAMES, -1, -1, -1)) for image in images]
    real_cc = [condition_consistency(c, images[i], judge) for i, c in enumerate(clips)]
    figures["real_dynamic_degree"] = sum(real) / len(real)
    figures["still_dynamic_degree"] = sum(still) / len(still)
    figures["real_condition_consistency"] = sum(real_cc) / len(real_cc)
    # The judge's own ceiling: how often it names the real last frame's colour and shape.
    colour_kept, shape_kept = kept_identity(judge, clips[:, -1], scenes)
    figures["real_last_frame_colour_kept"] = colour_kept
    figures["real_last_frame_shape_kept"] = shape_kept
    for name, value in scene_figures(clips).items():
        figures[f"real_{name}"] = value
    long_clips, _ = held_out_clips(frames=LONG_FRAMES)
    for name, value in scene_figures(long_clips).items():
        figures[f"real_long_{name}"] = value

    started = time.perf_counter()
    short = sample_videos_from(ExVideoSampler(components), images, FRAMES, steps=steps, guidance=guidance)
    figures["sample_seconds_per_video"] = (time.perf_counter() - started) / len(short)
    for name, value in video_figures(short, images, scenes, judge).items():
        figures[f"trained_{name}"] = value

    long_unet = extend_unet(copy.deepcopy(components.unet), max_frames=LONG_FRAMES)
    started = time.perf_counter()
    long = sample_videos_from(
        ExVideoSampler(components, unet=long_unet), images, LONG_FRAMES, steps=steps, guidance=guidance
    )
    figures["long_sample_seconds_per_video"] = (time.perf_counter() - started) / len(long)
    for name, value in video_figures(long, images, scenes, judge).items():
        figures[f"long_{name}"] = value

    progress(
        f"i2v quality ({len(images)} held-out condition images, {steps} steps, guidance {guidance}):\n"
        + "\n".join(f"  {name}: {value:.4f}" for name, value in figures.items())
    )
    return figures


__all__ = [
    "Encoders",
    "FRAMES",
    "MOTION",
    "RECIPE",
    "Recipe",
    "SCHEDULER_CONFIG",
    "SUBFOLDER",
    "UNET_CONFIG",
    "build_scheduler",
    "build_temporal_vae",
    "build_unet",
    "denoising_loss",
    "encode_pool",
    "image_embeddings",
    "draw_batch",
    "load_components",
    "motion_bucket",
    "quality",
    "save_pipeline",
    "train",
    "train_unet",
]
