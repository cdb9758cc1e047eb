"""Stable Diffusion 1.5 and Stable Video Diffusion img2vid-xt at their real sizes, built from
their published configurations with random weights: the compute and memory of the paper-scale
models, with nothing downloaded. For GPU checks and benchmarks; their videos mean nothing.

    sd = build_sd15_architecture(device="cuda", dtype="float16")      # 860M-parameter UNet
    svd = build_svd_xt_architecture(device="cuda", dtype="float16")   # 1.5B-parameter UNet
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_ablation.models.pretrained import torch_dtype, video_vae_dtype
from pytest_ablation.models.components import (
    StableDiffusionComponents,
    StableVideoDiffusionComponents,
)

# The published configurations (each model folder's config.json), kept as data.
_CONFIGS = json.loads((Path(__file__).with_name("paper_scale.json")).read_text(encoding="utf-8"))
SD15_UNET = _CONFIGS["sd15"]["unet"]
SD15_VAE = _CONFIGS["sd15"]["vae"]
SD15_TEXT = _CONFIGS["sd15"]["text_encoder"]
SD15_SCHEDULER = _CONFIGS["sd15"]["scheduler"]
SVD_XT_UNET = _CONFIGS["svd_xt"]["unet"]
SVD_XT_VAE = _CONFIGS["svd_xt"]["vae"]
SVD_XT_IMAGE_ENCODER = _CONFIGS["svd_xt"]["image_encoder"]
SVD_XT_SCHEDULER = _CONFIGS["svd_xt"]["scheduler"]


def _finish(module: Any, device: str, dtype: Any) -> Any:
    return module.to(device=device, dtype=dtype).eval().requires_grad_(False)


def build_sd15_architecture(device: str = "cpu", dtype: str | None = None, seed: int = 0) -> StableDiffusionComponents:
    """SD 1.5's UNet, VAE and text encoder, random weights; the toy byte-level tokenizer,
    whose ids fit CLIP's vocabulary; DDIM as ZS² samples."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from pytest_ablation.models.tokenizer import build_clip_tokenizer

    kind = torch_dtype(dtype)
    # Built on the device itself (quick on a GPU; "meta" builds shapes only).
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    return StableDiffusionComponents(
        tokenizer=build_clip_tokenizer(77),
        text_encoder=_finish(text_encoder, device, kind),
        unet=_finish(unet, device, kind),
        vae=_finish(vae, device, kind),
        scheduler=DDIMScheduler.from_config(SD15_SCHEDULER),
    )


def build_svd_xt_architecture(
    device: str = "cpu", dtype: str | None = None, seed: int = 0
) -> StableVideoDiffusionComponents:
    """SVD-XT's UNet, temporal-decoder VAE (upcast to float32 as diffusers' pipeline does)
    and ViT-H image encoder, random weights."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    kind = torch_dtype(dtype)
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        unet = UNetSpatioTemporalConditionModel(**SVD_XT_UNET)
        vae = AutoencoderKLTemporalDecoder(**SVD_XT_VAE)
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**SVD_XT_IMAGE_ENCODER))
    return StableVideoDiffusionComponents(
        image_encoder=_finish(image_encoder, device, kind),
        feature_extractor=CLIPImageProcessor(crop_size=224, size={"shortest_edge": 224}),
        unet=_finish(unet, device, kind),
        vae=_finish(vae, device, video_vae_dtype(vae, kind)),
        scheduler=EulerDiscreteScheduler.from_config(SVD_XT_SCHEDULER),
    )
