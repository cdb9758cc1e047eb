"""The installed plugin in a project that has no ablation study: it imports nothing heavy,
writes nothing, and leaves xdist's scheduling and worker count as they would be without it.
The toy study project is the counterpart: there, the plugin takes over as documented."""

import json
import os
import re
from pathlib import Path

import pytest

PLUGINS_OFF = ("-p", "no:ablation", "-p", "no:ablation-methods", "-p", "no:ablation-toyworld")
HEAVY = ("torch", "numpy", "diffusers", "open_clip", "transformers")

# Each process (the controller and every worker) logs what it imported and, on the
# controller, which scheduler xdist ended up with: a real xdist run, observed from outside.
OBSERVER = f"""
import json, os, sys

import pytest

_schedulers = []


@pytest.hookimpl(hookwrapper=True)
def pytest_xdist_make_scheduler(config, log):
    outcome = yield
    _schedulers.append(outcome.get_result())


def pytest_unconfigure(config):
    scheduler = _schedulers[0] if _schedulers else None
    scheduler = getattr(scheduler, "chosen", scheduler)
    entry = {{
        "process": getattr(config, "workerinput", {{}}).get("workerid", "controller"),
        "heavy": [name for name in {HEAVY!r} if name in sys.modules],
        "scheduler": type(scheduler).__name__ if scheduler is not None else None,
    }}
    with open(os.environ["OBSERVED_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\\n")
"""


@pytest.fixture
def observed(monkeypatch, tmp_path):
    log = tmp_path / "observed.jsonl"
    monkeypatch.setenv("OBSERVED_LOG", str(log))

    def entries():
        found = [json.loads(line) for line in log.read_text().splitlines()]
        log.unlink()
        return found

    return entries


@pytest.fixture
def plain(pytester):
    """A project of someone else's: four ordinary tests, no study, no ablation settings."""
    pytester.makepyfile(test_plain="\n".join(f"def test_{n}():\n    assert {n} + 1 == {n + 1}\n" for n in range(4)))
    pytester.makepyfile(conftest=OBSERVER)
    return pytester


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two workers"])
@pytest.mark.slow
def test_no_process_of_a_plain_run_imports_torch(plain, observed, workers):
    plain.runpytest_subprocess("-p", "no:cacheprovider", *workers).assert_outcomes(passed=4)
    entries = observed()
    assert len(entries) == (3 if workers else 1)
    assert {entry["process"]: entry["heavy"] for entry in entries} == {entry["process"]: [] for entry in entries}


@pytest.mark.slow
def test_a_plain_run_writes_nothing(plain, observed):
    # What the other installed plugins write (pytest-benchmark's folder, bytecode) is made by
    # the run without the plugin first; the run with it must add nothing.
    def written():
        # pytester's own files (its captured output and each run's basetemp) aside
        return sorted(
            str(p.relative_to(plain.path))
            for p in plain.path.rglob("*")
            if p.relative_to(plain.path).parts[0] not in ("stdout", "stderr")
            and not p.relative_to(plain.path).parts[0].startswith("runpytest-")
        )

    plain.runpytest_subprocess("-p", "no:cacheprovider", *PLUGINS_OFF).assert_outcomes(passed=4)
    before = written()
    plain.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)
    assert written() == before


@pytest.mark.slow
def test_n_without_dist_schedules_a_plain_project_as_xdist_does(plain, observed):
    result = plain.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *PLUGINS_OFF)
    result.assert_outcomes(passed=4)
    without_plugin = {e["scheduler"] for e in observed() if e["process"] == "controller"}
    plain.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2").assert_outcomes(passed=4)
    with_plugin = {e["scheduler"] for e in observed() if e["process"] == "controller"}
    assert without_plugin == with_plugin == {"LoadScheduling"}


@pytest.mark.slow
def test_an_explicit_dist_is_left_alone(plain, observed):
    plain.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile").assert_outcomes(passed=4)
    assert {e["scheduler"] for e in observed() if e["process"] == "controller"} == {"LoadFileScheduling"}


def _worker_count(result) -> int:
    match = re.search(r"created: (\d+)/\d+ workers", result.stdout.str())
    assert match, result.stdout.str()
    return int(match.group(1))


@pytest.mark.slow
def test_n_auto_in_a_plain_project_is_xdists_own_count(plain, observed):
    off = plain.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto", *PLUGINS_OFF)
    # Four GPUs, told through the plugin's own hook (a conftest cannot define it while the
    # plugin is off): the plugin must not make them the worker count of a project without
    # a study, and must not ask torch.
    conftest = plain.path / "conftest.py"
    conftest.write_text(
        conftest.read_text() + "\n\ndef pytest_ablation_visible_gpus(config):\n    return ['0', '1', '2', '3']\n"
    )
    on = plain.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto")
    assert _worker_count(on) == _worker_count(off) != 4
    assert all(entry["heavy"] == [] for entry in observed() if entry["process"] == "controller")


@pytest.mark.slow
def test_n_without_dist_schedules_a_study_by_model(toy, second_study, observed):
    # The counterpart: the same observer in the toy study project, whose tests have a model
    # group, sees the plugin's scheduler chosen.
    toy.makepyfile(test_steady=second_study)
    conftest = toy.path / "conftest.py"
    conftest.write_text(conftest.read_text() + "\n" + OBSERVER)
    toy.runpytest_subprocess("-n", "2").assert_outcomes(passed=5)
    assert {e["scheduler"] for e in observed() if e["process"] == "controller"} == {"ModelGroupScheduling"}
    loads = Path(os.environ["TOY_LOAD_LOG"]).read_text().splitlines()
    assert len(loads) == 1  # both studies' cases went to one worker, which loaded the model once
