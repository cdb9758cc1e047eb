"""The emulated CUDA device (``cuda_emulation``) is strict where a GPU is, and the project
keeps the device discipline on it: the studies run on an emulated ``cuda:0`` with the numbers
of the CPU. (The plugin's GPU-sensitive tests run on an emulated GPU machine in CI:
``scripts/emulated-gpu-tests``.)"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cuda_emulation import DeviceMismatch, emulated_cuda

from pytest_ablation.metrics.registry import get_metric
from report_files import report_of, result_rows

ROOT = Path(__file__).resolve().parent.parent
GPU_MACHINE = ROOT / "tests" / "gpu_machine"


# -- the emulation is strict ---------------------------------------------------------------
def test_a_cuda_tensor_reports_cuda_and_computes_as_on_the_cpu():
    torch.manual_seed(0)
    a, b = torch.randn(3, 4), torch.randn(4, 2)
    with emulated_cuda():
        assert torch.cuda.is_available() and torch.cuda.device_count() == 1
        x, y = a.to("cuda"), b.cuda()
        out = x @ y
        assert out.device == torch.device("cuda", 0) and out.is_cuda
        torch.testing.assert_close(out.cpu(), a @ b, rtol=0, atol=0)
        assert (x + torch.tensor(1.0)).device.type == "cuda"  # a CPU scalar is allowed
    assert not torch.cuda.is_available() or torch.version.cuda is not None


@pytest.mark.parametrize(
    "mix",
    [
        lambda x: x + torch.ones(3),
        lambda x: torch.cat([x, torch.ones(3)]),
        lambda x: torch.ones(2, 3) @ x,
        lambda x: torch.nn.functional.linear(x, torch.ones(2, 3)),
        lambda x: torch.where(torch.ones(3, dtype=torch.bool), x, torch.zeros(3)),
    ],
)
def test_mixing_a_cpu_tensor_into_a_cuda_operation_fails_as_on_a_gpu(mix):
    with emulated_cuda():
        x = torch.ones(3, device="cuda")
        with pytest.raises(DeviceMismatch, match="cpu and cuda:0"):
            mix(x)


def test_a_cpu_generator_cannot_draw_on_the_gpu():
    g = torch.Generator().manual_seed(0)
    with emulated_cuda():
        with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator"):
            torch.randn(3, generator=g, device="cuda")
        x = torch.empty(3, device="cuda")
        with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator"):
            x.normal_(generator=g)
        # The project's way: draw on the CPU, then move.
        assert torch.randn(3, generator=g).to("cuda").device.type == "cuda"


def test_numpy_needs_the_host():
    with emulated_cuda():
        x = torch.ones(3, device="cuda")
        with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
            x.numpy()
        with pytest.raises(TypeError, match="can't convert cuda:0"):
            np.asarray(x)
        assert x.cpu().numpy().tolist() == [1.0, 1.0, 1.0]
        assert x.tolist() == [1.0, 1.0, 1.0] and float(x[0]) == 1.0


def test_memory_counts_live_tensors_and_runs_out_at_the_limit():
    with emulated_cuda(memory=4096):
        x = torch.zeros(512, device="cuda")  # 2048 bytes
        view = x[:10]
        assert torch.cuda.memory_allocated() == 2048
        with pytest.raises(torch.cuda.OutOfMemoryError, match="Tried to allocate 4096 bytes"):
            torch.zeros(1024, device="cuda")
        del x
        gc.collect()
        assert torch.cuda.memory_allocated() == 2048  # the view keeps the storage
        del view
        gc.collect()
        assert torch.cuda.memory_allocated() == 0
        assert torch.cuda.max_memory_allocated() == 2048
        torch.cuda.reset_peak_memory_stats()
        assert torch.cuda.max_memory_allocated() == 0


def test_a_device_beyond_the_gpus_is_refused():
    with emulated_cuda(devices=2):
        assert torch.ones(1, device="cuda:1").device == torch.device("cuda", 1)
        with pytest.raises(RuntimeError, match="invalid device ordinal"):
            torch.ones(1, device="cuda:2")


# -- the project on the emulated GPU --------------------------------------------------------
def gpu_machine_environment(devices: int = 1) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(GPU_MACHINE), str(ROOT / "tests")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["EMULATED_CUDA_DEVICES"] = str(devices)
    return env


@pytest.mark.slow
def test_a_process_on_the_gpu_machine_sees_its_gpus():
    done = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.device_count(), torch.ones(1, device='cuda').device)"],
        env=gpu_machine_environment(devices=3),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "cuda:0"]


@pytest.mark.slow
def test_the_studies_run_on_an_emulated_gpu_with_the_cpus_numbers(tmp_path):
    # Every study, every operation on the strict device: any mixing of devices, CPU
    # generator on the GPU or numpy of a device tensor fails a case. The numbers are the
    # CPU's: the emulation computes on the CPU, so a difference is a different code path.
    def run(name, *options):
        reports = tmp_path / name
        command = [
            sys.executable,
            "-m",
            "pytest",
            "ablations/",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            f"--ablation-profile={GPU_MACHINE / 'emulated-gpu.toml'}",
            f"--ablation-report-dir={reports}",
            f"--ablation-cache-dir={reports / 'cache'}",
            *options,
        ]
        done = subprocess.run(
            command, cwd=ROOT, env=gpu_machine_environment(), capture_output=True, text=True, timeout=1200
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        return report_of(reports / "report.json")

    gpu = run("gpu", "--ablation-devices=cuda:0")
    cpu = run("cpu", "--ablation-devices=cpu")
    assert [w["device"] for w in gpu["environment"]["workers"].values()] == ["cuda:0"]
    # The report says which GPU, as the machine describes it; the CPU run names none.
    assert [w["gpu"]["name"] for w in gpu["environment"]["workers"].values()] == ["Emulated CUDA device 0"]
    assert [w["gpu"] for w in cpu["environment"]["workers"].values()] == [None]

    def values(report):
        return {(r["study"], r["variant"], r["metric"]): r["value"] for r in result_rows(report)}

    gpu_values, cpu_values = values(gpu), values(cpu)
    assert gpu_values.keys() == cpu_values.keys() and len(gpu_values) > 20
    mismatches = [
        (key, gpu_values[key], value)
        for key, value in cpu_values.items()
        if gpu_values[key] != pytest.approx(value, **SAME_NUMBERS.get(key[2], ROUNDING))
    ]
    assert not mismatches, mismatches

    # The videos themselves: each one the GPU made is one the CPU made, up to the rounding of
    # a float to a uint8 level (the emulation's operations are the CPU's, but not always its
    # kernels: a torch-function mode turns off fused paths such as nn.MultiheadAttention's).
    gpu_videos, cpu_videos = stored_frames(tmp_path / "gpu"), stored_frames(tmp_path / "cpu")
    assert len(gpu_videos) == len(cpu_videos) > 20
    unmatched = list(cpu_videos)
    for frames in gpu_videos:
        twin = next(
            (
                i
                for i, other in enumerate(unmatched)
                if other.shape == frames.shape and int((other - frames).abs().max()) <= 1
            ),
            None,
        )
        assert twin is not None, "a video made on cuda:0 differs from every CPU video by > 1 level"
        unmatched.pop(twin)


# Scores of smooth functions of the frames agree to 1e-4; DIS optical flow on uint8 frames is
# not smooth: a pixel one level off moves the top 5 % of flow vectors that dynamic_degree
# averages (measured: up to 1.5 % apart). It is compared within its gate tolerance, the
# smallest motion change dynamic_degree's spec counts as worth mentioning.
ROUNDING = {"rel": 1e-4, "abs": 1e-5}
SAME_NUMBERS = {"dynamic_degree": {"rel": 0.0, "abs": get_metric("dynamic_degree").tolerance}}


def stored_frames(reports: Path) -> list[torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted((reports / "cache").glob("v*/videos/*/*.safetensors"))
    return [load_file(path)["frames"].int() for path in files]
