"""imaging_quality against VBench's vbench/imaging_quality.py, written out here: frames as
float [0, 255], torchvision Resize(antialias=False) of the longer side to 512 when larger,
/ 255, pyiqa's MUSIQ one frame at a time, mean, / 100. pyiqa is optional: without it the
metric says why it cannot run (through the plugin: tests/plugin/test_vbench_metrics.py)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from torchvision import transforms

from pytest_ablation.metrics import MetricInput
from pytest_ablation.metrics.backends import musiq
from pytest_ablation.metrics.registry import get_metric

VARIABLE = "PYTEST_ABLATION_WEIGHTS_MUSIQ"
HAVE_PYIQA = importlib.util.find_spec("pyiqa") is not None


def vbench_longer(images: torch.Tensor) -> torch.Tensor:
    # transform(images, preprocess_mode='longer')
    _, _, h, w = images.size()
    if max(h, w) > 512:
        scale = 512.0 / max(h, w)
        images = transforms.Resize(size=(int(scale * h), int(scale * w)), antialias=False)(images)
    return images / 255.0


@pytest.mark.parametrize("size", [(300, 600), (100, 700), (512, 512), (64, 96), (720, 480)])
def test_preprocessing_is_vbench_longer_side_mode(size):
    g = torch.Generator().manual_seed(1)
    frames = (torch.rand(2, 3, *size, generator=g) * 255).round()
    ours, theirs = musiq.preprocess(frames.clone()), vbench_longer(frames.clone())
    assert ours.shape == theirs.shape
    assert max(ours.shape[-2:]) == min(512, max(size))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_without_pyiqa_the_metric_names_what_to_install(monkeypatch, tmp_path):
    checkpoint = tmp_path / "musiq.pth"
    checkpoint.write_bytes(b"x")
    monkeypatch.setenv(VARIABLE, str(checkpoint))
    # find_spec answers None for a module whose sys.modules entry is None: pyiqa "absent".
    monkeypatch.setitem(sys.modules, "pyiqa", None)
    problems = get_metric("imaging_quality").weights_problems()
    assert len(problems) == 1
    assert "pyiqa" in problems[0] and "pip install --no-deps pyiqa" in problems[0]


@pytest.mark.slow
@pytest.mark.skipif(
    not HAVE_PYIQA,
    reason="pyiqa is not installed: pip install --no-deps pyiqa scipy -c constraints.txt (README: Tests)",
)
@pytest.mark.slow
def test_metric_equals_vbench_computation_with_random_musiq(tmp_path, monkeypatch):
    from pyiqa.archs.musiq_arch import MUSIQ

    torch.manual_seed(0)
    path = tmp_path / "musiq_random.pth"
    torch.save(MUSIQ(pretrained=False).state_dict(), path)
    monkeypatch.setenv(VARIABLE, str(path))
    g = torch.Generator().manual_seed(2)
    # 600 px wide: above 512, so VBench's resize applies.
    video = (torch.rand(3, 3, 120, 600, generator=g) * 255).round() / 255

    score = get_metric("imaging_quality").evaluate(MetricInput(video))

    # VBench: MUSIQ(pretrained_model_path=...), training flag off on the top module only.
    model = MUSIQ(pretrained_model_path=str(path))
    model.training = False
    buffer = (video * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    images = vbench_longer(torch.Tensor(buffer).permute(0, 3, 1, 2))
    assert tuple(images.shape[-2:]) == (102, 512)
    with torch.no_grad():
        per_frame = [float(model(images[i].unsqueeze(0))) for i in range(len(images))]
    expected = sum(per_frame) / len(per_frame) / 100.0
    assert score.value == pytest.approx(expected, rel=1e-5, abs=1e-7)
    np.testing.assert_allclose(score.per_frame, np.array(per_frame) / 100.0, rtol=1e-5, atol=1e-7)
    assert len(set(score.per_frame)) == 3  # frames differ, so the per-frame order is checked
