"""The paper-scale architectures the GPU check runs, built on the meta device (shapes only)."""

import torch

from pytest_ablation.models.paper_scale import build_sd15_architecture, build_svd_xt_architecture


def parameters(module):
    return sum(p.numel() for p in module.parameters())


def test_sd15_has_stable_diffusion_1_5s_sizes():
    sd = build_sd15_architecture(device="meta", dtype="float16")
    assert round(parameters(sd.unet) / 1e6) == 860  # the published 859.5M
    assert round(parameters(sd.vae) / 1e6) == 84 and round(parameters(sd.text_encoder) / 1e6) == 123
    assert sd.unet.dtype == torch.float16 and sd.vae.dtype == torch.float16


def test_svd_xt_has_its_sizes_and_an_upcast_vae():
    svd = build_svd_xt_architecture(device="meta", dtype="float16")
    assert round(parameters(svd.unet) / 1e6) == 1525  # img2vid-xt's UNet: 1.52B
    assert round(parameters(svd.image_encoder) / 1e6) == 632  # OpenCLIP ViT-H/14 vision tower
    assert svd.unet.dtype == torch.float16 and svd.vae.dtype == torch.float32
