"""A metric with its own weights, through the plugin: missing weights stop the run at
collection, before any model loads; present ones are loaded once and key the scores."""

import os

import pytest

from .conftest import CONFTEST, lines
from report_files import report_of, result_rows

GAIN = """

from pytest_ablation.metrics.weights import WeightFile, load_once, register_weight_file

register_weight_file(WeightFile(name="brightness-gain", variable="BRIGHTNESS_GAIN_WEIGHTS",
                                description="the brightness gain checkpoint"))


def _load_gain(path, device):
    with open(os.environ["GAIN_LOAD_LOG"], "a") as handle:
        handle.write(f"{device}\\n")
    return float(path.read_text())


def _gained(inp):
    gain = load_once("brightness-gain", inp.device, _load_gain)
    return Score(gain * float(inp.video.mean()))


_add_plugin_test_metrics = pytest_ablation_add_metrics


def pytest_ablation_add_metrics(register):
    _add_plugin_test_metrics(register)
    register(MetricSpec(
        name="gained_brightness", direction="higher", tolerance=0.0, definition="gain x mean",
        source="plugin tests", needs=frozenset(), version="1", evaluate=_gained,
        weights=("brightness-gain",),
    ))
"""

STUDY = """
import pytest


@pytest.mark.ablation("gain", reference="s=0.5", metrics=["mean_brightness", "gained_brightness"])
@pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
def test_gain(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""


def _project(toy, tmp_path, monkeypatch):
    toy.makepyfile(conftest=CONFTEST + GAIN, test_flicker=STUDY)
    monkeypatch.setenv("GAIN_LOAD_LOG", str(tmp_path / "logs" / "gain.txt"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return toy


def _values(toy, metric):
    report = report_of(toy)
    return {row["variant"]: row["value"] for row in result_rows(report) if row["metric"] == metric}


@pytest.mark.slow
def test_missing_weights_stop_the_run_at_collection_naming_the_variable(toy, tmp_path, monkeypatch):
    _project(toy, tmp_path, monkeypatch)
    monkeypatch.delenv("BRIGHTNESS_GAIN_WEIGHTS", raising=False)
    result = toy.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*metrics the selected studies name cannot run on this machine:*",
            "*gained_brightness: the brightness gain checkpoint: weights not found; set "
            "BRIGHTNESS_GAIN_WEIGHTS to the checkpoint's path*",
        ]
    )
    assert lines(tmp_path / "logs" / "loads.txt") == []
    assert lines(tmp_path / "logs" / "generate.txt") == []

    monkeypatch.setenv("BRIGHTNESS_GAIN_WEIGHTS", str(tmp_path / "absent.txt"))
    result = toy.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*gained_brightness: BRIGHTNESS_GAIN_WEIGHTS=*absent.txt* is not a file*"])


@pytest.mark.slow
def test_present_weights_are_loaded_once_and_new_weights_rescore(toy, tmp_path, monkeypatch):
    _project(toy, tmp_path, monkeypatch)
    checkpoint = tmp_path / "gain.txt"
    checkpoint.write_text("2.0")
    monkeypatch.setenv("BRIGHTNESS_GAIN_WEIGHTS", str(checkpoint))
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    brightness, gained = _values(toy, "mean_brightness"), _values(toy, "gained_brightness")
    assert set(gained) == {"s=0.0", "s=0.5"}
    for variant, value in brightness.items():
        assert abs(gained[variant] - 2.0 * value) < 1e-9
    assert lines(tmp_path / "logs" / "gain.txt") == ["cpu"]  # once for the whole run

    # A rerun reads every score from the cache: the gain is not even loaded.
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert lines(tmp_path / "logs" / "gain.txt") == ["cpu"]

    # New weights, same path: the scores that use them are recomputed, the others are not.
    checkpoint.write_text("3.0")
    os.utime(checkpoint, ns=(1, 1))
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert lines(tmp_path / "logs" / "gain.txt") == ["cpu", "cpu"]
    for variant, value in _values(toy, "mean_brightness").items():
        assert value == brightness[variant]
        assert abs(_values(toy, "gained_brightness")[variant] - 3.0 * value) < 1e-9
