"""Weight files of metrics with their own model: found locally or in the hub cache, never
downloaded; what is missing is named; loaded once; identified by content."""

from __future__ import annotations

import pytest

from pytest_ablation.metrics import weights
from pytest_ablation.metrics.weights import WeightFile, WeightsMissing, load_once


@pytest.fixture
def scratch_files(monkeypatch):
    monkeypatch.setattr(weights, "_FILES", dict(weights._FILES))
    monkeypatch.setattr(weights, "_MODELS", {})


def _file(**overrides):
    fields = dict(
        name="gain",
        variable="TEST_GAIN_WEIGHTS",
        description="the gain checkpoint",
        hub=("someone/gain", "gain.bin"),
        extra="vbench",
    )
    fields.update(overrides)
    return WeightFile(**fields)


def test_the_variable_names_the_file(tmp_path, monkeypatch):
    checkpoint = tmp_path / "gain.bin"
    checkpoint.write_bytes(b"2.0")
    monkeypatch.setenv("TEST_GAIN_WEIGHTS", str(checkpoint))
    assert _file().path() == checkpoint
    assert _file().problem() is None and _file().require() == checkpoint
    assert _file().status() == f"gain: present ({checkpoint})"


def test_a_variable_pointing_nowhere_is_named_with_its_value(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_GAIN_WEIGHTS", str(tmp_path / "absent.bin"))
    problem = _file().problem()
    assert problem.startswith("TEST_GAIN_WEIGHTS=") and "absent.bin" in problem
    assert "is not a file" in problem
    with pytest.raises(WeightsMissing, match="TEST_GAIN_WEIGHTS"):
        _file().require()


def test_without_the_variable_the_hub_cache_is_read_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_GAIN_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    problem = _file().problem()
    assert "set TEST_GAIN_WEIGHTS" in problem and "'gain.bin' of 'someone/gain'" in problem
    assert "nothing is downloaded" in problem
    assert _file().status() == "gain: missing (set TEST_GAIN_WEIGHTS)"
    # The hub cache's own layout: refs/main names the snapshot holding the file.
    repo = tmp_path / "hub" / "models--someone--gain"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "gain.bin").write_bytes(b"2.0")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    assert _file().path() == snapshot / "gain.bin"
    assert _file().problem() is None
    assert _file(hub=None).path() is None


def test_a_missing_module_names_the_extra_before_the_weights(tmp_path, monkeypatch):
    checkpoint = tmp_path / "gain.bin"
    checkpoint.write_bytes(b"2.0")
    monkeypatch.setenv("TEST_GAIN_WEIGHTS", str(checkpoint))
    problem = _file(modules=("json", "no_such_module_here")).problem()
    assert "no_such_module_here" in problem and "json" not in problem.split("module(s)")[1].split(",")[0]
    assert 'pip install "pytest-ablation[vbench]"' in problem
    assert _file(modules=("no_such_module_here",)).status() == ("gain: needs module(s) no_such_module_here")


def test_a_model_is_built_once_until_its_file_changes(tmp_path, monkeypatch, scratch_files):
    checkpoint = tmp_path / "gain.bin"
    checkpoint.write_bytes(b"2.0")
    monkeypatch.setenv("TEST_GAIN_WEIGHTS", str(checkpoint))
    weights.register_weight_file(_file())
    builds = []

    def build(path, device):
        builds.append((path, device))
        return float(path.read_text())

    assert load_once("gain", "cpu", build) == 2.0
    assert load_once("gain", "cpu", build) == 2.0
    assert len(builds) == 1
    checkpoint.write_bytes(b"3.5")
    import os

    os.utime(checkpoint, ns=(1, 1))  # a different modification time, as a rewrite has
    assert load_once("gain", "cpu", build) == 3.5
    assert load_once("gain", "meta", build) == 3.5
    assert len(builds) == 3


def test_identity_follows_the_content(tmp_path, monkeypatch, scratch_files):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(b"2.0")
    second.write_bytes(b"2.0")
    monkeypatch.setenv("TEST_GAIN_WEIGHTS", str(first))
    a = _file().identity()
    monkeypatch.setenv("TEST_GAIN_WEIGHTS", str(second))
    assert _file().identity() == a  # same bytes elsewhere: same identity
    second.write_bytes(b"2.5")
    assert _file().identity() != a
    import hashlib

    assert _file().identity()["sha256"] == hashlib.sha256(b"2.5").hexdigest()


def test_registration_refuses_a_different_file_under_a_taken_name(scratch_files):
    weights.register_weight_file(_file())
    weights.register_weight_file(_file())  # the same declaration again is harmless
    with pytest.raises(ValueError, match="'gain' is already registered"):
        weights.register_weight_file(_file(variable="OTHER"))
    with pytest.raises(ValueError, match="unknown weight file 'nope'"):
        weights.weight_file("nope")
    with pytest.raises(TypeError, match="expects a WeightFile"):
        weights.register_weight_file("gain")


def test_every_declared_weight_file_has_a_variable_of_its_own():
    declared = weights.weight_files()
    variables = [w.variable for w in declared]
    assert len(set(variables)) == len(variables)
    for w in declared:
        assert w.variable.startswith("PYTEST_ABLATION_WEIGHTS_"), w
        assert w.description and w.name
