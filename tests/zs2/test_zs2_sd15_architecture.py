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
from pytest_ablation.models.paper_scale import build_sd15_architecture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sd15():
    return build_sd15_architecture()


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
