"""Frame position ids of the four embedding kinds."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytest_ablation.methods.exvideo import (
    POSITION_KINDS,
    cyclic_ids,
    interpolated_ids,
    ping_pong_id,
    ping_pong_ids,
    position_ids,
    static_ids,
)


def test_ping_pong_ids_start_as_svd_then_walk_down_and_up() -> None:
    ids = ping_pong_ids(70).tolist()
    assert ids[:25] == list(range(25))
    assert ids[25:45] == list(range(23, 3, -1))  # 23 .. 4
    assert ids[45:65] == list(range(5, 25))  # 5 .. 24
    assert ids[65:70] == [23, 22, 21, 20, 19]


@given(st.integers(0, 2000))
def test_ping_pong_stays_in_the_trained_range_with_unit_steps(frame: int) -> None:
    here, after = ping_pong_id(frame), ping_pong_id(frame + 1)
    assert 0 <= here <= 24
    assert abs(after - here) == 1
    if frame >= 25:
        assert 4 <= here <= 24 and ping_pong_id(frame + 40) == here


@given(st.integers(1, 300))
def test_the_other_kinds(frames: int) -> None:
    assert static_ids(frames).tolist() == list(range(frames))
    cyc = cyclic_ids(frames)
    assert cyc.tolist() == [f % 25 for f in range(frames)]
    interp = interpolated_ids(frames)
    if frames <= 25:
        assert interp.tolist() == list(range(frames))
    else:
        assert interp[0] == 0 and interp[-1] == pytest.approx(24.0)
        assert bool((interp.diff() > 0).all()) and float(interp.max()) <= 24.0 + 1e-5
    assert torch.equal(position_ids("trainable", frames), ping_pong_ids(frames))
    assert torch.equal(position_ids("frozen", frames), ping_pong_ids(frames))


def test_bad_kinds_and_counts_are_named() -> None:
    with pytest.raises(ValueError, match="position: got 'sliding'; expected one of 'trainable'"):
        position_ids("sliding", 4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_frames"):
            static_ids(bad)
    with pytest.raises(ValueError, match="frame"):
        ping_pong_id(-1)
    assert POSITION_KINDS == ("trainable", "frozen", "static", "cyclic", "interpolated")
    with pytest.raises(ValueError, match="repeat: got 25; expected an integer in 1..24"):
        ping_pong_id(30, 25, 25)
    with pytest.raises(ValueError, match="at least 2 trained ids"):
        ping_pong_id(3, 1)


# -- the trained length --------------------------------------------------------------------
def diffsynth_position_ids(num_frames: int, max_id: int, repeat_length: int) -> list[int]:
    """DiffSynth-Studio's PositionalID (diffsynth/models/svd_unet.py, commit afd101f3), from
    its definition: below max_id a frame keeps its index; past it the id is a triangle wave
    that first walks down from max_id - 2 for repeat_length frames, then up for
    repeat_length frames, ending at max_id - 1."""
    ids = []
    for frame in range(num_frames):
        if frame < max_id:
            ids.append(frame)
            continue
        step = (frame - max_id) % (2 * repeat_length)
        lowest = max_id - 1 - repeat_length  # where the descending leg ends
        if step < repeat_length:
            ids.append(max_id - 2 - step)
        else:
            ids.append(lowest + 1 + (step - repeat_length))
    return ids


class FakeUNet:
    def __init__(self, num_frames=None):
        self.config = {} if num_frames is None else {"num_frames": num_frames}


@pytest.mark.parametrize("trained", [8, 14, 25])
def test_the_trained_length_comes_from_the_unet_config(trained) -> None:
    from pytest_ablation.methods.exvideo import trained_frames

    assert trained_frames(FakeUNet(trained)) == trained
    unet = small_unet_with(trained)
    assert trained_frames(unet) == trained
    frames = 5 * trained
    ids = {kind: position_ids(kind, frames, trained_frames(unet)) for kind in POSITION_KINDS}
    assert ids["static"].tolist() == list(range(frames))
    assert ids["cyclic"].tolist() == [f % trained for f in range(frames)]
    interp = ids["interpolated"]
    assert float(interp[0]) == 0.0 and float(interp[-1]) == pytest.approx(trained - 1)
    assert bool((interp.diff() > 0).all())
    for kind in ("trainable", "frozen"):
        got = ids[kind].tolist()
        assert got[:trained] == list(range(trained))
        assert min(got) >= 0 and max(got) <= trained - 1
        assert all(abs(b - a) == 1 for a, b in zip(got, got[1:]))


def test_svd_xt_keeps_diffsynth_layout_exactly() -> None:
    # SVD-XT (25 trained frames): DiffSynth's PositionalID(max_id=25, repeat_length=20).
    assert ping_pong_ids(300, 25).tolist() == diffsynth_position_ids(300, 25, 20)
    assert position_ids("trainable", 300, 25).tolist() == diffsynth_position_ids(300, 25, 20)
    assert ping_pong_ids(128).tolist() == diffsynth_position_ids(128, 25, 20)  # the default


@pytest.mark.parametrize("trained", [8, 14, 25])
def test_ping_pong_is_diffsynth_layout_at_every_trained_length(trained) -> None:
    # At any trained length the walk is PositionalID(max_id=trained, repeat_length=4/5 of it).
    repeat = (4 * trained) // 5
    assert ping_pong_ids(10 * trained, trained).tolist() == diffsynth_position_ids(10 * trained, trained, repeat)


def test_a_config_without_num_frames_is_svd_xt() -> None:
    from pytest_ablation.methods.exvideo import trained_frames

    assert trained_frames(FakeUNet()) == 25
    with pytest.raises(ValueError, match="unet.config.num_frames"):
        trained_frames(FakeUNet(0))


def small_unet_with(num_frames: int):
    from diffusers import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel(
        sample_size=4,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal",),
        up_block_types=("CrossAttnUpBlockSpatioTemporal",),
        block_out_channels=(32,),
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
        layers_per_block=1,
        cross_attention_dim=16,
        num_attention_heads=(2,),
        num_frames=num_frames,
    )
