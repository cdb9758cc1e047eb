"""The GPU benchmark's script runs (on the CPU, at the tiny size) and prints every figure,
each with its dtype; the harness runs in the floor's dtype."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.slow
def test_bench_gpu_prints_its_figures_on_the_tiny_size():
    command = [
        sys.executable,
        "benchmarks/bench_gpu.py",
        "--size",
        "tiny",
        "--device",
        "cpu",
        "--steps",
        "1",
        "--videos",
        "2",
        "--batch",
        "2",
        "--repeats",
        "1",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for method in ("zs2: 4 frames 64x64, 1 steps", "exvideo: 8 frames 64x64, 1 steps"):
        assert method in out
    assert out.count("unet-only") == 2 and out.count("videos/s, x") == 2
    assert "harness " in out and "over the UNet floor" in out
    # On the CPU the default dtype is float32: every figure says so, the harness's included.
    assert out.count("(the floor), float32") == 2 and out.count("peak memory    n/a (CPU), float32") == 2
    assert "harness float32 vs floor float32" in out and "MISMATCH" not in out


@pytest.mark.slow
@pytest.mark.slow
def test_bench_gpu_runs_the_harness_in_the_floors_dtype(tmp_path):
    # bfloat16, not the CPU's float32 default: the harness's models must follow the floor's
    # dtype rather than the model kind's (float32) default.
    out_json = tmp_path / "bench.json"
    command = [
        sys.executable,
        "benchmarks/bench_gpu.py",
        "--size",
        "tiny",
        "--device",
        "cpu",
        "--only",
        "zs2",
        "--dtype",
        "bfloat16",
        "--steps",
        "1",
        "--videos",
        "2",
        "--batch",
        "2",
        "--repeats",
        "1",
        "--json",
        str(out_json),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    floor = re.search(r"unet-only .* \(the floor\), (\w+)", done.stdout)
    harness = re.search(r"harness .*, harness (\w+) vs floor (\w+)", done.stdout)
    assert floor and harness, done.stdout
    assert floor.group(1) == harness.group(1) == harness.group(2) == "bfloat16", done.stdout
    (figures,) = json.loads(out_json.read_text())["figures"]
    assert figures["dtype"] == figures["harness_dtype"] == "bfloat16"
    assert figures["method"] == "zs2" and figures["harness_s"] > 0


def test_bench_gpu_refuses_a_gpu_it_cannot_see():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_gpu.py", "--device", "cuda:0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "torch sees no CUDA GPU here" in done.stderr
