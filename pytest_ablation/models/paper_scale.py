"""Stable Diffusion 1.5 and Stable Video Diffusion img2vid-xt at their real sizes, built from
their published configurations with random weights: the compute and memory of the paper-scale
models, with nothing downloaded. For GPU checks and benchmarks; their videos mean nothing.

    sd = build_sd15_architecture(device="cuda", dtype="float16")      # 860M-parameter UNet
    svd = build_svd_xt_architecture(device="cuda", dtype="float16")   # 1.5B-parameter UNet
"""

from __future__ import annotations

from typing import Any

from pytest_ablation.models.components import (
    StableDiffusionComponents,
    StableVideoDiffusionComponents,
)

# stable-diffusion-v1-5: unet/, vae/, text_encoder/ and scheduler/ config.json.
SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    block_out_channels=[320, 640, 1280, 1280],
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=768,
    attention_head_dim=8,
)
SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
SD15_TEXT = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
    layer_norm_eps=1e-5,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)
SD15_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    set_alpha_to_one=False,
    steps_offset=1,
    clip_sample=False,
)

# stable-video-diffusion-img2vid-xt: unet/, vae/, image_encoder/ and scheduler/ config.json.
SVD_XT_UNET = dict(
    sample_size=96,
    in_channels=8,
    out_channels=4,
    down_block_types=["CrossAttnDownBlockSpatioTemporal"] * 3 + ["DownBlockSpatioTemporal"],
    up_block_types=["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * 3,
    block_out_channels=[320, 640, 1280, 1280],
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=768,
    layers_per_block=2,
    cross_attention_dim=1024,
    transformer_layers_per_block=1,
    num_attention_heads=[5, 10, 20, 20],
    num_frames=25,
)
SVD_XT_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    latent_channels=4,
    sample_size=768,
    scaling_factor=0.18215,
    force_upcast=True,
)
SVD_XT_IMAGE_ENCODER = dict(
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=16,
    patch_size=14,
    image_size=224,
    projection_dim=1024,
    hidden_act="gelu",
    layer_norm_eps=1e-5,
)
SVD_XT_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    interpolation_type="linear",
    use_karras_sigmas=True,
    timestep_spacing="leading",
    steps_offset=1,
    sigma_min=0.002,
    sigma_max=700.0,
    timestep_type="continuous",
)


def _finish(module: Any, device: str, dtype: Any) -> Any:
    return module.to(device=device, dtype=dtype).eval().requires_grad_(False)


def build_sd15_architecture(device: str = "cpu", dtype: str | None = None, seed: int = 0) -> StableDiffusionComponents:
    """SD 1.5's UNet, VAE and text encoder, random weights; the toy byte-level tokenizer,
    whose ids fit CLIP's vocabulary; DDIM as ZS² samples."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from pytest_ablation.models.tiny import torch_dtype
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


def build_svd_xt_architecture(device: str = "cpu", dtype: str | None = None, seed: int = 0) -> StableVideoDiffusionComponents:
    """SVD-XT's UNet, temporal-decoder VAE (upcast to float32 as diffusers' pipeline does)
    and ViT-H image encoder, random weights."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from pytest_ablation.models.tiny import torch_dtype, video_vae_dtype

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
