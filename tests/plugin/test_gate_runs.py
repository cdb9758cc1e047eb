"""Saving a baseline and gating a run against it."""

import json

import pytest
from report_files import metric_entries, report_of


def save(toy, name="baseline.json"):
    toy.runpytest(f"--ablation-save-baseline={name}").assert_outcomes(passed=3)
    return toy.path / name


def test_gate_passes_against_its_own_baseline(toy):
    save(toy)
    result = toy.runpytest("--ablation-gate=baseline.json")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*ablation gate*", "baseline *baseline.json: 4 ok, 2 info" if False else "baseline *baseline.json: *ok*"]
    )


def test_gate_fails_on_a_regression_with_a_table(toy):
    path = save(toy)
    baseline = json.loads(path.read_text())
    for _, variant, metric, entry in metric_entries(baseline):
        if variant == "s=0.0" and metric == "temporal_flickering":
            entry["value"] += 0.1  # the baseline was better than this run
    path.write_text(json.dumps(baseline))
    result = toy.runpytest("--ablation-gate=baseline.json")
    result.assert_outcomes(passed=3)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ablation gate*",
            "baseline *: 1 regressed*",
            "*flicker*s=0.0*temporal_flickering*regressed*1.1*1*-0.1*0.002*",
        ]
    )
    report = report_of(toy)
    assert report["gate"]["failed"] is True


def test_ini_tolerance_overrides_the_default(toy):
    path = save(toy)
    baseline = json.loads(path.read_text())
    for _, _variant, metric, entry in metric_entries(baseline):
        if metric == "temporal_flickering":
            entry["value"] += 0.05
    path.write_text(json.dumps(baseline))
    toy.makeini("[pytest]\nablation_profile = toy.toml\nablation_tolerances =\n    temporal_flickering = 0.1\n")
    assert toy.runpytest("--ablation-gate=baseline.json").ret == 0


def test_deselected_entries_are_not_run_not_failed(toy):
    save(toy)
    result = toy.runpytest("--ablation-gate=baseline.json", "-k", "0.0")
    result.assert_outcomes(passed=1, deselected=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["baseline *: * not run*", "not run (not selected, not failed): flicker s=0.5, flicker s=1.0"]
    )


def test_a_metric_missing_from_a_selected_variant_fails(toy):
    path = save(toy)
    baseline = json.loads(path.read_text())
    first = baseline["studies"][0]["variants"][0]["metrics"]
    first["video_quality"] = {**next(iter(first.values())), "direction": "higher"}
    path.write_text(json.dumps(baseline))
    result = toy.runpytest("--ablation-gate=baseline.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*flicker*s=0.0*video_quality*missing*"])


def test_lower_is_better_metric_regresses_upwards(toy):
    toy.makeconftest(
        toy.path.joinpath("conftest.py")
        .read_text()
        .replace('name="mean_brightness", direction="higher"', 'name="mean_brightness", direction="lower"')
    )
    path = save(toy)
    baseline = json.loads(path.read_text())
    for _, variant, metric, entry in metric_entries(baseline):
        if metric == "mean_brightness" and variant == "s=1.0":
            entry["value"] -= 0.01
    path.write_text(json.dumps(baseline))
    result = toy.runpytest("--ablation-gate=baseline.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*s=1.0*mean_brightness*regressed*"])


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "--ablation-gate: baseline *missing.json does not exist"),
        ('{"format": "pytest-ablation-report", "resu', "--ablation-gate: baseline * is not valid JSON*truncated*"),
        ('{"hello": 1}', "--ablation-gate: baseline * is not a pytest-ablation report*"),
        (
            '{"format": "pytest-ablation-report", "version": 99, "results": []}',
            "--ablation-gate: baseline * has report version 99*regenerate it*",
        ),
        (
            '{"format": "pytest-ablation-report", "version": 1, "studies": [], "results": [{"study": "s"}]}',
            "--ablation-gate: baseline * does not match report.json's schema: results[[]0[]] (s): the "
            "field 'variant' is missing",
        ),
    ],
)
def test_bad_baseline_is_a_usage_error_before_any_model_loads(toy, content, message):
    name = "missing.json" if content is None else "bad.json"
    if content is not None:
        (toy.path / name).write_text(content)
    result = toy.runpytest(f"--ablation-gate={name}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: " + message])
    import os

    assert not os.path.exists(os.environ["TOY_LOAD_LOG"])


def test_a_baseline_of_another_profile_is_refused_before_any_model_loads(toy):
    import os

    save(toy)
    os.remove(os.environ["TOY_LOAD_LOG"])
    other = toy.path / "other.toml"
    other.write_text((toy.path / "toy.toml").read_text().replace('name = "toy-test"', 'name = "toy-other"'))
    result = toy.runpytest("--ablation-gate=baseline.json", "--ablation-profile=other.toml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "ERROR: --ablation-gate: *baseline.json: the baseline was made on profile 'toy-test' and this "
            "report on profile 'toy-other'*--ablation-profile toy-other --ablation-save-baseline FILE*"
        ]
    )
    assert not os.path.exists(os.environ["TOY_LOAD_LOG"])


def test_a_failed_gate_shows_how_the_two_runs_were_made_differently(toy):
    path = save(toy)
    baseline = json.loads(path.read_text())
    for _, variant, metric, entry in metric_entries(baseline):
        if variant == "s=0.0" and metric == "temporal_flickering":
            entry["value"] += 0.1
    baseline["profile"]["settings"]["steps"] = 2
    path.write_text(json.dumps(baseline))
    result = toy.runpytest("--ablation-gate=baseline.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["the baseline and this report were made differently:", "  profile.settings.steps: 2 -> 1"]
    )
