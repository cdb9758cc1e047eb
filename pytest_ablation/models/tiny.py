"""Toy-sized Stable Diffusion and Stable Video Diffusion, built in-process with no files.

The architectures are the real diffusers/transformers classes with small configs, so every
method (attention processors on ``attn1``/``attn2``, the temporal transformers' positional
embedding, the samplers) runs on them unchanged; only the widths and depths shrink.

Weights do not come from torch's initialisers, which have changed between releases and
draw from the global generator: every linear, convolution and embedding is re-drawn from its
own counter-based stream keyed by (seed, component, parameter name). The same seed therefore
gives bitwise the same weights in any process, whatever the caller's RNG state, and adding a
layer elsewhere leaves the others untouched.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from pytest_ablation.models.components import (
    StableDiffusionComponents,
    StableVideoDiffusionComponents,
)
from pytest_ablation.models.pretrained import torch_dtype, video_vae_dtype
from pytest_ablation.models.tokenizer import byte_vocabulary

# Bump when the way weights are drawn changes: it is part of every tiny model's identity.
INIT_SCHEME = "fan-in-uniform/pcg64/v1"

_OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

_VOCAB_SIZE = len(byte_vocabulary())

# Four levels keep Stable Diffusion's factor-8 latent, so sizes carry over unchanged.
_TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [32, 32, 32, 32],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}
# The noise schedule Stable Diffusion and SVD were trained with.
_SD_BETAS: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}

TINY_SD_CONFIG: dict[str, dict[str, Any]] = {
    "tokenizer": {"model_max_length": 77, "vocabulary": "byte-level", "vocab_size": _VOCAB_SIZE},
    "text_encoder": {
        "vocab_size": _VOCAB_SIZE,
        "hidden_size": 32,
        "intermediate_size": 64,
        "projection_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "bos_token_id": _VOCAB_SIZE - 2,
        "eos_token_id": _VOCAB_SIZE - 1,
        "pad_token_id": _VOCAB_SIZE - 1,
    },
    # Stable Diffusion's layout shrunk: cross-attention blocks first, a plain block last,
    # and transformer blocks with self-attention (attn1) and text cross-attention (attn2).
    "unet": {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    },
    "vae": _TINY_VAE,
    "scheduler": {
        **_SD_BETAS,
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "prediction_type": "epsilon",
        "timestep_spacing": "leading",
    },
}

TINY_SVD_CONFIG: dict[str, dict[str, Any]] = {
    # 224 input like the released encoder: SVD pipelines resize the condition image to 224.
    "image_encoder": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "projection_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 224,
        "patch_size": 32,
        "hidden_act": "quick_gelu",
    },
    "feature_extractor": {
        "do_resize": True,
        "size": {"shortest_edge": 224},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": 224, "width": 224},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": _OPENAI_CLIP_MEAN,
        "image_std": _OPENAI_CLIP_STD,
        "do_convert_rgb": True,
    },
    # SVD's layout at two levels: spatio-temporal cross-attention blocks (each with its
    # TransformerSpatioTemporalModel and time_pos_embed), a plain level, the mid block.
    "unet": {
        "sample_size": 8,
        "in_channels": 8,
        "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
        "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
        "block_out_channels": [32, 64],
        "addition_time_embed_dim": 32,
        # fps, motion bucket and noise augmentation: three added time ids.
        "projection_class_embeddings_input_dim": 96,
        "layers_per_block": 1,
        "cross_attention_dim": 32,
        "transformer_layers_per_block": 1,
        "num_attention_heads": [2, 4],
        "num_frames": 8,
    },
    # The image VAE's encoder and latent, with SVD's temporal decoder (which takes no
    # up-block types nor group count).
    "vae": {k: v for k, v in _TINY_VAE.items() if k not in ("up_block_types", "norm_num_groups")},
    # img2vid-xt's scheduler configuration.
    "scheduler": {
        **_SD_BETAS,
        "interpolation_type": "linear",
        "prediction_type": "v_prediction",
        "sigma_max": 700.0,
        "sigma_min": 0.002,
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "timestep_type": "continuous",
        "use_karras_sigmas": True,
    },
}

TINY_KINDS = ("tiny-stable-diffusion", "tiny-stable-video-diffusion")


def tiny_config(kind: str, num_frames: int | None = None) -> dict[str, dict[str, Any]]:
    """The component configs a tiny kind is built from (a deep copy, safe to edit)."""
    if kind == "tiny-stable-diffusion":
        return copy.deepcopy(TINY_SD_CONFIG)
    if kind == "tiny-stable-video-diffusion":
        config = copy.deepcopy(TINY_SVD_CONFIG)
        if num_frames is not None:
            config["unet"]["num_frames"] = num_frames
        return config
    raise ValueError(f"kind: got {kind!r}; the tiny diffusion kinds are {', '.join(TINY_KINDS)}")


def config_sha256(kind: str, num_frames: int | None = None) -> str:
    """A digest of everything, but the seed, that decides a tiny model's weights."""
    payload = {"kind": kind, "init": INIT_SCHEME, "config": tiny_config(kind, num_frames)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stream_seed(seed: int, key: str) -> int:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _fill_uniform(tensor: Any, bound: float, seed: int, key: str) -> None:
    import numpy as np
    import torch

    rng = np.random.Generator(np.random.PCG64(_stream_seed(seed, key)))
    values = (rng.random(tensor.numel()) * 2.0 - 1.0) * bound
    tensor.copy_(torch.from_numpy(values.astype(np.float32)).view(tensor.shape))


def seeded_init_(module: Any, seed: int, namespace: str) -> Any:
    """Re-draw every weight of `module` from streams keyed by (seed, namespace, name).

    Linear and convolution layers get torch's default scale (uniform, bound 1/sqrt(fan in),
    weights and biases alike), embeddings CLIP's small one, normalisations identity.
    Parameters of other modules are constants set by their constructors (e.g. the
    AlphaBlender mix factors) and are kept, except CLIP's class embedding.
    """
    import torch
    from torch import nn

    linear_like = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
    norms = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d)
    with torch.no_grad():
        for name, child in module.named_modules():
            key = f"{namespace}/{name}"
            if isinstance(child, linear_like):
                weight = child.weight
                fan_in = weight.shape[1] * math.prod(weight.shape[2:])
                bound = 1.0 / math.sqrt(fan_in)
                _fill_uniform(weight, bound, seed, f"{key}.weight")
                if child.bias is not None:
                    _fill_uniform(child.bias, bound, seed, f"{key}.bias")
            elif isinstance(child, nn.Embedding):
                _fill_uniform(child.weight, 0.02 * math.sqrt(3.0), seed, f"{key}.weight")
            elif isinstance(child, norms):
                if getattr(child, "weight", None) is not None:
                    child.weight.fill_(1.0)
                if getattr(child, "bias", None) is not None:
                    child.bias.zero_()
            else:
                for pname, param in child.named_parameters(recurse=False):
                    if pname == "class_embedding":
                        bound = math.sqrt(3.0 / param.numel())
                        _fill_uniform(param, bound, seed, f"{key}.{pname}")
    return module


def _finish(module: Any, device: str, dtype: Any) -> Any:
    import torch

    # Plain nn.Module.to: diffusers' override warns about keep-in-float32 modules, of which
    # these toy models have none.
    torch.nn.Module.to(module, device=device, dtype=dtype)
    module.eval()
    module.requires_grad_(False)
    return module


def build_tiny_stable_diffusion(
    seed: int = 0, device: str = "cpu", dtype: str | None = None
) -> StableDiffusionComponents:
    """Tokenizer, text encoder, UNet, VAE and DDIM scheduler of a toy Stable Diffusion."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from pytest_ablation.models.tokenizer import build_clip_tokenizer

    config = tiny_config("tiny-stable-diffusion")
    tokenizer = build_clip_tokenizer(config["tokenizer"]["model_max_length"])
    text = config["text_encoder"]
    if tokenizer.bos_token_id != text["bos_token_id"] or tokenizer.eos_token_id != text["eos_token_id"]:
        raise RuntimeError(
            "the tiny tokenizer's special tokens moved; the text encoder expects "
            f"bos={text['bos_token_id']} eos={text['eos_token_id']}"
        )
    # Constructors draw from the global generator before seeded_init_ overwrites the result;
    # forking keeps the caller's random state untouched.
    with torch.random.fork_rng(devices=[]):
        text_encoder = CLIPTextModel(CLIPTextConfig(**text))
        unet = UNet2DConditionModel(**config["unet"])
        vae = AutoencoderKL(**config["vae"])
    seeded_init_(text_encoder, seed, "text_encoder")
    seeded_init_(unet, seed, "unet")
    seeded_init_(vae, seed, "vae")
    torch_type = torch_dtype(dtype)
    return StableDiffusionComponents(
        tokenizer=tokenizer,
        text_encoder=_finish(text_encoder, device, torch_type),
        unet=_finish(unet, device, torch_type),
        vae=_finish(vae, device, torch_type),
        scheduler=DDIMScheduler(**config["scheduler"]),
    )


def build_tiny_stable_video_diffusion(
    seed: int = 0, device: str = "cpu", dtype: str | None = None, num_frames: int | None = None
) -> StableVideoDiffusionComponents:
    """Image encoder, image processor, UNet, temporal-decoder VAE and Euler scheduler of a
    toy Stable Video Diffusion (img2vid-xt structure)."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    config = tiny_config("tiny-stable-video-diffusion", num_frames)
    with torch.random.fork_rng(devices=[]):
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**config["image_encoder"]))
        unet = UNetSpatioTemporalConditionModel(**config["unet"])
        vae = AutoencoderKLTemporalDecoder(**config["vae"])
    seeded_init_(image_encoder, seed, "image_encoder")
    seeded_init_(unet, seed, "unet")
    seeded_init_(vae, seed, "vae")
    torch_type = torch_dtype(dtype)
    return StableVideoDiffusionComponents(
        image_encoder=_finish(image_encoder, device, torch_type),
        feature_extractor=CLIPImageProcessor(**config["feature_extractor"]),
        unet=_finish(unet, device, torch_type),
        vae=_finish(vae, device, video_vae_dtype(vae, torch_type)),
        scheduler=EulerDiscreteScheduler(**config["scheduler"]),
    )


def time_sampling_loop(repeats: int = 5) -> dict[str, float]:
    """Seconds per video of a plain SD-style loop at the tiny profile's settings.

    Prompt encoding, one UNet call per step on both guidance branches of every frame at
    once, VAE decoding: the work a zero-shot text-to-video sampler does on these models.
    """
    import time

    import torch

    from pytest_ablation.profiles import load_profile

    settings = load_profile("tiny").settings
    sd = build_tiny_stable_diffusion(seed=0)
    frames = settings.frames

    def one_video() -> Any:
        tokens = sd.tokenizer(
            [settings.prompts[0], ""],
            padding="max_length",
            max_length=sd.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        text, empty = sd.text_encoder(tokens)[0].chunk(2)
        context = torch.cat([empty.expand(frames, -1, -1), text.expand(frames, -1, -1)])
        generator = torch.Generator().manual_seed(0)
        shape = (frames, 4, settings.height // 8, settings.width // 8)
        latents = torch.randn(shape, generator=generator)
        sd.scheduler.set_timesteps(settings.steps)
        for t in sd.scheduler.timesteps:
            model_in = sd.scheduler.scale_model_input(torch.cat([latents, latents]), t)
            uncond, cond = sd.unet(model_in, t, encoder_hidden_states=context).sample.chunk(2)
            guided = uncond + settings.guidance_scale * (cond - uncond)
            latents = sd.scheduler.step(guided, t, latents).prev_sample
        video = sd.vae.decode(latents / sd.vae.config.scaling_factor).sample
        return (video / 2 + 0.5).clamp(0, 1)

    with torch.no_grad():
        one_video()  # first call pays for lazy initialisation
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            one_video()
            times.append(time.perf_counter() - start)
    return {
        "min_s": min(times),
        "median_s": sorted(times)[len(times) // 2],
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    print(json.dumps(time_sampling_loop(), indent=2))
