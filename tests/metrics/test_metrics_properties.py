"""Properties that must hold for every video, checked with hypothesis."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_ablation.metrics import (
    MetricInput,
    dynamic_degree,
    get_metric,
    temporal_flickering,
)

CLIP_METRICS = [
    "clip_score",
    "temporal_consistency",
    "video_coherence",
    "condition_consistency",
    "video_quality",
]
# Metrics that average a per-frame value: any reordering of frames leaves them unchanged.
FRAMEWISE = ["clip_score", "condition_consistency", "video_quality"]

seeds = st.integers(0, 2**31 - 1)


def _clip_input(video, tiny_clip, image):
    return MetricInput(video, text="a small house by a lake", image=image, clip=tiny_clip)


def _scores(video, tiny_clip, image):
    inp = _clip_input(video, tiny_clip, image)
    return {name: get_metric(name).evaluate(inp) for name in CLIP_METRICS}


@settings(max_examples=8)
@given(seed=seeds, frames=st.integers(2, 6), data=st.data())
def test_framewise_clip_metrics_ignore_frame_order(tiny_clip, videos, seed, frames, data):
    video = videos.noise(frames, seed=seed)
    image = videos.image(64, 64, seed=seed + 1)
    order = data.draw(st.permutations(range(frames)))
    before = _scores(video, tiny_clip, image)
    after = _scores(video[list(order)], tiny_clip, image)
    for name in FRAMEWISE:
        assert after[name].value == pytest.approx(before[name].value, abs=1e-5), name
        assert list(after[name].per_frame) == pytest.approx([before[name].per_frame[i] for i in order], abs=1e-5), name
    # Consecutive similarity is symmetric, so reversing time changes nothing either.
    reversed_tc = get_metric("temporal_consistency").evaluate(_clip_input(video.flip(0), tiny_clip, image))
    assert reversed_tc.value == pytest.approx(before["temporal_consistency"].value, abs=1e-5)


@settings(max_examples=8)
@given(seed=seeds, copies=st.integers(2, 7), data=st.data())
def test_clip_metrics_of_identical_frames_ignore_their_order_and_number(tiny_clip, videos, seed, copies, data):
    frame = videos.noise(1, seed=seed)
    image = videos.image(64, 64, seed=seed + 1)
    video = frame.expand(copies, -1, -1, -1)
    order = data.draw(st.permutations(range(copies)))
    reference = _scores(frame.expand(2, -1, -1, -1), tiny_clip, image)
    for name, score in _scores(video[list(order)], tiny_clip, image).items():
        assert score.value == pytest.approx(reference[name].value, abs=1e-5), name
    assert reference["temporal_consistency"].value == pytest.approx(1.0, abs=1e-6)
    assert reference["video_coherence"].value == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=10)
@given(
    seed=seeds,
    half_pixel_speeds=st.lists(st.integers(0, 12), min_size=2, max_size=4, unique=True),
)
def test_dynamic_degree_grows_with_speed(videos, seed, half_pixel_speeds):
    speeds = sorted(k / 2 for k in half_pixel_speeds)
    values = [dynamic_degree(videos.grating(3, speed=s, seed=seed)) for s in speeds]
    assert values == sorted(values), list(zip(speeds, values))


@given(
    seed=seeds,
    frames=st.integers(2, 6),
    size=st.sampled_from([(8, 8), (16, 24), (33, 17)]),
    kind=st.sampled_from(["noise", "grating", "fade"]),
)
def test_temporal_flickering_is_symmetric_in_time(videos, seed, frames, size, kind):
    h, w = size
    video = {
        "noise": lambda: videos.noise(frames, h, w, seed=seed),
        "grating": lambda: videos.grating(frames, size=h, speed=seed % 5, seed=seed),
        "fade": lambda: videos.fade(frames, h, w, seed=seed),
    }[kind]()
    forward = temporal_flickering(video)
    assert temporal_flickering(video.flip(0)) == pytest.approx(forward, abs=1e-12)
    assert 0.0 <= forward <= 1.0


@settings(max_examples=10)
@given(seed=seeds, frames=st.integers(2, 5))
def test_every_score_is_a_finite_float_in_its_range(tiny_clip, videos, seed, frames):
    video = torch.rand(frames, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    scores = _scores(video, tiny_clip, videos.image(32, 32, seed=seed))
    assert 0.0 <= scores["clip_score"].value <= 100.0
    for name in ["temporal_consistency"]:
        assert -1.0 <= scores[name].value <= 1.0
    for name in ["video_coherence", "condition_consistency", "video_quality"]:
        assert 0.0 <= scores[name].value <= 1.0
    for score in scores.values():
        assert isinstance(score.value, float)
