"""GPUs as torch reports them, with no hook of the project's: detection, `auto`, `cuda:N`,
`-n auto`, CUDA_VISIBLE_DEVICES, and several workers on one GPU.

torch's CUDA answers are faked in the subprocess runs (``fake_cuda`` in conftest.py): the
plugin's default ``pytest_ablation_visible_gpus`` must find the GPUs through them.
"""

import os
from pathlib import Path

import pytest

from .conftest import lines
from report_files import report_of


@pytest.fixture
def gpus(toy, monkeypatch, tmp_path):
    def machine(count, visible=None):
        monkeypatch.setenv("SIMULATED_GPUS", str(count))
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        return toy

    monkeypatch.setenv("TOY_DEVICE_LOG", str(tmp_path / "logs" / "devices.txt"))
    return machine


def workers_of(pytester):
    report = report_of(pytester)
    return report["environment"]["workers"]


def selected_devices():
    return sorted(line.split()[1] for line in lines(Path(os.environ["TOY_DEVICE_LOG"])))


def test_the_conftest_does_not_describe_the_gpus(toy):
    assert "pytest_ablation_visible_gpus" not in (toy.path / "conftest.py").read_text()


@pytest.mark.slow
def test_auto_uses_the_first_gpu_torch_reports(gpus):
    toy = gpus(2)
    toy.runpytest_subprocess().assert_outcomes(passed=3)
    assert workers_of(toy)["main"]["device"] == "cuda:0"
    assert set(selected_devices()) == {"0"}
    assert {line.split()[1] for line in lines(Path(os.environ["TOY_LOAD_LOG"]))} == {"cuda:0"}


@pytest.mark.slow
def test_an_explicit_gpu_is_selected_before_models_load(gpus):
    toy = gpus(2)
    toy.runpytest_subprocess("--ablation-devices=cuda:1").assert_outcomes(passed=3)
    assert selected_devices() == ["1"]
    assert workers_of(toy)["main"]["physical_gpu"] == "1"


@pytest.mark.slow
def test_a_gpu_beyond_torchs_count_is_refused_at_start_up(gpus):
    result = gpus(2).runpytest_subprocess("--ablation-devices=cuda:2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ablation-devices: cuda:2 is beyond the 2 visible GPUs*0..1*"])
    assert not Path(os.environ["TOY_LOAD_LOG"]).exists()


@pytest.mark.slow
def test_without_gpus_auto_is_the_cpu(gpus):
    toy = gpus(0)
    toy.runpytest_subprocess().assert_outcomes(passed=3)
    assert workers_of(toy)["main"]["device"] == "cpu"
    assert selected_devices() == []


@pytest.mark.slow
def test_n_auto_is_one_worker_per_visible_gpu_remapped_through_cuda_visible_devices(gpus):
    toy = gpus(8, visible="4,6,7")
    result = toy.runpytest_subprocess("-n", "auto", "--dist", "load")
    result.stdout.fnmatch_lines(["*3 workers*"])
    result.assert_outcomes(passed=3)
    workers = workers_of(toy)
    assert {name: (w["device"], w["physical_gpu"]) for name, w in workers.items()} == {
        "gw0": ("cuda:0", "4"),
        "gw1": ("cuda:1", "6"),
        "gw2": ("cuda:2", "7"),
    }


@pytest.mark.slow
def test_one_gpu_shared_by_two_workers(gpus):
    toy = gpus(1)
    result = toy.runpytest_subprocess("-n", "auto", "--dist", "load", "--ablation-devices=cuda:0,cuda:0")
    result.stdout.fnmatch_lines(["*2 workers*"])
    result.assert_outcomes(passed=3)
    assert sorted(w["device"] for w in workers_of(toy).values()) == ["cuda:0", "cuda:0"]
    assert selected_devices() == ["0", "0"]


@pytest.mark.slow
def test_a_worker_that_cannot_see_its_gpu_says_so(toy, monkeypatch):
    # The plugin is told of a GPU (a hook, as for a machine torch cannot query) that torch
    # cannot see: the test fails with the device and what the worker sees, not a CUDA trace.
    toy.makeconftest(
        (toy.path / "conftest.py").read_text() + "\n\ndef pytest_ablation_visible_gpus(config):\n    return ['7']\n"
    )
    monkeypatch.setenv("SIMULATED_GPUS", "0")
    result = toy.runpytest_subprocess()
    result.assert_outcomes(errors=3)  # at set-up, before any model loads
    result.stdout.fnmatch_lines(["*this process was given cuda:0 but sees 0 GPUs*"])


@pytest.mark.slow
def test_each_case_starts_its_own_peak_memory_count(gpus, monkeypatch, tmp_path):
    # The out-of-memory message reports the peak of the test that failed: the peak count of
    # the worker's GPU starts again before each case, not once per process.
    log = tmp_path / "logs" / "peaks.txt"
    monkeypatch.setenv("TOY_PEAK_LOG", str(log))
    toy = gpus(2)
    toy.runpytest_subprocess("--ablation-devices=cuda:1").assert_outcomes(passed=3)
    assert [line.split()[1] for line in lines(log)] == ["cuda:1"] * 3


KILLS_ITS_GPU_WORKER_ONCE = """
import os

import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickering"])
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0, 1.5], ids=lambda s: f"s={s}")
def test_flicker(strength, flicker, ablation, ablation_device):
    done = os.environ["KILLED_ONCE"]
    if ablation_device == "cuda:1" and not os.path.exists(done):
        open(done, "w").close()
        os._exit(1)  # the worker on cuda:1 dies
    ablation.run(flicker, strength=strength)
"""


@pytest.mark.slow
def test_a_worker_started_in_place_of_a_crashed_one_takes_its_gpu(gpus, monkeypatch, tmp_path):
    # Dealt round-robin by its new id (gw2), the replacement would land on cuda:0, which gw0
    # is using; it takes the device the crashed worker left.
    toy = gpus(2)
    toy.makepyfile(test_flicker=KILLS_ITS_GPU_WORKER_ONCE)
    monkeypatch.setenv("KILLED_ONCE", str(tmp_path / "killed"))
    result = toy.runpytest_subprocess("-n", "2", "--dist", "load", "--max-worker-restart", "1")
    result.stdout.fnmatch_lines(["*replacing crashed worker gw1*"])
    assert (tmp_path / "killed").exists()
    workers = workers_of(toy)
    assert {name: w["device"] for name, w in workers.items()} == {"gw0": "cuda:0", "gw2": "cuda:1"}
    # Each GPU worker computes its CPU side with its share of the cores, not all of them.
    cores = len(os.sched_getaffinity(0))
    assert {w["threads"] for w in workers.values()} == {max(1, cores // 2)}
