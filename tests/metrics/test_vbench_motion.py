"""dynamic_degree_vbench against VBench's rules, written out here from VBench's
vbench/dynamic_degree.py: frame sampling by fps, the top-5% flow statistic, the threshold
scaled by resolution, the count rule, and the whole metric with seeded random RAFT weights
against RAFT called directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pytest_ablation.metrics import MetricInput, WeightsMissing
from pytest_ablation.metrics.dimensions import dynamic_degree_vbench as dd
from pytest_ablation.metrics.registry import get_metric

VARIABLE = "PYTEST_ABLATION_WEIGHTS_RAFT_LARGE"


# --- VBench's rules, transcribed independently --------------------------------------------


def vbench_kept_frames(num_frames: int, fps: float | None) -> list[int]:
    # DynamicDegree.get_frames: interval = max(1, round(fps / 8)); extract_frame keeps
    # range(0, len, interval). A folder of images (no fps) keeps every frame.
    interval = 1 if fps is None else max(1, round(fps / 8))
    kept = []
    i = 0
    while i < num_frames:
        kept.append(i)
        i += interval
    return kept


def vbench_top_mean(rad: np.ndarray) -> float:
    # DynamicDegree.get_score
    h, w = rad.shape
    cut_index = int(h * w * 0.05)
    return float(np.mean(abs(np.sort(-rad.flatten()))[:cut_index]))


def vbench_check_move(scores: list[float], height: int, width: int) -> bool:
    # DynamicDegree.set_params + check_move; count is the number of kept frames.
    thres = 6.0 * (min(height, width) / 256.0)
    count_num = round(4 * ((len(scores) + 1) / 16.0))
    count = 0
    for score in scores:
        if score > thres:
            count += 1
        if count >= count_num:
            return True
    return False


# --- frame sampling -----------------------------------------------------------------------


@pytest.mark.parametrize("fps", [None, 1, 4, 8, 11.9, 12, 16, 20, 23.976, 24, 25, 28, 30, 60])
@pytest.mark.parametrize("num_frames", [1, 2, 7, 16, 49])
def test_frame_sampling_follows_vbench(fps, num_frames):
    assert dd.sampled_indices(num_frames, fps) == vbench_kept_frames(num_frames, fps)


def test_frame_sampling_rounds_halves_to_even_as_python_does():
    # 12/8 = 1.5 and 20/8 = 2.5 both round to 2, 28/8 = 3.5 rounds to 4, 4/8 to 1 (max).
    assert [dd.sample_interval(f) for f in (12, 20, 24, 28, 4, None)] == [2, 2, 3, 4, 1, 1]
    assert dd.sampled_indices(10, 24) == [0, 3, 6, 9]


# --- the statistic and the verdict on controlled magnitudes -------------------------------


@pytest.mark.parametrize("shape", [(128, 128), (136, 240), (7, 9)])
def test_top_five_percent_mean_matches_vbench(shape):
    rng = np.random.default_rng(3)
    rad = rng.exponential(2.0, size=shape).astype(np.float32)
    rad[0, :3] = rad.max()  # ties at the top
    assert dd.top_mean(rad) == pytest.approx(vbench_top_mean(rad), rel=1e-6)
    # Not the mean of everything: the largest 5% only.
    assert dd.top_mean(rad) > float(rad.mean()) * 1.5


def test_a_still_video_is_static():
    assert not dd.is_moving([0.0] * 15, 256, 256)
    assert not dd.is_moving([0.0] * 7, 512, 320)


def test_large_magnitudes_move():
    assert dd.is_moving([40.0] * 15, 256, 256)
    assert dd.is_moving([40.0] * 7, 480, 720)


def test_count_rule_at_its_boundary():
    # 16 kept frames at 256 px: threshold 6.0 px, round(4 * 16 / 16) = 4 pairs needed.
    assert dd.threshold(256, 256) == 6.0 and dd.pairs_needed(16) == 4
    three = [7.0] * 3 + [1.0] * 12
    four = [7.0] * 4 + [1.0] * 11
    assert not dd.is_moving(three, 256, 256)
    assert dd.is_moving(four, 256, 256)
    # "above" is strict: exactly at the threshold does not count.
    assert not dd.is_moving([6.0] * 4 + [0.0] * 11, 256, 256)
    assert dd.is_moving([6.001] * 4 + [0.0] * 11, 256, 256)


def test_threshold_scales_with_the_short_side():
    # 10 px per pair moves at a 256 px short side (threshold 6) but not at 512 (threshold 12).
    assert dd.threshold(512, 1024) == 12.0
    assert dd.is_moving([10.0] * 15, 256, 448)
    assert not dd.is_moving([10.0] * 15, 512, 1024)


def test_two_kept_frames_need_no_moving_pair_as_in_vbench():
    # round(4 * 2 / 16) = round(0.5) = 0: VBench calls any 2-frame sample moving.
    assert dd.pairs_needed(2) == 0
    assert dd.is_moving([0.0], 256, 256) and vbench_check_move([0.0], 256, 256)
    assert dd.pairs_needed(3) == 1 and not dd.is_moving([0.0, 0.0], 256, 256)


def test_verdict_agrees_with_vbench_on_random_cases():
    rng = np.random.default_rng(11)
    outcomes = set()
    for _ in range(500):
        pairs = int(rng.integers(1, 40))
        height, width = (int(s) for s in rng.integers(64, 1024, size=2))
        scores = list(rng.uniform(0, 2 * dd.threshold(height, width), size=pairs))
        expected = vbench_check_move(scores, height, width)
        assert dd.is_moving(scores, height, width) == expected
        outcomes.add(expected)
    assert outcomes == {True, False}


# --- errors before any model --------------------------------------------------------------


def test_missing_weights_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(VARIABLE, str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsMissing, match=VARIABLE):
        dd.evaluate(MetricInput(torch.rand(3, 3, 128, 128)))
    assert get_metric("dynamic_degree_vbench").weights_problems()


def test_too_few_frames_after_sampling_name_fps(monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    with pytest.raises(ValueError, match=r"fps=60.*at least 2"):
        dd.evaluate(MetricInput(torch.rand(5, 3, 128, 128), fps=60))


def test_frames_too_small_for_raft_are_refused():
    with pytest.raises(ValueError, match="121x121"):
        dd.evaluate(MetricInput(torch.rand(3, 3, 96, 160)))


def test_metric_input_refuses_a_bad_fps():
    with pytest.raises(ValueError, match="fps"):
        MetricInput(torch.rand(2, 3, 8, 8), fps=0)


# --- the whole metric, RAFT with seeded random weights ------------------------------------


@pytest.fixture(scope="module")
def random_raft(tmp_path_factory):
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(0)
    model = raft_large(weights=None, progress=False).eval()
    path = tmp_path_factory.mktemp("raft") / "raft_random.pth"
    torch.save(model.state_dict(), path)
    return path, model


def _vbench_magnitudes(model, frames_uint8: np.ndarray) -> list[float]:
    """VBench's loop: RAFT's InputPadder ('sintel', replicate), 20 iterations, statistic on
    the padded flow. torchvision's RAFT takes inputs in [-1, 1], which the original RAFT
    computes inside its forward."""
    frames = [torch.from_numpy(f.astype(np.uint8)).permute(2, 0, 1).float()[None] for f in frames_uint8]
    ht, wd = frames[0].shape[-2:]
    pad_ht = (((ht // 8) + 1) * 8 - ht) % 8
    pad_wd = (((wd // 8) + 1) * 8 - wd) % 8
    pad = [pad_wd // 2, pad_wd - pad_wd // 2, pad_ht // 2, pad_ht - pad_ht // 2]
    scores = []
    with torch.no_grad():
        for image1, image2 in zip(frames[:-1], frames[1:]):
            image1, image2 = (F.pad(x, pad, mode="replicate") for x in (image1, image2))
            flow_up = model(2 * (image1 / 255.0) - 1.0, 2 * (image2 / 255.0) - 1.0, num_flow_updates=20)[-1]
            flo = flow_up[0].permute(1, 2, 0).numpy()
            scores.append(vbench_top_mean(np.sqrt(np.square(flo[..., 0]) + np.square(flo[..., 1]))))
    return scores


@pytest.mark.slow
def test_metric_equals_vbench_computation_with_random_raft(random_raft, monkeypatch):
    path, model = random_raft
    monkeypatch.setenv(VARIABLE, str(path))
    # 132 px wide: padded to 136, so the padding and the padded statistic are exercised.
    g = torch.Generator().manual_seed(5)
    video = (torch.rand(7, 3, 128, 132, generator=g) * 255).round() / 255
    fps = 24  # keeps frames 0, 3, 6

    score = dd.evaluate(MetricInput(video, fps=fps))

    uint8 = (video * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    kept = vbench_kept_frames(7, fps)
    assert kept == [0, 3, 6]
    expected = _vbench_magnitudes(model, uint8[kept])
    assert len(score.per_frame) == len(expected) == 2
    np.testing.assert_allclose(score.per_frame, expected, rtol=1e-4)
    moving = vbench_check_move(expected, 128, 132)
    assert score.value == (1.0 if moving else 0.0)
    assert score.details["threshold"] == 6.0 * 128 / 256
    assert score.details["pairs_needed"] == 1 and score.details["kept_frames"] == 3
