"""FVD in a study, as a user writes one: the tiny profile's ZS² sampler, random I3D weights
from a file named by PYTEST_ABLATION_WEIGHTS_I3D."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_ablation.results.gate import judge_reports, judge_set
from pytest_ablation.results.model import SetValue
from report_files import report_of, result_rows, set_rows

VARIABLE = "PYTEST_ABLATION_WEIGHTS_I3D"

# I3D at 64x64 instead of FVD's 224x224 keeps these runs to seconds on a CPU; the plumbing
# is the same (tests/metrics/test_fvd.py runs the standard size).
CONFTEST = """
import pytest_ablation.metrics.dimensions.fvd as fvd

fvd.FEATURE_SIZE = 64
"""

STUDY = """
import pytest


@pytest.mark.ablation("cfg", reference="cfg=7.5", metrics=["temporal_flickering", "fvd"])
@pytest.mark.parametrize("cfg", [1.0, 7.5], ids=lambda g: f"cfg={g}")
def test_guidance(cfg, zs2, ablation):
    result = ablation.run(zs2, guidance_scale=cfg)
    fvd = result.set_metric("fvd")
    assert (fvd.n_variant, fvd.n_reference) == (4, 4)
    assert fvd.warning is not None
"""

CLAIM = """
import pytest


@pytest.mark.ablation("claim", reference="cfg=7.5", metrics=["fvd"])
@pytest.mark.parametrize("cfg", [1.0, 7.5], ids=lambda g: f"cfg={g}")
def test_claim(cfg, zs2, ablation):
    result = ablation.run(zs2, guidance_scale=cfg)
    if cfg == 1.0:
        ablation.expect(result, "fvd").below_reference()
"""

REAL = """
import pytest


@pytest.mark.ablation("real", reference="cfg=7.5", metrics=["fvd"], fvd_reference="real")
@pytest.mark.parametrize("cfg", [1.0, 7.5], ids=lambda g: f"cfg={g}")
def test_real(cfg, zs2, ablation):
    ablation.run(zs2, guidance_scale=cfg)
"""


def save_random_i3d(path: Path) -> Path:
    """An I3D state dict of random weights whose activations neither vanish nor explode."""
    from pytest_ablation.metrics.backends.i3d import InceptionI3d

    torch.manual_seed(0)
    model = InceptionI3d()
    for module in model.modules():
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture
def project(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv(VARIABLE, str(save_random_i3d(tmp_path / "i3d.pt")))
    pytester.makepyfile(conftest=CONFTEST)
    return pytester


def _fd(f1: np.ndarray, f2: np.ndarray) -> float:
    """The Fréchet distance of two feature sets as FID code writes it (eigenvalues of S1 S2)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    tr = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * tr)


def independent_fvd(pytester, variant: str, reference: str) -> float:
    """FVD of two variants' saved PNG videos: frames resized to 64x64 (the tests' size),
    scaled to [-1, 1], through the I3D weights of the run."""
    import os

    import torch.nn.functional as F
    from PIL import Image

    from pytest_ablation.metrics.backends.i3d import load_i3d

    model = load_i3d(os.environ[VARIABLE], size=64).model

    def features(name):
        out = []
        for video in sorted((pytester.path / "reports" / "videos" / "cfg" / name).iterdir()):
            frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(video.glob("*.png"))])
            x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
            with torch.no_grad():
                out.append(model((2 * x / 255 - 1).permute(1, 0, 2, 3)[None])[0].double().numpy())
        assert len(out) == 4, name
        return np.stack(out)

    return _fd(features(variant), features(reference))


def tensor_entries(pytester) -> list[Path]:
    return sorted((pytester.path / ".ablation-cache").rglob("tensors/*/*.safetensors"))


@pytest.mark.slow
@pytest.mark.slow
def test_fvd_table_reference_at_zero_and_statistics_cached(project):
    project.makepyfile(test_cfg=STUDY, test_claim=CLAIM)
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-v", "--ablation-save-videos", "png")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    # ablation.expect on a set-level metric is refused with the reason and what to do instead.
    assert "fvd is a set-level metric" in out and "set_metric('fvd')" in out
    report = report_of(project)
    rows = {(r["study"], r["variant"]): r for r in set_rows(report)}
    reference, variant = rows["cfg", "cfg=7.5"], rows["cfg", "cfg=1.0"]
    assert reference["is_reference"] and reference["value"] == 0.0
    assert (reference["low"], reference["high"]) == (None, None)
    assert not variant["is_reference"] and variant["value"] > 0
    assert variant["low"] is not None and variant["low"] <= variant["high"]
    assert (variant["resamples"], variant["seed"], variant["n_variant"]) == (1000, 0, 4)
    assert variant["reference"] == "variant cfg=7.5 (4 videos)"
    assert "below 256 videos" in variant["warning"]
    # The same number from the saved videos, featurised and compared here independently.
    assert variant["value"] == pytest.approx(independent_fvd(project, "cfg=1.0", "cfg=7.5"), rel=1e-4)
    assert report["metrics"]["fvd"]["direction"] == "lower"
    # Not a per-video metric: no paired rows.
    assert not [r for r in result_rows(report) if r["metric"] == "fvd"]
    # The terminal, report.md and report.html show the table and the warning.
    assert "reference set" in out and "warning: FVD from 4 variant and 4 reference" in out
    markdown = (project.path / "reports" / "report.md").read_text()
    assert "| cfg=1.0   | fvd ↓" in markdown and "**Warning:** FVD from 4" in markdown
    assert 'class="set-metrics"' in (project.path / "reports" / "report.html").read_text()
    assert "fvd statistics of variant cfg=7.5 (4 videos): computed" in out
    entries = tensor_entries(project)
    assert len(entries) == 2  # one per distinct set of videos: cfg=1.0's and cfg=7.5's

    again = project.runpytest_subprocess("-p", "no:cacheprovider", "-v", "test_cfg.py")
    again.assert_outcomes(passed=2)
    out = again.stdout.str()
    assert "fvd statistics of variant cfg=7.5 (4 videos): cached" in out
    assert "computed (" not in out
    assert tensor_entries(project) == entries
    assert {(r["study"], r["variant"]): r for r in set_rows(report_of(project))}["cfg", "cfg=1.0"]["value"] == variant[
        "value"
    ]


@pytest.mark.slow
def test_missing_i3d_weights_stop_at_collection(project, monkeypatch, tmp_path):
    monkeypatch.setenv(VARIABLE, str(tmp_path / "absent.pt"))
    project.makepyfile(test_cfg=STUDY)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    out = result.stdout.str() + result.stderr.str()
    assert VARIABLE in out
    assert "passed" not in out.splitlines()[-1]
    assert not list(project.path.rglob("*.safetensors"))  # nothing was generated


def _write_real_videos(folder: Path, count: int, frames: int, size: int) -> None:
    """Real videos in the layouts VideoFolder reads: gif files and folders of PNG frames."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir()
    for index in range(count):
        images = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(frames)]
        if index % 2:
            images[0].save(folder / f"clip{index}.gif", save_all=True, append_images=images[1:], duration=100)
        else:
            (folder / f"clip{index}").mkdir()
            for number, image in enumerate(images):
                image.save(folder / f"clip{index}" / f"frame_{number:04d}.png")


@pytest.mark.slow
@pytest.mark.slow
def test_a_folder_of_real_videos_is_the_reference_set(project):
    _write_real_videos(project.path / "real", count=5, frames=6, size=48)
    project.makepyfile(test_real=REAL)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    rows = {r["variant"]: r for r in set_rows(report_of(project))}
    assert set(rows) == {"cfg=1.0", "cfg=7.5"}
    for row in rows.values():
        # Every variant, the study's reference included, against the real videos.
        assert row["reference"] == "folder real (5 videos)"
        assert (row["n_variant"], row["n_reference"], row["is_reference"]) == (4, 5, False)
        assert row["value"] > 0 and row["low"] <= row["high"]
    assert rows["cfg=1.0"]["value"] != rows["cfg=7.5"]["value"]


def test_a_missing_reference_folder_is_a_collection_error(project):
    project.makepyfile(test_real=REAL)
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    assert "fvd_reference='real' is not a folder" in result.stdout.str() + result.stderr.str()


def _report(value=None, low=None, high=None, *, scored=True):
    set_metrics = {"fvd": {"direction": "lower", "value": value, "low": low, "high": high}} if scored else {}
    return {
        "format": "pytest-ablation-report",
        "version": 3,
        "studies": [
            {"study": "s", "variants": [{"variant": "v", "reference": "r", "metrics": {}, "set_metrics": set_metrics}]}
        ],
        "cases": [{"study": "s", "variant": "v", "nodeid": "t.py::t[v]", "outcome": "passed"}],
        "metrics": {"fvd": {"direction": "lower", "tolerance": 1.0}},
    }


def test_the_gate_judges_fvd_by_its_interval():
    # Lower is better: a regression needs the whole interval above baseline + tolerance.
    def fvd(value, low=None, high=None):
        return SetValue("s", "v", "fvd", "lower", value, low, high)

    assert judge_set("lower", 100.0, fvd(130.0, 90.0, 170.0), 1.0) == "ok"
    assert judge_set("lower", 100.0, fvd(130.0, 102.0, 170.0), 1.0) == "regressed"
    assert judge_set("lower", 100.0, fvd(60.0, 40.0, 98.0), 1.0) == "improved"
    assert judge_set("lower", 0.0, fvd(0.0), 1.0) == "ok"
    assert judge_set("lower", 100.0, fvd(None), 1.0) == "nan"
    rows = judge_reports(_report(100.0, 90.0, 110.0), _report(150.0, 120.0, 180.0))
    assert [(r.metric, r.status) for r in rows] == [("fvd", "regressed")]
    assert "bootstrap interval [120, 180]" in rows[0].reason
    rows = judge_reports(_report(100.0, 90.0, 110.0), _report(scored=False))
    assert [(r.metric, r.status) for r in rows] == [("fvd", "missing")]
