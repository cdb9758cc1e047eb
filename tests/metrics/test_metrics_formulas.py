"""Each metric against a plain computation written here, on synthetic videos."""

from __future__ import annotations

import cv2
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from pytest_ablation.metrics import (
    LinearInterpolator,
    clip_score,
    clip_score_per_frame,
    condition_consistency,
    condition_consistency_per_frame,
    dynamic_degree,
    dynamic_degree_per_pair,
    motion_smoothness,
    motion_smoothness_per_frame,
    temporal_consistency,
    temporal_consistency_per_pair,
    temporal_flickering,
    temporal_flickering_per_pair,
    video_coherence,
    video_coherence_per_frame,
    video_quality,
    video_quality_per_frame,
)

PROMPT = "a red balloon over a field"


def to_uint8_frames(video: torch.Tensor) -> list[np.ndarray]:
    """Nearest uint8 level of each float32 pixel, in (H, W, 3) frames."""
    scaled = video.permute(0, 2, 3, 1).numpy().astype(np.float32) * np.float32(255)
    return list(np.rint(scaled).astype(np.uint8))


def reference_features(clip, frames: torch.Tensor) -> np.ndarray:
    """CLIP features through open_clip's own PIL preprocessing, one frame at a time."""
    transform = open_clip.image_transform(clip.image_size[0], is_train=False, mean=clip.mean, std=clip.std)
    with torch.no_grad():
        batch = torch.stack([transform(Image.fromarray(f)) for f in to_uint8_frames(frames)])
        feats = clip.model.encode_image(batch).double().numpy()
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def reference_text(clip, texts: list[str]) -> np.ndarray:
    with torch.no_grad():
        feats = clip.model.encode_text(open_clip.get_tokenizer(clip.name)(texts)).double().numpy()
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


# --- CLIP metrics ------------------------------------------------------------------------


def test_clip_score_matches_plain_computation(tiny_clip, videos):
    video = videos.noise(5)
    img = reference_features(tiny_clip, video)
    txt = reference_text(tiny_clip, [PROMPT])[0]
    per_frame = [100 * float(f @ txt) for f in img]
    assert clip_score_per_frame(video, PROMPT, tiny_clip) == pytest.approx(per_frame, abs=1e-3)
    expected = max(0.0, sum(per_frame) / len(per_frame))
    assert clip_score(video, PROMPT, tiny_clip) == pytest.approx(expected, abs=1e-3)


def test_clip_score_is_in_range_and_deterministic(tiny_clip, videos):
    video = videos.grating(4, speed=2.0)
    first = clip_score(video, PROMPT, tiny_clip)
    assert 0.0 <= first <= 100.0
    assert clip_score(video, PROMPT, tiny_clip) == first
    assert clip_score(video.clone(), PROMPT, tiny_clip) == first


def test_clip_score_clamps_after_averaging(tiny_clip, videos):
    # Find a prompt whose score is negative for this random model, then check clamping.
    video = videos.noise(3, seed=3)
    img = reference_features(tiny_clip, video)
    prompts = [f"prompt number {i}" for i in range(40)]
    means = (img @ reference_text(tiny_clip, prompts).T).mean(axis=0)
    negative = prompts[int(np.argmin(means))]
    assert means.min() < 0, "the random tiny model should give some prompt a negative score"
    assert clip_score(video, negative, tiny_clip) == 0.0
    assert min(clip_score_per_frame(video, negative, tiny_clip)) < 0


def test_temporal_consistency_matches_plain_computation(tiny_clip, videos):
    video = videos.grating(5, speed=3.0)
    feats = reference_features(tiny_clip, video)
    pairs = [float(feats[t] @ feats[t + 1]) for t in range(len(feats) - 1)]
    assert temporal_consistency_per_pair(video, tiny_clip) == pytest.approx(pairs, abs=1e-5)
    assert temporal_consistency(video, tiny_clip) == pytest.approx(np.mean(pairs), abs=1e-5)


def test_video_coherence_matches_plain_computation(tiny_clip, videos):
    video = videos.noise(5, seed=1)
    f = reference_features(tiny_clip, video)
    per = [(max(0.0, float(f[t - 1] @ f[t])) + max(0.0, float(f[0] @ f[t]))) / 2 for t in range(1, len(f))]
    assert video_coherence_per_frame(video, tiny_clip) == pytest.approx(per, abs=1e-5)
    assert video_coherence(video, tiny_clip) == pytest.approx(np.mean(per), abs=1e-5)


def test_condition_consistency_matches_plain_computation(tiny_clip, videos):
    video = videos.fade(4)
    image = videos.image(64, 64, seed=7)
    f = reference_features(tiny_clip, video)
    c = reference_features(tiny_clip, image[None])[0]
    per = [max(0.0, float(c @ ft)) for ft in f]
    assert condition_consistency_per_frame(video, image, tiny_clip) == pytest.approx(per, abs=1e-5)
    assert condition_consistency(video, image, tiny_clip) == pytest.approx(np.mean(per), abs=1e-5)


def test_video_quality_matches_plain_computation(tiny_clip, videos):
    video = videos.noise(4, seed=2)
    f = reference_features(tiny_clip, video)
    anchors = reference_text(tiny_clip, ["Good photo.", "Bad photo."])
    scale = float(tiny_clip.model.logit_scale.detach().exp())
    per = []
    for ft in f:
        good, bad = scale * (anchors @ ft)
        per.append(float(np.exp(good) / (np.exp(good) + np.exp(bad))))
    assert video_quality_per_frame(video, tiny_clip) == pytest.approx(per, abs=1e-5)
    value = video_quality(video, tiny_clip)
    assert value == pytest.approx(np.mean(per), abs=1e-5)
    assert 0.0 <= value <= 1.0


def test_still_video_is_perfectly_consistent(tiny_clip, videos):
    video = videos.still(6)
    assert temporal_consistency(video, tiny_clip) == pytest.approx(1.0, abs=1e-6)
    assert video_coherence(video, tiny_clip) == pytest.approx(1.0, abs=1e-6)


def test_copies_of_the_condition_image_score_one(tiny_clip, videos):
    image = videos.image(64, 64, seed=11)
    video = image.expand(5, -1, -1, -1)
    assert condition_consistency(video, image, tiny_clip) == pytest.approx(1.0, abs=1e-6)


# --- pixel metrics -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["noise", "grating", "fade"])
def test_temporal_flickering_matches_plain_computation(videos, kind):
    video = {
        "noise": videos.noise(5),
        "grating": videos.grating(5, speed=2.5),
        "fade": videos.fade(5),
    }[kind]
    frames = to_uint8_frames(video)
    maes = [np.mean(np.abs(frames[t].astype(float) - frames[t + 1].astype(float))) for t in range(len(frames) - 1)]
    assert temporal_flickering(video) == pytest.approx((255 - np.mean(maes)) / 255, abs=1e-9)
    assert temporal_flickering_per_pair(video) == pytest.approx([(255 - m) / 255 for m in maes], abs=1e-9)


def test_temporal_flickering_rounds_to_uint8(videos):
    # Differences below half a grey level vanish once the frames are uint8, as in VBench.
    base = videos.still(3)
    video = base.clone()
    video[1] = (video[1] + 0.4 / 255).clamp(0, 1)
    assert temporal_flickering(video) == 1.0


@pytest.mark.parametrize("frames", [3, 4, 7, 8])
def test_motion_smoothness_linear_matches_plain_computation(videos, frames):
    video = videos.noise(frames, seed=frames)
    u8 = to_uint8_frames(video)
    per = []
    for odd in range(1, frames - 1, 2):
        mid = np.rint((u8[odd - 1].astype(float) + u8[odd + 1]) / 2)
        per.append((255 - np.mean(np.abs(u8[odd] - mid))) / 255)
    got = motion_smoothness_per_frame(video, LinearInterpolator())
    # Halves (x.5 grey levels) may round either way in float32: at most one level apart.
    assert got == pytest.approx(per, abs=1 / 255)
    value = motion_smoothness(video, LinearInterpolator())
    assert value == pytest.approx(np.mean(per), abs=1 / 255)
    assert len(got) == (frames - 1) // 2


def test_motion_smoothness_linear_is_exact_on_a_fade(videos):
    assert motion_smoothness(videos.fade(7), LinearInterpolator()) > 0.998


def test_flow_interpolator_follows_translation(videos):
    # The midpoint of frames 0 and 2 of a moving texture is frame 1: the flow warp finds it,
    # a blend does not.
    for speed in (1.0, 2.0, 3.0):
        video = videos.grating(5, speed=speed)
        flow_score = motion_smoothness(video)
        assert flow_score > 0.99
        assert flow_score > motion_smoothness(video, LinearInterpolator())


def test_motion_smoothness_reports_its_interpolator(videos):
    from pytest_ablation.metrics import MetricInput, get_metric

    video = videos.grating(5)
    score = get_metric("motion_smoothness").evaluate(MetricInput(video))
    assert score.details["interpolator"] == "flow-midwarp"

    def shifted(a, b):
        return (a + b) / 2

    score = get_metric("motion_smoothness").evaluate(MetricInput(video, interpolator=shifted))
    assert score.details["interpolator"] == "shifted"
    assert score.value == pytest.approx(motion_smoothness(video, LinearInterpolator()))


def test_dynamic_degree_matches_plain_computation(videos):
    video = videos.grating(4, size=64, speed=2.0, seed=5)
    frames = to_uint8_frames(video)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    per = []
    for a, b in zip(frames[:-1], frames[1:]):
        flow = dis.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)
        magnitude = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2).ravel()
        top = np.sort(magnitude)[::-1][: int(magnitude.size * 0.05)]
        per.append(top.mean() / (64 / 256))
    assert dynamic_degree_per_pair(video) == pytest.approx(per, rel=1e-4)
    assert dynamic_degree(video) == pytest.approx(np.mean(per), rel=1e-4)


@pytest.mark.parametrize("speed", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("size", [64, 128])
def test_dynamic_degree_measures_known_speed(videos, speed, size):
    # A translation of v px per frame reads v * 256 / min(H, W), whatever the resolution.
    pixels_per_frame = speed * size / 64
    value = dynamic_degree(videos.grating(3, size=size, speed=pixels_per_frame))
    assert value == pytest.approx(pixels_per_frame * 256 / size, rel=0.1)


def test_still_video_identities(videos):
    video = videos.still(5)
    assert temporal_flickering(video) == 1.0
    assert motion_smoothness(video) == 1.0
    assert motion_smoothness(video, LinearInterpolator()) == 1.0
    assert dynamic_degree(video) == 0.0


def test_noise_scores_far_below_a_still_video(videos):
    noise = videos.noise(5)
    assert temporal_flickering(noise) < 0.8
    assert motion_smoothness(noise) < 0.8
    assert dynamic_degree(noise) > dynamic_degree(videos.grating(5, speed=1.0))
