"""Temporal Momentum Attention against diffusers' own processors, and its invariants."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import (
    CrossFrameAttnProcessor2_0,
)
from hypothesis import given
from hypothesis import strategies as st
from numerics import summation_error_bound
from zs2_support import frames_batch, make_attention

from pytest_ablation.methods.zs2 import (
    TemporalMomentumAttnProcessor,
    install_tma,
    momentum_weights,
    self_attention_names,
    tma_installed,
)

ATOL = 1e-5

heads = st.integers(1, 4)
head_dims = st.integers(1, 16)
tokens = st.integers(1, 20)
frame_counts = st.integers(1, 6)
branch_counts = st.integers(1, 3)
momenta = st.floats(0.0, 1.0)
seeds = st.integers(0, 2**16)


def run(processor, attn, hidden, **kwargs):
    with torch.no_grad():
        return processor(attn, hidden, **kwargs)


@given(
    heads,
    head_dims,
    tokens,
    frame_counts,
    branch_counts,
    seeds,
    st.booleans(),
    st.booleans(),
    st.sampled_from([1.0, 2.0]),
    st.booleans(),
)
def test_momentum_zero_is_attn_processor_2_0(h, d, n, f, b, seed, bias, residual, rescale, spatial):
    attn = make_attention(h, d, seed=seed, bias=bias, residual_connection=residual, rescale_output_factor=rescale)
    hidden = frames_batch(b, f, n, h * d, seed)
    if spatial:  # (batch, channels, 1, tokens): the 4-D input path
        hidden = hidden.transpose(1, 2).unsqueeze(2).contiguous()
    expected = run(AttnProcessor2_0(), attn, hidden)
    got = run(TemporalMomentumAttnProcessor(0.0, f), attn, hidden)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@given(heads, head_dims, tokens, frame_counts, branch_counts, seeds, st.booleans())
def test_momentum_one_is_text2video_zero_cross_frame_attention(h, d, n, f, b, seed, bias):
    attn = make_attention(h, d, seed=seed, bias=bias)
    hidden = frames_batch(b, f, n, h * d, seed)
    expected = run(CrossFrameAttnProcessor2_0(batch_size=b), attn, hidden)
    got = run(TemporalMomentumAttnProcessor(1.0, f), attn, hidden)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@given(heads, head_dims, tokens, branch_counts, momenta, seeds)
def test_one_frame_is_self_attention_for_any_momentum(h, d, n, b, mu, seed):
    attn = make_attention(h, d, seed=seed)
    hidden = frames_batch(b, 1, n, h * d, seed)
    expected = run(AttnProcessor2_0(), attn, hidden)
    got = run(TemporalMomentumAttnProcessor(mu, 1), attn, hidden)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@given(heads, st.integers(2, 16), tokens, st.integers(2, 6), branch_counts, momenta, seeds)
def test_keys_constant_over_frames_give_self_attention_for_any_momentum(h, d, n, f, b, mu, seed):
    channels = h * d
    free = channels // 2
    attn = make_attention(h, d, seed=seed, bias=True)
    # Keys and values ignore the last `free` input channels; the frames differ only there,
    # so keys and values are the same in every frame while the queries are not.
    attn.to_k.weight[:, channels - free :] = 0
    attn.to_v.weight[:, channels - free :] = 0
    base = frames_batch(b, 1, n, channels, seed).repeat_interleave(f, dim=0)
    delta = frames_batch(b, f, n, channels, seed + 1)
    delta[..., : channels - free] = 0
    hidden = base + delta
    with torch.no_grad():
        keys = attn.to_k(hidden).view(b, f, n, -1)
        # Equal up to the order in which the kernel sums the (identical) nonzero products.
        bound = summation_error_bound(hidden, attn.to_k.weight, attn.to_k.bias).view(b, f, n, -1)
    assert ((keys - keys[:, :1]).abs() <= bound + bound[:, :1]).all()
    expected = run(AttnProcessor2_0(), attn, hidden)
    got = run(TemporalMomentumAttnProcessor(mu, f), attn, hidden)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@given(momenta, st.integers(1, 64))
def test_frame_weights_are_convex(mu, f):
    w = momentum_weights(mu, f, dtype=torch.float64)
    assert w.shape == (f, f)
    assert (w >= 0).all()
    assert torch.equal(w, w.tril())  # a frame never sees later frames
    torch.testing.assert_close(w.sum(dim=1), torch.ones(f, dtype=torch.float64), atol=1e-12, rtol=0)
    assert w[0, 0] == 1.0
    # Frame k keeps mu^k of frame 0.
    torch.testing.assert_close(w[:, 0], mu ** torch.arange(f, dtype=torch.float64), atol=1e-12, rtol=0)


@given(momenta, st.integers(1, 8), branch_counts, st.integers(1, 12), seeds)
def test_mix_is_the_running_momentum_within_each_branch(mu, f, b, size, seed):
    states = torch.randn(b * f, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    got = TemporalMomentumAttnProcessor(mu, f).mix(states)
    expected = []
    for branch in states.view(b, f, size):
        running = branch[0]
        expected.append(running)
        for frame in branch[1:]:
            running = mu * running + (1 - mu) * frame
            expected.append(running)
    torch.testing.assert_close(got, torch.stack(expected), atol=1e-12, rtol=0)


@given(heads, head_dims, tokens, st.integers(1, 5), st.integers(2, 3), momenta, seeds)
def test_guidance_branches_never_mix(h, d, n, f, b, mu, seed):
    attn = make_attention(h, d, seed=seed)
    hidden = frames_batch(b, f, n, h * d, seed)
    processor = TemporalMomentumAttnProcessor(mu, f)
    before = run(processor, attn, hidden)
    changed = hidden.clone()
    changed[f:] += 1.0  # every branch but the first
    after = run(processor, attn, changed)
    torch.testing.assert_close(after[:f], before[:f], atol=0, rtol=0)


def test_cross_attention_calls_are_untouched():
    attn = make_attention(2, 4, seed=0, cross_attention_dim=6)
    hidden = frames_batch(2, 3, 5, 8, 0)
    text = torch.randn(6, 7, 6, generator=torch.Generator().manual_seed(1))
    expected = run(AttnProcessor2_0(), attn, hidden, encoder_hidden_states=text)
    got = run(TemporalMomentumAttnProcessor(0.5, 3), attn, hidden, encoder_hidden_states=text)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


# -- on whole UNets ------------------------------------------------------------------------
def _sd2_like_unet():
    from diffusers import UNet2DConditionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            block_out_channels=[32, 64],
            layers_per_block=1,
            cross_attention_dim=24,
            attention_head_dim=[2, 4],
            transformer_layers_per_block=2,
            use_linear_projection=True,
            upcast_attention=True,
            norm_num_groups=16,
        )
    return unet.eval().requires_grad_(False)


@pytest.fixture(scope="module", params=["tiny-sd", "sd2-like"])
def unet_case(request, tiny_sd):
    if request.param == "tiny-sd":
        return tiny_sd.unet, tiny_sd.text_encoder.config.hidden_size
    return _sd2_like_unet(), 24


def _unet_out(unet, frames, context_dim, processors=None):
    generator = torch.Generator().manual_seed(3)
    latents = torch.randn(2 * frames, 4, 8, 8, generator=generator)
    context = torch.randn(2 * frames, 77, context_dim, generator=generator)
    with torch.no_grad():
        return unet(latents, 500, encoder_hidden_states=context).sample


@pytest.mark.parametrize("frames", [1, 3])
def test_on_a_unet_the_limits_are_diffusers_processors(unet_case, frames):
    unet, context_dim = unet_case
    original = dict(unet.attn_processors)
    try:
        unet.set_attn_processor(AttnProcessor2_0())
        self_attention = _unet_out(unet, frames, context_dim)
        # Text2Video-Zero sets its processor on every layer; on text cross-attention it is
        # plain attention.
        unet.set_attn_processor(CrossFrameAttnProcessor2_0(batch_size=2))
        cross_frame = _unet_out(unet, frames, context_dim)
        unet.set_attn_processor(AttnProcessor2_0())
        with tma_installed(unet, 0.0, frames):
            tma_zero = _unet_out(unet, frames, context_dim)
        with tma_installed(unet, 1.0, frames):
            tma_one = _unet_out(unet, frames, context_dim)
    finally:
        unet.set_attn_processor(original)
    torch.testing.assert_close(tma_zero, self_attention, atol=ATOL, rtol=0)
    torch.testing.assert_close(tma_one, cross_frame, atol=ATOL, rtol=0)
    if frames > 1:  # the two limits differ, so the comparisons above say something
        assert (self_attention - cross_frame).abs().max() > 100 * ATOL


def test_install_sets_every_self_attention_layer_and_keeps_the_others(unet_case):
    unet, _ = unet_case
    before = dict(unet.attn_processors)
    with tma_installed(unet, 0.98, 4) as same:
        assert same is unet
        now = unet.attn_processors
        names = self_attention_names(unet)
        assert names and all(n.endswith("attn1.processor") for n in names)
        for name, processor in now.items():
            if name in names:
                assert isinstance(processor, TemporalMomentumAttnProcessor)
                assert (processor.momentum, processor.num_frames) == (0.98, 4)
            else:
                assert processor is before[name]
        assert any(n.endswith("attn2.processor") for n in now)
    assert unet.attn_processors == before


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_momentum_makes_consecutive_frames_attend_alike_in_every_layer(tiny_sd, seed):
    # What TMA is for, measured where it acts: the self-attention outputs of consecutive
    # frames. On the tiny UNet's random weights they grow 15-60% more alike at mu = 0.98.
    unet, frames = tiny_sd.unet, 4
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
        for name, module in unet.named_modules()
        if name.endswith("attn1")
    ]
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(1, 4, 8, 8, generator=generator)
    latents = 0.95 * shared + 0.31 * torch.randn(frames, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, 32, generator=generator).repeat_interleave(frames, dim=0)

    def spread(x):  # consecutive-frame difference relative to the output, within a branch
        x = x.view(2, frames, -1)
        return ((x[:, 1:] - x[:, :-1]).norm() / x.norm()).item()

    spreads = {}
    try:
        for mu in (0.0, 0.98):
            with tma_installed(unet, mu, frames), torch.no_grad():
                unet(torch.cat([latents, latents]), 900, encoder_hidden_states=context)
            spreads[mu] = {name: spread(out) for name, out in outputs.items()}
    finally:
        for hook in hooks:
            hook.remove()
    assert len(spreads[0.0]) == 4
    for name in spreads[0.0]:
        assert spreads[0.98][name] < 0.9 * spreads[0.0][name], name


def test_install_tma_returns_the_unet(tiny_sd):
    unet = tiny_sd.unet
    before = dict(unet.attn_processors)
    try:
        assert install_tma(unet, 0.5, 2) is unet
    finally:
        unet.set_attn_processor(before)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [-0.01, 1.01, math.nan, math.inf, -math.inf])
def test_momentum_outside_the_unit_interval_is_refused(momentum):
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        TemporalMomentumAttnProcessor(momentum, 4)
    with pytest.raises(ValueError, match="momentum"):
        momentum_weights(momentum, 4)


@pytest.mark.parametrize("momentum", ["0.5", None, True])
def test_momentum_must_be_a_number(momentum):
    with pytest.raises(TypeError, match="momentum must be a number"):
        TemporalMomentumAttnProcessor(momentum, 4)


@pytest.mark.parametrize("frames", [0, -2])
def test_frames_below_one_are_refused(frames, tiny_sd):
    with pytest.raises(ValueError, match="num_frames must be >= 1"):
        TemporalMomentumAttnProcessor(0.5, frames)
    with pytest.raises(ValueError, match="num_frames must be >= 1"):
        install_tma(tiny_sd.unet, 0.5, frames)


@pytest.mark.parametrize("frames", [2.0, "4", None])
def test_frames_must_be_an_integer(frames):
    with pytest.raises(TypeError, match="num_frames must be an integer"):
        TemporalMomentumAttnProcessor(0.5, frames)


def test_a_batch_not_divisible_by_the_frame_count_is_refused():
    attn = make_attention(2, 4)
    hidden = torch.randn(5, 3, 8)
    with pytest.raises(ValueError, match="batch of 5 is not divisible by num_frames=2"):
        run(TemporalMomentumAttnProcessor(0.5, 2), attn, hidden)


def test_install_on_something_without_attention_is_refused():
    with pytest.raises(TypeError, match="attention processors"):
        install_tma(torch.nn.Linear(2, 2), 0.5, 2)
