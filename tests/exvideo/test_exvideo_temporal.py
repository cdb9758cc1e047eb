"""The extended temporal transformer: exactness at initialisation, kinds, reconfiguration."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ablation.methods.exvideo import (
    ExTransformerSpatioTemporalModel,
    IdentityConv3d,
    exvideo_parameter_names,
    exvideo_settings,
    exvideo_state_dict,
    extend_unet,
    is_extended,
    load_exvideo_state_dict,
    temporal_transformers,
)

from .conftest import run_unet, small_unet, unet_inputs

CHANNELS = st.sampled_from([32, 64])
SIDES = st.integers(1, 5)


@given(channels=st.integers(1, 24), frames=st.integers(1, 6), height=st.integers(1, 9), width=st.integers(1, 9))
def test_identity_conv_is_exact_at_init(channels, frames, height, width) -> None:
    conv = IdentityConv3d(channels)
    x = torch.randn(2, channels, frames, height, width)
    with torch.no_grad():
        assert torch.equal(conv(x), x)
    assert conv.kernel_size == (3, 3, 3) and conv.padding_mode == "reflect"


@settings(max_examples=10)
@given(channels=st.integers(1, 12), frames=st.integers(2, 5), height=st.integers(2, 6), width=st.integers(2, 6))
def test_identity_conv_paths_agree(channels, frames, height, width) -> None:
    conv = IdentityConv3d(channels)
    g = torch.Generator().manual_seed(channels * 100 + frames)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        conv.bias.copy_(torch.randn(conv.bias.shape, generator=g))
        x = torch.randn(2, channels, frames, height, width, generator=g)
        fused = conv._as_matmul(x)  # what small grids use on a CPU
        direct = torch.nn.Conv3d.forward(conv, x)  # torch's reflect-padded convolution
    assert torch.allclose(fused, direct, atol=1e-4, rtol=1e-4)


def test_identity_conv_reflects_along_time() -> None:
    conv = IdentityConv3d(1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 1, 1] = 1.0  # output frame t reads input frame t - 1
    x = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 1, 4, 2, 2).contiguous()
    with torch.no_grad():
        y = conv(x)[0, 0, :, 0, 0]
    assert y.tolist() == [1.0, 0.0, 1.0, 2.0]  # frame -1 mirrors frame 1


@settings(max_examples=12)
@given(channels=CHANNELS, frames=st.integers(1, 40), height=SIDES, width=SIDES, conv=st.booleans())
@pytest.mark.slow
def test_static_is_the_unpatched_unet_for_any_frame_count(channels, frames, height, width, conv) -> None:
    plain = small_unet(channels)
    inputs = unet_inputs(frames, height, width)
    extended = extend_unet(copy.deepcopy(plain), max_frames=40, position="static", identity_conv=conv)
    assert torch.equal(run_unet(extended, inputs), run_unet(plain, inputs))


@settings(max_examples=12)
@given(
    channels=CHANNELS,
    frames=st.integers(1, 25),
    height=SIDES,
    width=SIDES,
    conv=st.booleans(),
    kind=st.sampled_from(["trainable", "cyclic", "interpolated"]),
)
def test_every_kind_is_svd_up_to_25_frames_at_init(channels, frames, height, width, conv, kind) -> None:
    plain = small_unet(channels)
    inputs = unet_inputs(frames, height, width)
    extended = extend_unet(copy.deepcopy(plain), max_frames=64, position=kind, identity_conv=conv)
    assert torch.equal(run_unet(extended, inputs), run_unet(plain, inputs))


@pytest.mark.parametrize("kind", ["trainable", "cyclic", "interpolated"])
def test_past_25_frames_the_kinds_leave_svd(small, kind) -> None:
    inputs = unet_inputs(30, 2, 2)
    extended = extend_unet(copy.deepcopy(small), max_frames=30, position=kind)
    assert not torch.equal(run_unet(extended, inputs), run_unet(small, inputs))


@settings(max_examples=10)
@given(channels=CHANNELS, frames=st.integers(1, 30), batch=st.integers(1, 3))
def test_cyclic_embedding_is_periodic(channels, frames, batch) -> None:
    unet = extend_unet(small_unet(channels), max_frames=frames + 25, position="cyclic")
    _, module = temporal_transformers(unet)[0]
    with torch.no_grad():
        emb = module._frame_embedding(frames + 25, batch, torch.float32, "cpu")[:, 0]
    emb = emb.view(batch, frames + 25, -1)
    assert torch.equal(emb[:, :frames], emb[:, 25 : 25 + frames])
    assert torch.equal(emb[0], emb[-1])


def test_trainable_table_starts_at_the_ping_pong_sinusoid(small) -> None:
    unet = extend_unet(copy.deepcopy(small), max_frames=70)
    _, module = temporal_transformers(unet)[0]
    table = module.time_proj.embeddings
    assert table.shape == (70, module.in_channels)
    sinusoid = module.__dict__["_exvideo_sinusoid"]
    assert torch.equal(table[25], sinusoid(torch.tensor([23]))[0])
    assert torch.equal(table[44], table[4]) and torch.equal(table[45], table[5])


def test_frames_beyond_max_frames_are_refused(small) -> None:
    unet = extend_unet(copy.deepcopy(small), max_frames=8, position="static")
    with pytest.raises(ValueError, match=r"num_frames: got 9; .*max_frames=8"):
        run_unet(unet, unet_inputs(9, 2, 2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_frames": 8, "position": "sliding"}, "position: got 'sliding'"),
        ({"max_frames": 0}, "max_frames: got 0"),
        ({"max_frames": 8, "identity_conv": "yes"}, "identity_conv: got 'yes'"),
    ],
)
def test_bad_arguments(small, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        extend_unet(copy.deepcopy(small), **kwargs)


def test_a_model_without_temporal_transformers_is_refused() -> None:
    with pytest.raises(ValueError, match="no TransformerSpatioTemporalModel"):
        extend_unet(torch.nn.Linear(2, 2), max_frames=8)


def test_parameters_and_state_dict_names(small) -> None:
    assert not is_extended(small)
    unet = extend_unet(copy.deepcopy(small), max_frames=12)
    assert is_extended(unet) and all(
        isinstance(m, ExTransformerSpatioTemporalModel) for _, m in temporal_transformers(unet)
    )
    assert exvideo_settings(unet).to_dict() == {
        "max_frames": 12,
        "position": "trainable",
        "identity_conv": True,
        "trained_frames": 25,
    }
    names = exvideo_parameter_names(unet)
    assert set(names) <= set(unet.state_dict())
    for prefix, _ in temporal_transformers(unet):
        assert f"{prefix}.time_proj.embeddings" in names
        assert f"{prefix}.position_conv.weight" in names
        assert f"{prefix}.time_pos_embed.linear_1.weight" in names
        assert f"{prefix}.temporal_transformer_blocks.0.attn1.to_q.weight" in names
    assert not any(".transformer_blocks." in n or "time_mixer" in n or "proj_in" in n for n in names)
    static = extend_unet(copy.deepcopy(small), max_frames=12, position="static", identity_conv=False)
    assert not any("time_proj" in n or "position_conv" in n for n in exvideo_parameter_names(static))


def test_reconfiguring_keeps_what_was_trained(small) -> None:
    unet = extend_unet(copy.deepcopy(small), max_frames=30)
    _, module = temporal_transformers(unet)[0]
    with torch.no_grad():
        module.time_proj.embeddings.add_(1.0)
        module.position_conv.weight.mul_(0.5)
    trained_rows = module.time_proj.embeddings.detach().clone()
    conv = module.position_conv
    extend_unet(unet, max_frames=50)  # grow: trained rows kept, new rows start as SVD
    assert torch.equal(module.time_proj.embeddings[:30], trained_rows)
    assert module.position_conv is conv
    extend_unet(unet, max_frames=20)
    assert torch.equal(module.time_proj.embeddings, trained_rows[:20])
    extend_unet(unet, max_frames=20, identity_conv=False)
    assert module.position_conv is None and "position_conv.weight" not in module.state_dict()
    extend_unet(unet, max_frames=20, position="static")
    assert not hasattr(module.time_proj, "embeddings")
    inputs = unet_inputs(20, 2, 2)
    # Only the table and the conv were changed, and both are gone: SVD again.
    assert torch.equal(run_unet(unet, inputs), run_unet(small, inputs))
    extend_unet(unet, max_frames=20, identity_conv=True)
    assert torch.equal(module.position_conv.weight[:, :, 1, 1, 1], torch.eye(module.inner_dim))


def test_state_dict_round_trip_and_mismatches(small) -> None:
    source = extend_unet(copy.deepcopy(small), max_frames=12)
    trained = set(exvideo_parameter_names(source))
    with torch.no_grad():
        for name, p in source.named_parameters():
            if name in trained:
                p.add_(0.25)
    weights = exvideo_state_dict(source)
    target = extend_unet(copy.deepcopy(small), max_frames=12)
    load_exvideo_state_dict(target, weights)
    inputs = unet_inputs(12, 2, 2)
    assert torch.equal(run_unet(target, inputs), run_unet(source, inputs))
    wrong = extend_unet(copy.deepcopy(small), max_frames=16, identity_conv=False)
    with pytest.raises(ValueError) as error:
        load_exvideo_state_dict(wrong, weights)
    message = str(error.value)
    assert "unexpected (8)" in message and "position_conv.weight" in message
    assert "mis-shaped (4)" in message and "time_proj.embeddings: got (12, 32), expected (16, 32)" in message


# -- the trained length, and the frozen kind ------------------------------------------------
@pytest.mark.parametrize("trained", [8, 14])
def test_the_kinds_follow_the_unets_trained_length(trained) -> None:
    from pytest_ablation.methods.exvideo import ping_pong_ids

    plain = small_unet(num_frames=trained)
    frames = 3 * trained
    for kind in ("trainable", "frozen", "static", "cyclic", "interpolated"):
        unet = extend_unet(copy.deepcopy(plain), max_frames=frames, position=kind)
        assert exvideo_settings(unet).trained_frames == trained
        # Up to the trained length every kind is the plain UNet at initialisation.
        short = unet_inputs(trained, 3, 3, batch=1)
        torch.testing.assert_close(run_unet(unet, short), run_unet(plain, short), rtol=0, atol=1e-5)
    _, module = temporal_transformers(extend_unet(copy.deepcopy(plain), frames, position="cyclic"))[0]
    with torch.no_grad():
        emb = module._frame_embedding(frames, 1, torch.float32, "cpu")[:, 0]
    assert torch.equal(emb[:trained], emb[trained : 2 * trained])  # period: the trained length
    unet = extend_unet(copy.deepcopy(plain), frames)
    _, module = temporal_transformers(unet)[0]
    sinusoid = module.__dict__["_exvideo_sinusoid"]
    expected = sinusoid(ping_pong_ids(frames, trained))
    assert torch.equal(module.time_proj.embeddings.detach(), expected)
    assert int(ping_pong_ids(frames, trained).max()) == trained - 1


def test_the_frozen_arm_is_the_untuned_trainable_table() -> None:
    plain = small_unet(num_frames=8)
    frames = 30
    trainable = extend_unet(copy.deepcopy(plain), frames, position="trainable")
    frozen = extend_unet(copy.deepcopy(plain), frames, position="frozen")
    for (_, t), (_, f) in zip(temporal_transformers(trainable), temporal_transformers(frozen)):
        with torch.no_grad():
            table = t._frame_embedding(frames, 1, torch.float32, "cpu")
            fixed = f._frame_embedding(frames, 1, torch.float32, "cpu")
        assert torch.equal(table, fixed)
    inputs = unet_inputs(frames, 3, 3, batch=1)
    assert torch.equal(run_unet(trainable, inputs), run_unet(frozen, inputs))
    # Nothing of the frozen kind's ids is trainable: it stays at the initial rows.
    assert not any(n.endswith("time_proj.embeddings") for n in exvideo_parameter_names(frozen))
    assert any(n.endswith("time_proj.embeddings") for n in exvideo_parameter_names(trainable))
