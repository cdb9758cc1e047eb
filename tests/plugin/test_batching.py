"""Several samples of a variant per generator call (the profile's batch_size), and an
out-of-memory error that fails one test, not the run."""

import os
import textwrap
from pathlib import Path

from .conftest import lines
from report_files import report_of, result_rows

BATCHED_STUDY = '''
import os

import pytest


class Batched:
    """The flicker generator, with a batch entry point that logs each batch's size."""

    def __init__(self, flicker):
        self.flicker = flicker

    def cache_identity(self):
        return {"batched": self.flicker.cache_identity()}

    def generate(self, request):
        return self.flicker.generate(request)

    def generate_batch(self, requests):
        with open(os.environ["TOY_BATCH_LOG"], "a") as handle:
            handle.write(f"{requests[0].config['strength']} {len(requests)}\\n")
        return [self.flicker.generate(request) for request in requests]


@pytest.fixture
def batched(flicker):
    return Batched(flicker)


@pytest.mark.ablation("batched", reference="s=0.5", metrics=["temporal_flickering", "mean_brightness"])
@pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
def test_batched(strength, batched, ablation):
    ablation.run(batched, strength=strength)
'''


def batched_project(toy, tmp_path, monkeypatch, batch_size):
    toy.makepyfile(test_flicker=BATCHED_STUDY)
    (toy.path / "batched.toml").write_text(
        textwrap.dedent(f"""
        [profile]
        name = "toy-batched"
        extends = "toy.toml"

        [settings]
        batch_size = {batch_size}
    """)
    )
    log = tmp_path / "logs" / f"batches-{batch_size}.txt"
    monkeypatch.setenv("TOY_BATCH_LOG", str(log))
    return log


def values(toy):
    report = report_of(toy)
    return {(r["variant"], r["metric"]): (r["value"], r["reference_value"]) for r in result_rows(report)}


def test_batches_are_fixed_chunks_and_change_no_number(toy, tmp_path, monkeypatch):
    log = batched_project(toy, tmp_path, monkeypatch, 5)
    toy.runpytest("--ablation-profile=batched.toml").assert_outcomes(passed=2)
    # 6 prompts x 2 seeds = 12 samples per variant: chunks of 5, 5 and 2, each variant once
    # (s=0.0's reference is s=0.5, generated once and then read from the cache).
    assert sorted(lines(log)) == sorted(["0.0 5", "0.0 5", "0.0 2", "0.5 5", "0.5 5", "0.5 2"])
    batched_values = values(toy)
    unbatched_log = batched_project(toy, tmp_path, monkeypatch, 1)
    toy.runpytest("--ablation-profile=batched.toml", "--ablation-no-cache").assert_outcomes(passed=2)
    assert lines(unbatched_log) == []  # batch_size 1: one request per call
    assert values(toy) == batched_values  # each sample got its own video, in its place


def test_a_corrupted_entry_remakes_its_whole_batch(toy, tmp_path, monkeypatch):
    log = batched_project(toy, tmp_path, monkeypatch, 4)
    toy.runpytest("--ablation-profile=batched.toml").assert_outcomes(passed=2)
    assert len(lines(log)) == 6
    videos = sorted((toy.path / ".ablation-cache").rglob("videos/*/*.safetensors"))
    assert len(videos) == 24
    videos[0].write_bytes(b"truncated")
    generated_before = len(lines(Path(os.environ["TOY_GENERATE_LOG"])))
    toy.runpytest("--ablation-profile=batched.toml").assert_outcomes(passed=2)
    assert len(lines(log)) == 7 and lines(log)[-1].endswith(" 4")
    assert len(lines(Path(os.environ["TOY_GENERATE_LOG"]))) == generated_before + 4


OUT_OF_MEMORY_STUDY = """
import pytest
import torch


def starving(request):
    if request.config["strength"] == 1.0:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
    return torch.full((request.frames, 3, request.height, request.width), request.config["strength"])


@pytest.mark.ablation("hungry", reference="s=0.5", metrics=["temporal_flickering"])
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0], ids=lambda s: f"s={s}")
def test_hungry(strength, ablation):
    ablation.run(starving, strength=strength)
"""


def test_out_of_memory_fails_that_test_and_the_run_goes_on(toy):
    toy.makepyfile(test_flicker=OUT_OF_MEMORY_STUDY)
    result = toy.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*out of memory on cpu while generating * for hungry s=1.0: models loaded on this worker: "
            "none; peak memory allocated unknown*Tried to allocate 9.00 GiB*",
        ]
    )


SCORING_FAILURE_STUDY = """
import pytest
import torch

from pytest_ablation.metrics.registry import MetricSpec, Score

FAILURES = {
    "oom": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB"),
    "cublas": lambda: RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"),
    "cudnn": lambda: RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a non-contiguous input."),
    "other": lambda: RuntimeError("a bug in the metric"),
}


def pytest_ablation_add_metrics(register):
    def evaluate(inp):
        kind = inp.video.mean().item()
        for name, value in (("oom", 0.25), ("cublas", 0.5), ("cudnn", 0.75), ("other", 1.0)):
            if abs(kind - value) < 0.01:  # stored as 8-bit levels
                raise FAILURES[name]()
        return Score(kind)

    register(MetricSpec(name="greedy", direction="higher", tolerance=0.0, definition="fails by level",
                        source="plugin tests", needs=frozenset(), version="1", evaluate=evaluate))
"""

SCORING_FAILURE_TESTS = """
import pytest
import torch


def flat(request):
    return torch.full((request.frames, 3, request.height, request.width), request.config["level"])


@pytest.mark.ablation("greedy", reference="l=0.0", metrics=["greedy"])
@pytest.mark.parametrize("level", [0.0, 0.25, 0.5, 0.75, 1.0], ids=lambda s: f"l={s}")
def test_greedy(level, ablation):
    ablation.run(flat, level=level)
"""


def test_a_device_failure_while_scoring_fails_that_test_and_the_run_goes_on(toy):
    # Outside the generator (here a metric), running out of memory and cuDNN/cuBLAS failures
    # get the same message as in generation; another error stays the error it is.
    toy.makeconftest((toy.path / "conftest.py").read_text() + SCORING_FAILURE_STUDY)
    toy.makepyfile(test_flicker=SCORING_FAILURE_TESTS)
    result = toy.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*out of memory on cpu while running the variant for greedy l=0.25: *Tried to allocate 3.00 GiB*",
            "*a cuDNN/cuBLAS failure (usually memory) on cpu while running the variant for greedy l=0.5: *CUBLAS_STATUS_ALLOC_FAILED*",
            "*a cuDNN/cuBLAS failure (usually memory) on cpu while running the variant for greedy l=0.75: *CUDNN_STATUS_NOT_SUPPORTED*",
        ]
    )
    text = result.stdout.str()
    assert "RuntimeError: a bug in the metric" in text
    assert "while running the variant for greedy l=1.0" not in text
