"""What a cache key is made of: the code that decides an entry, never the package's version,
so that a release that leaves that code alone keeps every cached video and score."""

import pytest

from pytest_ablation.run import ablation, generation, scoring
from pytest_ablation.run.keys import digest, source_digest


@pytest.fixture
def key_material(monkeypatch):
    """Every value the run digests into a key, as it was digested."""
    seen = []

    def recording(value):
        seen.append(value)
        return digest(value)

    monkeypatch.setattr(ablation, "digest", recording)
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
    assert by_metric["temporal_flickering"] == source_digest(
        flickering, "pytest_ablation.metrics.inputs")
    assert by_metric["mean_brightness"] is not None
    assert by_metric["mean_brightness"] != by_metric["temporal_flickering"]


def test_another_formula_is_another_score_key():
    from dataclasses import replace

    from pytest_ablation.metrics.registry import MetricSpec, Score, get_metric

    def brighter(inp):
        return Score(1.0)

    def darker(inp):
        return Score(0.0)

    spec = MetricSpec(name="b", direction="higher", tolerance=0.1, definition="d", source="s",
                      needs=(), version="1", evaluate=brighter)
    assert scoring.metric_code(spec) != scoring.metric_code(replace(spec, evaluate=darker))
    assert scoring.metric_code(spec) == scoring.metric_code(replace(spec, definition="other"))
    assert scoring.metric_code(get_metric("clip_score")) != scoring.metric_code(
        get_metric("video_quality"))
