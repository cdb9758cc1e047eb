"""The GPU path, on a real GPU: every study on cuda:0, the CPU's numbers and claims, a GPU
shared by two workers, and the paper-scale architectures in float16.

Run by `scripts/gpu-check` (README: Devices). Each study run is a fresh pytest process, as a
user runs it, with its own cache and report folders.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]

# Metric values on the GPU against the CPU: within each metric's gate tolerance (the
# registry's: 0.5 CLIP points, 0.005 for cosines, 0.002 for flicker and smoothness), i.e.
# what the gate already accepts as the same result; dynamic degree is informational.
INFORMATIONAL_TOLERANCE = 1.0
# Two workers sharing the GPU against one process: the same kernels on the same shapes.
SHARED_GPU_TOLERANCE = 1e-6


def run_studies(tmp_path: Path, name: str, *args: str) -> dict:
    reports = tmp_path / name
    command = [
        sys.executable, "-m", "pytest", "ablations/", "-q", "-p", "no:cacheprovider",
        f"--ablation-report-dir={reports}", f"--ablation-cache-dir={tmp_path / name / 'cache'}", *args,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return json.loads((reports / "report.json").read_text())


def values(report: dict) -> dict:
    return {(r["study"], r["variant"], r["metric"]): r["value"] for r in report["results"]}


def claims(report: dict) -> dict:
    out = {}
    for study in report["studies"]:
        for variant in study["variants"]:
            for claim in variant.get("expectations", []):
                out[(study["study"], variant["variant"], claim["metric"], claim["claim"])] = claim["passed"]
    return out


@pytest.fixture(scope="module")
def cpu_report(tmp_path_factory):
    return run_studies(tmp_path_factory.mktemp("cpu"), "cpu", "--ablation-devices=cpu")


@pytest.fixture(scope="module")
def gpu_report(tmp_path_factory):
    return run_studies(tmp_path_factory.mktemp("gpu"), "gpu", "--ablation-devices=cuda:0")


def test_every_study_runs_on_the_gpu(gpu_report):
    assert {w["device"] for w in gpu_report["environment"]["workers"].values()} == {"cuda:0"}
    assert {s["study"] for s in gpu_report["studies"]} == {
        "zs2-tma", "zs2-noise", "exvideo-identity-conv-inference-time",
        "exvideo-identity-conv-training-time", "exvideo-position"}
    assert all(math.isfinite(v) for v in values(gpu_report).values())


def test_cpu_and_gpu_agree_in_values_and_claims(cpu_report, gpu_report):
    from pytest_ablation.metrics.registry import get_metric

    cpu, gpu = values(cpu_report), values(gpu_report)
    assert cpu.keys() == gpu.keys()
    for key, value in cpu.items():
        spec = get_metric(key[2])
        tolerance = INFORMATIONAL_TOLERANCE if spec.direction == "info" else spec.tolerance
        assert abs(gpu[key] - value) <= tolerance, (key, value, gpu[key], tolerance)
    assert claims(gpu_report) == claims(cpu_report)


def test_two_workers_on_one_gpu_equal_one_process(tmp_path, gpu_report):
    shared = run_studies(tmp_path, "shared", "-n", "2", "--ablation-devices=cuda:0,cuda:0")
    assert sorted(w["device"] for w in shared["environment"]["workers"].values()) == ["cuda:0", "cuda:0"]
    one, two = values(gpu_report), values(shared)
    assert one.keys() == two.keys()
    assert all(abs(one[k] - two[k]) <= SHARED_GPU_TOLERANCE for k in one), {
        k: (one[k], two[k]) for k in one if abs(one[k] - two[k]) > SHARED_GPU_TOLERANCE
    }
    assert claims(shared) == claims(gpu_report)


def test_sd15_architecture_zs2_in_float16_at_512():
    from pytest_ablation.methods.zs2 import ZS2Sampler
    from pytest_ablation.models.paper_scale import build_sd15_architecture

    sd = build_sd15_architecture(device="cuda:0", dtype="float16")
    sampler = ZS2Sampler(sd, frames=8, steps=3, height=512, width=512, progress=False)
    videos = sampler.sample_batch(["a horse galloping", "waves on a shore"],
                                  generators=[torch.Generator().manual_seed(i) for i in range(2)])
    assert [tuple(v.shape) for v in videos] == [(8, 3, 512, 512)] * 2
    assert all(torch.isfinite(v).all() for v in videos)


def test_svd_xt_architecture_exvideo_in_float16_at_576x1024():
    from pytest_ablation.methods.exvideo import ExVideoSampler, extend_unet, scene_image
    from pytest_ablation.models.paper_scale import build_svd_xt_architecture

    svd = build_svd_xt_architecture(device="cuda:0", dtype="float16")
    unet = extend_unet(svd.unet, max_frames=32).eval().requires_grad_(False)
    sampler = ExVideoSampler(svd, unet, decode_chunk_size=8)
    image = scene_image(576, 1024, generator=torch.Generator().manual_seed(0))
    out = sampler(image, frames=32, steps=2, guidance_scale=3.0, seed=0)
    assert tuple(out.video.shape) == (32, 3, 576, 1024)
    assert torch.isfinite(out.video).all()
    assert torch.cuda.max_memory_allocated() < 80 * 2**30
