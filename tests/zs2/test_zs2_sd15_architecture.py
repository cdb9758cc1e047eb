"""ZS² on the real Stable Diffusion 1.5 architecture, built from its configuration with
random weights (nothing is downloaded): one step at a small size, and the attention limits.

The UNet alone has 860M parameters; building it and running it on a CPU takes tens of
seconds, hence `slow`. It still runs in CI.
"""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import (
    CrossFrameAttnProcessor2_0,
)

from pytest_ablation.methods.zs2 import TemporalMomentumAttnProcessor, ZS2Sampler, tma_installed
from pytest_ablation.models import StableDiffusionComponents

pytestmark = pytest.mark.slow

# runwayml/stable-diffusion-v1-5, unet/vae/text_encoder/scheduler config.json.
SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=[
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
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
    skip_prk_steps=True,
    steps_offset=1,
    clip_sample=False,
)


@pytest.fixture(scope="module")
def sd15():
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from pytest_ablation.models.tokenizer import build_clip_tokenizer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    parts = [m.eval().requires_grad_(False) for m in (unet, vae, text_encoder)]
    return StableDiffusionComponents(
        tokenizer=build_clip_tokenizer(77),  # byte-level: its ids fit CLIP's vocabulary
        text_encoder=parts[2],
        unet=parts[0],
        vae=parts[1],
        scheduler=PNDMScheduler.from_config(SD15_SCHEDULER),  # ignores clip_sample, as from a file
    )


def test_one_step_at_a_small_size(sd15, monkeypatch):
    assert sum(p.numel() for p in sd15.unet.parameters()) > 850e6  # really SD 1.5's UNet
    calls = {}
    original = TemporalMomentumAttnProcessor.__call__

    def counting(self, attn, hidden_states, *args, **kwargs):
        calls[id(attn)] = calls.get(id(attn), 0) + 1
        return original(self, attn, hidden_states, *args, **kwargs)

    monkeypatch.setattr(TemporalMomentumAttnProcessor, "__call__", counting)
    sampler = ZS2Sampler(sd15, frames=2, steps=1, height=64, width=64, progress=False)
    video = sampler("a horse galloping on a street", seed=0)
    assert video.shape == (2, 3, 64, 64) and torch.isfinite(video).all()
    assert 0.0 <= video.min() and video.max() <= 1.0
    self_attention = [m for name, m in sd15.unet.named_modules() if name.endswith("attn1")]
    assert len(self_attention) == 16
    assert calls == {id(m): 1 for m in self_attention}


def test_the_limits_on_stable_diffusion_1_5(sd15):
    unet, frames = sd15.unet, 2
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2 * frames, 4, 8, 8, generator=generator)
    context = torch.randn(2 * frames, 77, 768, generator=generator)

    def out():
        with torch.no_grad():
            return unet(latents, 500, encoder_hidden_states=context).sample

    original = dict(unet.attn_processors)
    try:
        unet.set_attn_processor(AttnProcessor2_0())
        self_attention = out()
        unet.set_attn_processor(CrossFrameAttnProcessor2_0(batch_size=2))
        cross_frame = out()
        unet.set_attn_processor(AttnProcessor2_0())
        with tma_installed(unet, 0.0, frames):
            tma_zero = out()
        with tma_installed(unet, 1.0, frames):
            tma_one = out()
    finally:
        unet.set_attn_processor(original)
    torch.testing.assert_close(tma_zero, self_attention, atol=1e-5, rtol=0)
    torch.testing.assert_close(tma_one, cross_frame, atol=1e-5, rtol=0)
    assert (self_attention - cross_frame).abs().max() > 1e-3
