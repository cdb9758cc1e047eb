"""Both samplers run with float16 models (the sd15 profile's dtype) and give finite videos:
noise drawn in float32 on the CPU, the UNet in float16, SVD's VAE upcast to float32."""

import copy

import torch

from pytest_ablation.methods.exvideo import ExVideoSampler, extend_unet, scene_image
from pytest_ablation.methods.zs2 import ZS2Sampler
from pytest_ablation.models.tiny import build_tiny_stable_diffusion, build_tiny_stable_video_diffusion


def test_exvideo_in_float16():
    svd = build_tiny_stable_video_diffusion(seed=0, dtype="float16")
    sampler = ExVideoSampler(svd, extend_unet(copy.deepcopy(svd.unet), max_frames=32), decode_chunk_size=4)
    image = scene_image(64, 64, generator=torch.Generator().manual_seed(1))
    out = sampler(image, frames=6, steps=2, seed=0)
    assert out.video.dtype == torch.float32 and out.video.shape == (6, 3, 64, 64)
    assert torch.isfinite(out.video).all() and float(out.video.std()) > 0


def test_zs2_in_float16_batched():
    sd = build_tiny_stable_diffusion(seed=0, dtype="float16")
    sampler = ZS2Sampler(sd, frames=3, steps=2, height=64, width=64, progress=False)
    videos = sampler.sample_batch(
        ["a red ball", "a blue lake"], generators=[torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    )
    assert [v.shape for v in videos] == [(3, 3, 64, 64)] * 2
    assert all(torch.isfinite(v).all() for v in videos)
    assert not torch.equal(videos[0], videos[1])
