"""Runs across xdist workers: devices, model loads, identical reports."""

import json
import os
from pathlib import Path

import pytest

from .conftest import lines
from report_files import report_of, result_rows


def scheduling_free(report):
    """The parts of a report that must not depend on how the run was scheduled."""
    return {"studies": report["studies"], "results": result_rows(report), "profile": report["profile"]}


@pytest.mark.slow
def test_report_is_identical_between_one_and_two_workers(toy, second_study):
    toy.makepyfile(test_steady=second_study)
    single = toy.runpytest_subprocess("-n", "0", "--ablation-no-cache")
    single.assert_outcomes(passed=5)
    one = report_of(toy)
    double = toy.runpytest_subprocess("-n", "2", "--ablation-no-cache")
    double.assert_outcomes(passed=5)
    two = report_of(toy)
    assert json.dumps(scheduling_free(one), sort_keys=False) == json.dumps(scheduling_free(two), sort_keys=False)
    assert sorted(two["environment"]["workers"]) == ["gw0", "gw1"]


@pytest.mark.slow
def test_studies_sharing_a_model_share_a_worker(toy, second_study):
    toy.makepyfile(test_steady=second_study)
    toy.runpytest_subprocess("-n", "2").assert_outcomes(passed=5)
    loads = lines(Path(os.environ["TOY_LOAD_LOG"]))
    assert len(loads) == 1  # both studies use the toy model through `flicker`: one worker, one load
    workers = report_of(toy)["environment"]["workers"]
    assert sorted(w["loads"].get("toy", 0) for w in workers.values()) == [0, 1]
    assert all(w["threads"] == 1 for w in workers.values())


@pytest.mark.slow
def test_with_dist_load_each_worker_loads_a_model_at_most_once(toy, second_study):
    toy.makepyfile(test_steady=second_study)
    toy.runpytest_subprocess("-n", "2", "--dist", "load").assert_outcomes(passed=5)
    pids = [line.split()[0] for line in lines(Path(os.environ["TOY_LOAD_LOG"]))]
    assert len(pids) == len(set(pids)) >= 1


@pytest.mark.slow
def test_workers_get_devices_indexing_into_cuda_visible_devices(toy, second_study):
    toy.makepyfile(test_steady=second_study)
    env = {"SIMULATED_GPUS": "8", "CUDA_VISIBLE_DEVICES": "3,5,6,7"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = toy.runpytest_subprocess("-n", "2", "--dist", "load", "--ablation-devices=cuda:1,cuda:3")
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    result.assert_outcomes(passed=5)
    workers = report_of(toy)["environment"]["workers"]
    assert {name: (w["device"], w["physical_gpu"]) for name, w in workers.items()} == {
        "gw0": ("cuda:1", "5"),
        "gw1": ("cuda:3", "7"),
    }
    devices = sorted(line.split()[1] for line in lines(Path(os.environ["TOY_LOAD_LOG"])))
    assert devices == ["cuda:1", "cuda:3"]


@pytest.mark.slow
def test_auto_workers_follow_the_gpus(toy, monkeypatch):
    monkeypatch.setenv("SIMULATED_GPUS", "3")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    result = toy.runpytest_subprocess("-n", "auto", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*3 workers*"])
    workers = report_of(toy)["environment"]["workers"]
    assert sorted(w["device"] for w in workers.values()) == ["cuda:0", "cuda:1", "cuda:2"]


@pytest.mark.slow
def test_auto_workers_without_gpus_use_the_cores(toy):
    result = toy.runpytest_subprocess("-n", "auto")
    cores = len(os.sched_getaffinity(0))
    result.stdout.fnmatch_lines([f"*{cores} worker*"])
