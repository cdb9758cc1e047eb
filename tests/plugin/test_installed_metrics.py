"""A metric from an installed package: declared under the ``pytest_ablation.metrics`` entry
points, found without a conftest.

The package is laid out as pip leaves one in site-packages (its module beside a
``.dist-info`` folder with ``entry_points.txt``), in a folder put on ``sys.path``, so that
``importlib.metadata`` finds it as it finds any installed distribution.
"""

import textwrap

import pytest
from report_files import report_of, result_rows

SPEC_MODULE = """
from pytest_ablation.metrics import MetricSpec, Score


def _evaluate(inp):
    # The first frame's mean: a number the study's videos differ in.
    return Score(float(inp.video[0].mean()), (float(inp.video[0].mean()),))


SPEC = MetricSpec(
    name="first_frame_brightness", direction="higher", tolerance=0.0,
    definition="mean pixel value of the first frame", source="frame-metrics test package",
    needs=frozenset(), version="1", evaluate=_evaluate,
)
NOT_A_SPEC = "first_frame_brightness"
CLIP_SCORE = MetricSpec(
    name="clip_score", direction="higher", tolerance=0.0, definition="not CLIP",
    source="frame-metrics test package", needs=frozenset(), version="1", evaluate=_evaluate,
)
"""

STUDY = """
import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["first_frame_brightness"])
@pytest.mark.parametrize("strength", [0.0, 0.5], ids=lambda s: f"s={s}")
def test_flicker(strength, flicker, ablation):
    ablation.run(flicker, strength=strength)
"""


def install(site, monkeypatch, entry_points: str, module: str = SPEC_MODULE) -> None:
    """``frame_metrics`` 0.1 with ``entry_points`` as its entry_points.txt, on sys.path."""
    package = site / "frame_metrics"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(module)
    info = site / "frame_metrics-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: frame-metrics\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def site(tmp_path):
    return tmp_path / "site-packages"


@pytest.mark.slow
def test_an_installed_metric_is_scored_without_a_conftest(toy, site, monkeypatch, capsys):
    install(
        site,
        monkeypatch,
        """
        [pytest_ablation.metrics]
        first_frame_brightness = frame_metrics:SPEC
    """,
    )
    toy.makepyfile(test_flicker=STUDY)
    result = toy.runpytest("test_flicker.py")
    result.assert_outcomes(passed=2)
    report = report_of(toy)
    rows = [r for r in result_rows(report) if r["metric"] == "first_frame_brightness"]
    assert [r["variant"] for r in rows] == ["s=0.0", "s=0.5"]
    assert report["metrics"]["first_frame_brightness"]["source"] == "frame-metrics test package"

    from pytest_ablation.cli.main import main

    assert main(["metrics"]) == 0
    assert "first_frame_brightness  (higher is better" in capsys.readouterr().out


@pytest.mark.parametrize(
    "entry, problem",
    [
        ("first_frame_brightness = frame_metrics:NOT_A_SPEC", "expected a MetricSpec, got str"),
        (
            "brightness = frame_metrics:SPEC",
            "names a MetricSpec called 'first_frame_brightness'; the entry point's name is the metric's",
        ),
        ("clip_score = frame_metrics:CLIP_SCORE", "'clip_score' is a built-in metric"),
        ("first_frame_brightness = frame_metrics.missing:SPEC", "could not be loaded: ModuleNotFoundError"),
    ],
)
def test_a_broken_entry_point_stops_a_study_run_and_no_other(toy, site, monkeypatch, entry, problem):
    install(site, monkeypatch, f"[pytest_ablation.metrics]\n{entry}\n")
    toy.makepyfile(
        test_flicker=STUDY,
        test_plain=("import sys\n\ndef test_plain():\n    assert 'frame_metrics' not in sys.modules\n"),
    )
    studies = toy.runpytest("test_flicker.py")
    assert studies.ret == pytest.ExitCode.USAGE_ERROR
    message = [line for line in studies.stderr.lines if "pytest_ablation.metrics:" in line]
    assert len(message) == 1 and problem in message[0] and "(package frame-metrics)" in message[0]
    # A project's run with no study neither imports the metric package nor stops on it.
    plain = toy.runpytest("test_plain.py")
    plain.assert_outcomes(passed=1)


@pytest.mark.slow
def test_a_conftest_metric_of_the_same_name_wins_over_the_installed_one(toy, site, monkeypatch):
    install(
        site,
        monkeypatch,
        """
        [pytest_ablation.metrics]
        first_frame_brightness = frame_metrics:SPEC
    """,
    )
    toy.makeconftest(
        toy.path.joinpath("conftest.py").read_text()
        + textwrap.dedent("""

        def pytest_ablation_add_metrics(register):
            from pytest_ablation.metrics import MetricSpec, Score

            register(MetricSpec(
                name="first_frame_brightness", direction="lower", tolerance=0.0,
                definition="the project's own", source="the project's conftest",
                needs=frozenset(), version="1", evaluate=lambda inp: Score(1.0, (1.0,)),
            ))
    """)
    )
    toy.makepyfile(test_flicker=STUDY)
    toy.runpytest("test_flicker.py").assert_outcomes(passed=2)
    report = report_of(toy)
    assert report["metrics"]["first_frame_brightness"]["source"] == "the project's conftest"
