"""Fixtures of the ExVideo tests: small SVD UNets, the tiny SVD components, SVD-XT layouts."""

from __future__ import annotations

import copy

import pytest
import torch

from pytest_ablation.methods.exvideo.convert import SVD_XT_UNET_CONFIG


def small_unet(channels: int = 32, heads: int = 2, seed: int = 0, num_frames: int = 25):
    """One-level SVD UNet (four temporal transformers at ``channels``), seeded weights,
    trained length ``num_frames`` (its config's)."""
    from diffusers import UNetSpatioTemporalConditionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNetSpatioTemporalConditionModel(
            sample_size=4,
            in_channels=8,
            out_channels=4,
            down_block_types=("CrossAttnDownBlockSpatioTemporal",),
            up_block_types=("CrossAttnUpBlockSpatioTemporal",),
            block_out_channels=(channels,),
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=24,
            layers_per_block=1,
            cross_attention_dim=16,
            num_attention_heads=(heads,),
            num_frames=num_frames,
        )
    return unet.eval().requires_grad_(False)


def unet_inputs(frames: int, height: int, width: int, batch: int = 2, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, frames, 8, height, width, generator=g),
        torch.tensor(0.3),
        torch.randn(batch, 1, 16, generator=g),
        torch.randn(batch, 3, generator=g),
    )


def run_unet(unet, inputs) -> torch.Tensor:
    sample, t, context, ids = inputs
    with torch.no_grad():
        return unet(sample, t, encoder_hidden_states=context, added_time_ids=ids).sample


def xt_layout_config(width: int = 32) -> dict:
    """SVD-XT's layout (16 temporal transformers, the same names) at a fraction of its width."""
    return dict(
        SVD_XT_UNET_CONFIG,
        block_out_channels=[width, 2 * width, 4 * width, 4 * width],
        num_attention_heads=[max(1, width // 32), max(1, width // 16), max(1, width // 8), max(1, width // 8)],
        cross_attention_dim=32,
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
    )


@pytest.fixture(scope="session")
def small():
    return small_unet()


@pytest.fixture
def fresh_small(small):
    return copy.deepcopy(small)


@pytest.fixture(scope="session")
def tiny_svd():
    from pytest_ablation.models.tiny import build_tiny_stable_video_diffusion

    return build_tiny_stable_video_diffusion(seed=0)
