"""The VBench metrics through the plugin: motion_smoothness with the interpolator a profile
selects (its own scores, its own cache keys, a bad setting stopped before any model), and
imaging_quality stopping at collection when pyiqa is absent."""

import importlib.util
import textwrap

import pytest

from .conftest import lines
from report_files import report_of

SMOOTH_PROFILE = """
[profile]
name = "smooth"
extends = "toy.toml"

[settings]
prompts = ["a red circle", "a blue square"]
seeds = 1
frames = 5
height = 32
width = 32
"""

HOLD_INTERPOLATOR = '''
import os


class HoldPrevious:
    """Predicts the middle frame as the earlier of the two: the no-motion baseline."""

    name = "hold-previous"

    def __call__(self, frames_a, frames_b):
        return frames_a.clone()


def make():
    with open(os.environ["INTERP_LOG"], "a") as handle:
        handle.write("made\\n")
    return HoldPrevious()
'''

STUDY = """
import pytest


@pytest.mark.ablation("smooth", reference="s=0.5", metrics=["motion_smoothness"])
@pytest.mark.parametrize("strength", [0.5, 1.0], ids=lambda s: f"s={s}")
def test_smooth(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""


def _project(toy, tmp_path, monkeypatch, interpolator=None):
    profile = SMOOTH_PROFILE
    if interpolator is not None:
        profile += f'\n[metrics.motion_smoothness]\ninterpolator = "{interpolator}"\n'
    (toy.path / "smooth.toml").write_text(textwrap.dedent(profile))
    toy.makepyfile(test_flicker=STUDY, hold_interp=HOLD_INTERPOLATOR)
    toy.makeini("[pytest]\nablation_profile = smooth.toml\n")
    monkeypatch.setenv("INTERP_LOG", str(tmp_path / "logs" / "interp.txt"))
    return toy


def _rows(toy):
    report = report_of(toy)
    (study,) = report["studies"]
    return {v["variant"]: v["metrics"]["motion_smoothness"] for v in study["variants"]}


def _score_files(toy):
    return {p.name for p in (toy.path / ".ablation-cache").glob("*/scores/*/*.json")}


@pytest.mark.slow
@pytest.mark.slow
def test_a_selected_interpolator_gives_its_own_scores_under_its_own_keys(toy, tmp_path, monkeypatch):
    _project(toy, tmp_path, monkeypatch)
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    default = _rows(toy)
    assert {row["details"]["interpolator"] for row in default.values()} == {"flow-midwarp"}
    default_files = _score_files(toy)
    generated = lines(tmp_path / "logs" / "generate.txt")
    assert lines(tmp_path / "logs" / "interp.txt") == []

    _project(toy, tmp_path, monkeypatch, interpolator="hold_interp:make")
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    held = _rows(toy)
    assert {row["details"]["interpolator"] for row in held.values()} == {"hold-previous"}
    assert set(held) == set(default) == {"s=0.5", "s=1.0"}
    for variant in held:
        assert held[variant]["value"] != pytest.approx(default[variant]["value"], abs=1e-4)
    # Same videos (read from the cache, not regenerated), new scores under new keys: one
    # per video, 2 prompts x 1 seed x 2 variants. The factory ran once for the run.
    assert lines(tmp_path / "logs" / "generate.txt") == generated
    held_files = _score_files(toy)
    assert default_files < held_files and len(held_files - default_files) == 4
    assert lines(tmp_path / "logs" / "interp.txt") == ["made"]

    # Back to the default: every score comes from the cache, as first computed.
    _project(toy, tmp_path, monkeypatch)
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert {v: r["value"] for v, r in _rows(toy).items()} == {v: r["value"] for v, r in default.items()}
    assert _score_files(toy) == held_files


@pytest.mark.slow
@pytest.mark.slow
def test_a_built_in_interpolator_is_selected_by_name(toy, tmp_path, monkeypatch):
    _project(toy, tmp_path, monkeypatch, interpolator="linear-blend")
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert {row["details"]["interpolator"] for row in _rows(toy).values()} == {"linear-blend"}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("no_such_module:make", "*metrics.motion_smoothness.interpolator: cannot import module 'no_such_module'*"),
        ("hold_interp:missing", "*metrics.motion_smoothness.interpolator: module 'hold_interp' has no 'missing'*"),
    ],
)
@pytest.mark.slow
def test_a_bad_interpolator_stops_the_run_naming_the_setting(toy, tmp_path, monkeypatch, setting, message):
    _project(toy, tmp_path, monkeypatch, interpolator=setting)
    result = toy.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])
    assert lines(tmp_path / "logs" / "loads.txt") == []
    assert lines(tmp_path / "logs" / "generate.txt") == []


IQ_STUDY = """
import pytest


@pytest.mark.ablation("iq", reference="s=0.5", metrics=["imaging_quality"])
@pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
def test_iq(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""


@pytest.mark.skipif(
    importlib.util.find_spec("pyiqa") is not None, reason="pyiqa is installed here: imaging_quality is available"
)
def test_imaging_quality_without_pyiqa_stops_at_collection_saying_why(toy, tmp_path):
    toy.makepyfile(test_flicker=IQ_STUDY)
    result = toy.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*imaging_quality: MUSIQ*needs the module(s) pyiqa*not installed*"])
    assert "pip install --no-deps pyiqa" in result.stderr.str()
    assert lines(tmp_path / "logs" / "loads.txt") == []


FPS_METRIC = """

_add_toy_metrics = pytest_ablation_add_metrics


def pytest_ablation_add_metrics(register):
    _add_toy_metrics(register)
    register(MetricSpec(
        name="seen_fps", direction="info", tolerance=0.0, definition="the fps a metric sees",
        source="plugin tests", needs=frozenset(), version="1",
        evaluate=lambda inp: Score(float(inp.fps)),
    ))
"""

FPS_STUDY = """
import pytest


@pytest.mark.ablation("fps", reference="s=0.5", metrics=["seen_fps"])
@pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
def test_fps(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""


@pytest.mark.slow
@pytest.mark.slow
def test_metrics_see_the_frame_rate_of_the_videos_settings(toy):
    # dynamic_degree_vbench subsamples by it; the toy profile plays at 8 fps, this study at 12.
    from .conftest import CONFTEST

    at_12 = FPS_STUDY.replace(
        "ablation.run(flicker, strength=strength)", "ablation.run(flicker, strength=strength, fps=12)"
    )
    toy.makepyfile(conftest=CONFTEST + FPS_METRIC, test_flicker=at_12)
    toy.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    report = report_of(toy)
    (study,) = report["studies"]
    assert [v["metrics"]["seen_fps"]["value"] for v in study["variants"]] == [12.0, 12.0]
