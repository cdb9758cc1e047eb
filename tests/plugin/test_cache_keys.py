"""What a cache key is made of: the code that decides an entry, never the package's version,
so that a release that leaves that code alone keeps every cached video and score."""

from pathlib import Path

import pytest

from pytest_ablation.run import generation, samples, scoring
from pytest_ablation.run.keys import digest, source_digest


@pytest.fixture
def key_material(monkeypatch):
    """Every value the run digests into a key, as it was digested."""
    seen = []

    def recording(value):
        seen.append(value)
        return digest(value)

    monkeypatch.setattr(samples, "digest", recording)
    monkeypatch.setattr(scoring, "digest", recording)
    return seen


@pytest.mark.slow
def test_keys_name_the_code_that_decides_an_entry_and_no_version(toy, key_material):
    import pytest_ablation.metrics.dimensions.temporal_flickering as flickering

    toy.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider").assert_outcomes(passed=3)
    videos = [k for k in key_material if isinstance(k, dict) and k.get("what") == "video"]
    scores = [k for k in key_material if isinstance(k, dict) and k.get("what") == "score"]
    assert videos and scores
    assert all("package" not in key for key in videos + scores)
    # A video: the generator's identity (its code among it) and the core's conversion to
    # stored frames.
    assert {key["stored_as"] for key in videos} == {source_digest(generation.to_uint8)} != {None}
    # A score: the built-in metric's whole module; the conftest's metric its own function.
    by_metric = {key["metric"]: key["metric_code"] for key in scores}
    assert by_metric["temporal_flickering"] == source_digest(flickering, "pytest_ablation.metrics.inputs")
    assert by_metric["mean_brightness"] is not None
    assert by_metric["mean_brightness"] != by_metric["temporal_flickering"]


def test_another_formula_is_another_score_key():
    from dataclasses import replace

    from pytest_ablation.metrics.registry import MetricSpec, Score, get_metric

    def brighter(inp):
        return Score(1.0)

    def darker(inp):
        return Score(0.0)

    spec = MetricSpec(
        name="b",
        direction="higher",
        tolerance=0.1,
        definition="d",
        source="s",
        needs=(),
        version="1",
        evaluate=brighter,
    )
    assert scoring.metric_code(spec) != scoring.metric_code(replace(spec, evaluate=darker))
    assert scoring.metric_code(spec) == scoring.metric_code(replace(spec, definition="other"))
    assert scoring.metric_code(get_metric("clip_score")) != scoring.metric_code(get_metric("video_quality"))


def _digest_as(module, source, folder, monkeypatch):
    """source_digest of ``source`` saved as a top-level module of that name in its own folder."""
    import importlib

    folder.mkdir()
    (folder / f"{module}.py").write_text(source, encoding="utf-8")
    with monkeypatch.context() as patch:
        patch.syspath_prepend(str(folder))
        importlib.invalidate_caches()
        return source_digest(module)


def test_layout_comments_and_docstrings_leave_the_key_alone(tmp_path, monkeypatch):
    original = '''"""Frames to bytes."""
def to_bytes(frames, scale=255):
    # clamp first
    return [min(max(int(f * scale), 0), 255) for f in frames]
'''
    reworded = """def to_bytes(frames, scale = 255):
    '''Another docstring.'''
    return [
        min(max(int(f * scale), 0), 255)   # a different comment
        for f in frames
    ]
"""
    changed = original.replace("255)", "254)")
    keys = [
        _digest_as("frames_to_bytes", source, tmp_path / str(i), monkeypatch)
        for i, source in enumerate([original, reworded, changed])
    ]
    assert None not in keys
    assert keys[0] == keys[1] != keys[2]


def test_a_module_reformatted_by_ruff_keeps_its_key(tmp_path, monkeypatch):
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    source = Path(generation.__file__).read_text(encoding="utf-8")
    formatted = tmp_path / "formatted.py"
    formatted.write_text(source, encoding="utf-8")
    subprocess.run(
        [
            ruff,
            "format",
            "--isolated",
            "--line-length",
            "60",
            "--config",
            "format.quote-style='single'",
            str(formatted),
        ],
        check=True,
        capture_output=True,
    )
    reformatted = formatted.read_text(encoding="utf-8")
    assert reformatted != source
    keys = [
        _digest_as("generation_copy", text, tmp_path / name, monkeypatch)
        for name, text in [("as_shipped", source), ("reformatted", reformatted)]
    ]
    assert None not in keys
    assert keys[0] == keys[1]
