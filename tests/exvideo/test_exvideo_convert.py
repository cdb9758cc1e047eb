"""ExSVD checkpoints: DiffSynth names <-> the extended diffusers UNet, exact and complete."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from pytest_ablation.methods.exvideo import (
    EXSVD_BLOCKS,
    CheckpointError,
    convert_exsvd_state_dict,
    exvideo_parameter_names,
    exvideo_state_dict,
    install_exsvd,
    svd_xt_unet,
    to_exsvd_state_dict,
)

from .conftest import xt_layout_config

RELEASED_BLOCKS = {7, 17, 29, 39, 51, 61, 83, 113, 123, 133, 144, 154, 164, 175, 185, 195}


@pytest.fixture(scope="module")
def released_layout():
    """A state dict with the released file's names and shapes: SVD-XT (meta), 128 frames."""
    unet = svd_xt_unet(128)
    params = dict(unet.named_parameters())
    return to_exsvd_state_dict({n: params[n] for n in exvideo_parameter_names(unet)})


def test_the_released_layout(released_layout) -> None:
    assert len(released_layout) == 16 * 33
    assert {int(k.split(".")[1]) for k in released_layout} == RELEASED_BLOCKS == set(EXSVD_BLOCKS)
    shapes = {k: tuple(v.shape) for k, v in released_layout.items()}
    assert shapes["blocks.7.positional_embedding.embeddings"] == (128, 320)
    assert shapes["blocks.7.positional_conv.weight"] == (320, 320, 3, 3, 3)
    assert shapes["blocks.83.positional_conv.weight"] == (1280, 1280, 3, 3, 3)
    assert shapes["blocks.195.positional_embedding_proj.0.weight"] == (1280, 320)
    assert shapes["blocks.195.positional_embedding_proj.2.weight"] == (320, 1280)
    assert shapes["blocks.29.act_fn_in.proj.weight"] == (5120, 640)
    assert shapes["blocks.29.ff_in.weight"] == (640, 2560)
    assert shapes["blocks.51.attn2.to_k.weight"] == (1280, 1024)
    assert shapes["blocks.51.attn1.to_out.bias"] == (1280,)
    assert shapes["blocks.113.norm_out.weight"] == (1280,)
    assert shapes["blocks.113.act_fn_out.proj.weight"] == (10240, 1280)
    # The new parts hold 335M of the ~833M post-tuned parameters, as the paper says.
    total = sum(v.numel() for v in released_layout.values())
    conv = sum(v.numel() for k, v in released_layout.items() if "positional_conv" in k)
    assert 800e6 < total < 860e6 and 330e6 < conv < 340e6


def test_conversion_names_the_diffusers_parameters(released_layout) -> None:
    converted = convert_exsvd_state_dict(released_layout)
    assert (
        converted["down_blocks.0.attentions.0.time_proj.embeddings"]
        is released_layout["blocks.7.positional_embedding.embeddings"]
    )
    pairs = {
        "blocks.83.positional_embedding_proj.0.bias": "mid_block.attentions.0.time_pos_embed.linear_1.bias",
        "blocks.113.attn1.to_out.weight": "up_blocks.1.attentions.0.temporal_transformer_blocks.0.attn1.to_out.0.weight",
        "blocks.195.act_fn_in.proj.bias": "up_blocks.3.attentions.2.temporal_transformer_blocks.0.ff_in.net.0.proj.bias",
        "blocks.61.ff_out.weight": "down_blocks.2.attentions.1.temporal_transformer_blocks.0.ff.net.2.weight",
        "blocks.17.norm_out.bias": "down_blocks.0.attentions.1.temporal_transformer_blocks.0.norm3.bias",
        "blocks.164.positional_conv.bias": "up_blocks.2.attentions.2.position_conv.bias",
    }
    for diffsynth, diffusers in pairs.items():
        assert converted[diffusers] is released_layout[diffsynth]
    assert set(converted) == set(exvideo_parameter_names(svd_xt_unet(128)))


@settings(max_examples=8)
@given(width=st.sampled_from([32, 64, 96]), frames=st.integers(1, 200))
def test_round_trip_is_the_identity(width, frames) -> None:
    unet = svd_xt_unet(frames, config=xt_layout_config(width))
    params = dict(unet.named_parameters())
    ours = {n: params[n] for n in exvideo_parameter_names(unet)}
    theirs = to_exsvd_state_dict(ours, unet=unet)
    assert len(theirs) == 16 * 33
    back = convert_exsvd_state_dict(theirs, unet=unet)
    assert back.keys() == ours.keys() and all(back[n] is ours[n] for n in ours)
    assert to_exsvd_state_dict(back, unet=unet).keys() == theirs.keys()


def _error(state_dict, **kwargs) -> str:
    with pytest.raises(CheckpointError) as error:
        convert_exsvd_state_dict(state_dict, **kwargs)
    return str(error.value)


def test_missing_extra_and_mis_shaped_keys_are_listed(released_layout) -> None:
    broken = dict(released_layout)
    del broken["blocks.39.attn2.to_v.weight"]
    del broken["blocks.185.positional_conv.bias"]
    broken["blocks.39.attn2.to_x.weight"] = torch.empty(1, device="meta")
    broken["blocks.8.norm_in.weight"] = torch.empty(1, device="meta")
    broken["model.diffusion_model.out.0.weight"] = torch.empty(1, device="meta")
    broken["blocks.7.norm1.weight"] = torch.empty(321, device="meta")
    message = _error(broken)
    assert "unknown keys (3)" in message and "blocks.39.attn2.to_x.weight" in message
    assert "blocks.8.norm_in.weight" in message and "model.diffusion_model.out.0.weight" in message
    assert "missing keys (2)" in message
    assert "blocks.39.attn2.to_v.weight" in message and "blocks.185.positional_conv.bias" in message
    assert "mis-shaped keys (1)" in message and "blocks.7.norm1.weight: got [321], expected [320]" in message


def test_tables_must_agree_and_fit_the_target(released_layout) -> None:
    uneven = dict(released_layout)
    uneven["blocks.7.positional_embedding.embeddings"] = torch.empty(64, 320, device="meta")
    assert "position tables of different lengths: [64, 128]" in _error(uneven)
    small_target = svd_xt_unet(32)
    assert "expected [32, 320]" in _error(released_layout, unet=small_target)
    no_conv = svd_xt_unet(128, identity_conv=False)
    assert "the target UNet has no such parameter" in _error(released_layout, unet=no_conv)


def test_not_a_state_dict() -> None:
    with pytest.raises(CheckpointError, match="expected a mapping"):
        convert_exsvd_state_dict([1, 2])
    assert "unknown keys (1)" in _error({"blocks.7.norm_in.weight": [1.0]})


def test_an_exsvd_file_lands_in_the_right_parameters(tmp_path) -> None:
    # SVD-XT's layout at a tenth of its width, on the CPU: real tensors through a real file.
    source = svd_xt_unet(40, config=xt_layout_config(32), device="cpu")
    trained = set(exvideo_parameter_names(source))
    with torch.no_grad():
        for name, param in source.named_parameters():
            if name in trained:
                param.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(len(name))))
    path = tmp_path / "model.fp16.safetensors"
    save_file(to_exsvd_state_dict(exvideo_state_dict(source), unet=source), str(path))
    from diffusers import UNetSpatioTemporalConditionModel
    from safetensors.torch import load_file

    target = UNetSpatioTemporalConditionModel(**xt_layout_config(32))
    install_exsvd(target, load_file(str(path)))
    loaded = exvideo_state_dict(target)
    expected = exvideo_state_dict(source)
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
