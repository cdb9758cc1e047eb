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


def test_bad_kinds_and_counts_are_named() -> None:
    with pytest.raises(ValueError, match="position: got 'sliding'; expected one of 'trainable'"):
        position_ids("sliding", 4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_frames"):
            static_ids(bad)
    with pytest.raises(ValueError, match="frame"):
        ping_pong_id(-1)
    assert POSITION_KINDS == ("trainable", "static", "cyclic", "interpolated")
