"""Bad input fails early with a ValueError that names the problem."""

from __future__ import annotations

import pytest
import torch

from pytest_ablation.metrics import (
    MetricInput,
    clip_score,
    condition_consistency,
    dynamic_degree,
    get_metric,
    motion_smoothness,
    temporal_consistency,
    temporal_flickering,
    video_coherence,
    video_quality,
)

# name -> (call, minimum frames)
METRICS = {
    "clip_score": (lambda v, m: clip_score(v, "a dog", m), 1),
    "temporal_consistency": (lambda v, m: temporal_consistency(v, m), 2),
    "video_coherence": (lambda v, m: video_coherence(v, m), 2),
    "condition_consistency": (
        lambda v, m: condition_consistency(v, torch.full((3, 64, 64), 0.5), m),
        1,
    ),
    "video_quality": (lambda v, m: video_quality(v, m), 1),
    "temporal_flickering": (lambda v, m: temporal_flickering(v), 2),
    "motion_smoothness": (lambda v, m: motion_smoothness(v), 3),
    "dynamic_degree": (lambda v, m: dynamic_degree(v), 2),
}


def _good(frames: int = 4) -> torch.Tensor:
    return torch.full((frames, 3, 64, 64), 0.5)


def _bad_videos():
    nan = _good()
    nan[1, 0, 3, 3] = float("nan")
    inf = _good()
    inf[0, 2, 0, 0] = float("inf")
    return {
        "3 dims": (_good()[0], "4 dimensions"),
        "5 dims": (_good()[None], "4 dimensions"),
        "channels": (torch.full((4, 4, 64, 64), 0.5), "3 channels"),
        "channels last": (torch.full((4, 64, 64, 3), 0.5), "3 channels"),
        "above 1": (_good() * 3, "[0, 1]"),
        "below 0": (_good() - 1, "[0, 1]"),
        "uint8 levels": ((_good() * 255).to(torch.uint8), "floating-point"),
        "NaN": (nan, "NaN"),
        "inf": (inf, "infinite"),
        "empty": (torch.empty(0, 3, 64, 64), "empty"),
    }


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("case", sorted(_bad_videos()))
def test_bad_video_is_refused_with_its_reason(tiny_clip, metric, case):
    video, reason = _bad_videos()[case]
    with pytest.raises(ValueError, match="video") as info:
        METRICS[metric][0](video, tiny_clip)
    assert reason in str(info.value)


def test_a_non_tensor_is_a_type_error(tiny_clip):
    with pytest.raises(TypeError, match="torch.Tensor"):
        temporal_flickering([[0.5]])


@pytest.mark.parametrize("metric", sorted(name for name, (_, n) in METRICS.items() if n > 1))
def test_too_few_frames(tiny_clip, metric):
    call, minimum = METRICS[metric]
    call(_good(minimum), tiny_clip)  # the minimum itself is fine
    expected = f"{metric} needs at least {minimum} frames, got a video of {minimum - 1}"
    with pytest.raises(ValueError, match=expected):
        call(_good(minimum - 1), tiny_clip)


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (torch.full((64, 64), 0.5), "3 dimensions"),
        (torch.full((1, 3, 64, 64), 0.5), "3 dimensions"),
        (torch.full((4, 64, 64), 0.5), "3 channels"),
        (torch.full((64, 64, 3), 0.5), "3 channels"),
        (torch.full((3, 32, 64), 0.5), r"condition image is \(32, 64\)"),
        (torch.full((3, 64, 64), 1.5), r"\[0, 1\]"),
    ],
)
def test_condition_image_that_does_not_fit(tiny_clip, image, reason):
    with pytest.raises(ValueError, match="condition image") as info:
        condition_consistency(_good(), image, tiny_clip)
    assert info.match(reason)


@pytest.mark.parametrize(
    ("metric", "kwargs", "missing"),
    [
        ("clip_score", {"clip": True}, "a prompt"),
        ("clip_score", {"text": "a cat"}, "a CLIP model"),
        ("clip_score", {}, "a CLIP model .* and a prompt"),
        ("condition_consistency", {"clip": True}, "a condition image"),
        ("temporal_consistency", {}, "a CLIP model"),
        ("video_coherence", {}, "a CLIP model"),
        ("video_quality", {"text": "unused"}, "a CLIP model"),
    ],
)
def test_missing_needs_are_named(tiny_clip, metric, kwargs, missing):
    if kwargs.get("clip"):
        kwargs = {**kwargs, "clip": tiny_clip}
    inp = MetricInput(_good(), **kwargs)
    with pytest.raises(ValueError, match=f"{metric} needs {missing}"):
        get_metric(metric).evaluate(inp)


@pytest.mark.parametrize("metric", ["dynamic_degree", "motion_smoothness"])
def test_frames_too_small_for_optical_flow(metric):
    with pytest.raises(ValueError, match="at least 16x16 px"):
        METRICS[metric][0](torch.full((4, 3, 8, 64), 0.5), None)


def test_small_frames_are_fine_without_flow():
    from pytest_ablation.metrics import LinearInterpolator

    video = torch.rand(4, 3, 8, 8)
    assert 0 <= temporal_flickering(video) <= 1
    assert 0 <= motion_smoothness(video, LinearInterpolator()) <= 1


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (lambda a, b: a[:, :1], "returned"),
        (lambda a, b: a[0], "returned"),
        (lambda a, b: a.numpy(), "returned ndarray"),
        (lambda a, b: a * float("nan"), "returned NaN"),
    ],
)
def test_a_broken_interpolator_is_named(returned, reason):
    def broken(a, b):
        return returned(a, b)

    with pytest.raises(ValueError, match=f"interpolator 'broken' {reason}"):
        motion_smoothness(torch.rand(5, 3, 32, 32), broken)


def test_text_must_be_a_string():
    with pytest.raises(TypeError, match="text must be a string"):
        MetricInput(_good(), text=["a", "b"])
