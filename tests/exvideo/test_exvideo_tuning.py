"""Post-tuning: only ExVideo's parameters move, the loss goes down, and it is seeded."""

from __future__ import annotations

import copy

import pytest
import torch

from pytest_ablation.methods.exvideo import (
    denoising_loss,
    draw_noise,
    encode_videos,
    exvideo_parameter_names,
    exvideo_part,
    extend_unet,
    moving_shapes,
    post_tune,
)


@pytest.fixture(scope="module")
def clips():
    return moving_shapes(2, 6, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def data(tiny_svd, clips):
    return encode_videos(tiny_svd, clips, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def unet(tiny_svd):
    return extend_unet(copy.deepcopy(tiny_svd.unet), max_frames=8)


def fixed_batch_loss(unet, data) -> float:
    g = torch.Generator().manual_seed(123)
    index = torch.arange(data.clips)
    total = 0.0
    with torch.no_grad():
        for _ in range(4):
            sigma, noise = draw_noise(data, index, g, 0.7, 1.6)
            total += float(denoising_loss(unet, data, index, sigma, noise))
    return total / 4


def test_only_exvideo_parameters_change_and_the_loss_goes_down(unet, data, tiny_svd) -> None:
    before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    loss_before = fixed_batch_loss(unet, data)
    result = post_tune(unet, data, 8, components=tiny_svd, lr=1e-2, batch_size=2)
    trainable = set(exvideo_parameter_names(unet))
    changed = {n for n, p in unet.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    assert any("position_conv" in n for n in changed) and any("time_proj.embeddings" in n for n in changed)
    assert fixed_batch_loss(unet, data) < 0.95 * loss_before
    assert len(result.losses) == 8 and result.frames_per_second > 0
    assert result.trainable == tuple(exvideo_parameter_names(unet))
    assert result.trainable_parameters + result.frozen_parameters == sum(p.numel() for p in unet.parameters())
    assert not unet.training and not any(p.requires_grad for p in unet.parameters())
    assert all(p.grad is None for p in unet.parameters())


def test_seeded_and_checkpointing_changes_nothing(tiny_svd, clips) -> None:
    runs = []
    for checkpointing in (False, False, True):
        unet = extend_unet(copy.deepcopy(tiny_svd.unet), max_frames=8, position="static")
        result = post_tune(unet, clips, 2, components=tiny_svd, lr=1e-3, seed=7, gradient_checkpointing=checkpointing)
        runs.append((result.losses, {n: p for n, p in unet.named_parameters()}))
    (first, a), (second, b), (checkpointed, c) = runs
    assert first == second and all(torch.equal(a[n], b[n]) for n in a)
    assert checkpointed == pytest.approx(first, rel=1e-5)
    assert all(torch.allclose(a[n], c[n], atol=1e-6) for n in a)
    assert not any(getattr(m, "gradient_checkpointing", False) for m in unet.modules())


def test_zero_steps_change_nothing(unet, data, tiny_svd) -> None:
    before = copy.deepcopy(unet.state_dict())
    result = post_tune(unet, data, 0, components=tiny_svd)
    assert result.losses == () and all(torch.equal(v, unet.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"videos": torch.rand(2, 4, 3, 12, 16)}, "multiples of 8"),
        ({"videos": torch.rand(4, 3, 16, 16)}, r"expected \(N, F, 3, H, W\)"),
        ({"videos": torch.rand(1, 4, 3, 16, 16) * 2}, r"in \[0, 1\]"),
        ({"videos": torch.rand(1, 9, 3, 16, 16)}, "max_frames=8"),
        ({"steps": -1}, "steps: got -1"),
        ({"lr": 0}, "lr: got 0"),
        ({"batch_size": 3}, "batch_size: got 3"),
        ({"part_lr": {"convolution": 1e-3}}, "part_lr: got .*'table' and/or 'conv'"),
        ({"part_lr": {"conv": 0}}, r"part_lr\['conv'\]: got 0"),
        ({"part_lr": [("conv", 1e-3)]}, "part_lr: got"),
        ({"seed": "abc"}, "seed: got 'abc'; expected an integer >= 0"),
        ({"gradient_checkpointing": "no"}, "gradient_checkpointing: got 'no'; expected True or False"),
    ],
)
def test_bad_input(unet, clips, tiny_svd, change, message) -> None:
    kwargs = {"videos": clips, "steps": 1, "lr": 1e-3, "batch_size": 1, **change}
    with pytest.raises(ValueError, match=message):
        post_tune(unet, kwargs.pop("videos"), kwargs.pop("steps"), components=tiny_svd, **kwargs)


def test_a_plain_unet_is_refused(tiny_svd, clips) -> None:
    with pytest.raises(ValueError, match="extend_unet"):
        post_tune(copy.deepcopy(tiny_svd.unet), clips, 1, components=tiny_svd)


def test_half_precision_trains_float32_master_weights(tiny_svd, clips) -> None:
    unet = extend_unet(copy.deepcopy(tiny_svd.unet).to(torch.bfloat16), max_frames=8)
    before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    result = post_tune(unet, clips, 2, components=tiny_svd, lr=1e-3)
    trainable = set(exvideo_parameter_names(unet))
    assert all(p.dtype == torch.bfloat16 for p in unet.parameters())
    changed = {n for n, p in unet.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable and len(result.losses) == 2


# -- a learning rate per new part ------------------------------------------------------------
def _largest_moves(unet, before) -> tuple[dict, dict]:
    """Per part: the largest step of an entry, and the float32 spacing at its largest entry
    (how much reading a step back off a stored entry may round it)."""
    moves: dict = {}
    spacings: dict = {}
    for name, param in unet.named_parameters():
        step = float((param.detach() - before[name]).abs().max())
        if step > 0:
            part = exvideo_part(name) or "rest"
            moves[part] = max(moves.get(part, 0.0), step)
            spacing = float(before[name].abs().max()) * torch.finfo(torch.float32).eps
            spacings[part] = max(spacings.get(part, 0.0), spacing)
    return moves, spacings


def test_each_part_takes_its_own_step(unet, data, tiny_svd) -> None:
    # Adam's first step moves every parameter by lr * g / (|g| + eps): by its own group's
    # rate, whatever the gradient's scale (clipping and loss scaling included).
    before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    post_tune(unet, data, 1, components=tiny_svd, lr=1e-2, part_lr={"conv": 1e-4}, seed=3)
    moves, spacing = _largest_moves(unet, before)
    assert set(moves) == {"table", "conv", "rest"}
    assert 0.9e-4 < moves["conv"] <= 1e-4 + spacing["conv"]
    assert 0.9e-2 < moves["table"] <= 1e-2 + spacing["table"]
    assert 0.9e-2 < moves["rest"] <= 1e-2 + spacing["rest"]


def test_part_rates_equal_to_lr_change_nothing(tiny_svd, data) -> None:
    results = []
    for part_lr in (None, {"table": 1e-3, "conv": 1e-3}):
        unet = extend_unet(copy.deepcopy(tiny_svd.unet), max_frames=8)
        post_tune(unet, data, 3, components=tiny_svd, lr=1e-3, part_lr=part_lr, seed=5)
        results.append(dict(unet.named_parameters()))
    plain, grouped = results
    assert all(torch.equal(plain[n], grouped[n]) for n in plain)


def test_every_post_tuned_parameter_has_its_part(unet) -> None:
    names = exvideo_parameter_names(unet)
    parts = {name: exvideo_part(name) for name in names}
    # The table's rows and the convolution's weight and bias, by their diffusers names.
    assert {n for n, p in parts.items() if p == "table"} == {n for n in names if n.endswith(".time_proj.embeddings")}
    assert {n for n, p in parts.items() if p == "conv"} == {
        n for n in names if n.endswith((".position_conv.weight", ".position_conv.bias"))
    }
    assert all(parts[n] is None for n in names if ".temporal_transformer_blocks." in n or ".time_pos_embed." in n)
    assert (
        len({n for n, p in parts.items() if p == "table"})
        == len({n for n, p in parts.items() if p == "conv" and n.endswith(".weight")})
        > 0
    )
