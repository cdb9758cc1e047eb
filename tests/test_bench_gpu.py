"""The GPU benchmark's script runs (on the CPU, at the tiny size) and prints every figure."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_gpu_prints_its_figures_on_the_tiny_size():
    command = [sys.executable, "benchmarks/bench_gpu.py", "--size", "tiny", "--device", "cpu",
               "--steps", "1", "--videos", "2", "--batch", "2", "--repeats", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for method in ("zs2: 4 frames 64x64, 1 steps", "exvideo: 8 frames 64x64, 1 steps"):
        assert method in out
    assert out.count("unet-only") == 2 and out.count("videos/s, x") == 2
    assert "harness " in out and "over the UNet floor" in out


def test_bench_gpu_refuses_a_gpu_it_cannot_see():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--device", "cuda:0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "torch sees no CUDA GPU here" in done.stderr
