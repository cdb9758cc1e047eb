"""The gate and `pytest-ablation compare`: one judgement, no holes.

A crashed, NaN or deleted variant never passes; a deselected one is "not run"; both ways of
gating give the same rows on the same inputs.
"""

import json

import pytest

from pytest_ablation.cli.main import main
from report_files import metric_entries, result_rows

PROBE = """
import math
import os

from pytest_ablation.metrics.registry import MetricSpec, Score


def _value(inp):
    if os.environ.get("PROBE_NAN"):
        return Score(float("nan"))
    return Score(float(inp.video.std()))


def pytest_ablation_add_metrics(register):
    register(MetricSpec(
        name="spread", direction="higher", tolerance=0.05,
        definition="pixel standard deviation", source="gate tests", needs=frozenset(),
        version="1", evaluate=_value,
    ))
"""

MIXED = """
import os

import pytest


@pytest.mark.ablation("mixed", reference="s=0.2", metrics=["spread", "mean_brightness"])
@pytest.mark.parametrize("strength", [0.1, 0.2, 0.3, 0.4], ids=lambda s: f"s={s}")
def test_mixed(strength, flicker, ablation):
    if strength == 0.3 and os.environ.get("MIXED_CRASH"):
        raise RuntimeError("generator bug: tensor on the wrong device")
    if strength == 0.4 and os.environ.get("MIXED_SKIP"):
        pytest.skip("needs a GPU")
    ablation.run(flicker, strength=strength)
"""


@pytest.fixture
def mixed(toy):
    (toy.path / "test_flicker.py").unlink()
    toy.makepyfile(probe=PROBE, test_mixed=MIXED)
    toy.makeini("[pytest]\nablation_profile = toy.toml\naddopts = -p probe\n")
    toy.syspathinsert()
    return toy


def strict_load(path):
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def save_baseline(toy, name="baseline.json", *args):
    result = toy.runpytest(f"--ablation-save-baseline={name}", "test_mixed.py", *args)
    result.assert_outcomes(passed=4)
    return toy.path / name


def gate(toy, *args):
    result = toy.runpytest("--ablation-gate=baseline.json", *args)
    report_path = toy.path / "reports" / "report.json"
    report = strict_load(report_path)
    return result, report, report_path


def rows_of(gate_summary):
    return sorted((r["study"], r["variant"], r["metric"], r["status"], r["reason"]) for r in gate_summary["rows"])


def compare_rows(toy, capsys, report_path, *extra):
    """`pytest-ablation compare --all`: its exit status and the statuses it printed."""
    code = main(["compare", str(toy.path / "baseline.json"), str(report_path), "--all", *extra])
    return code, capsys.readouterr().out


def agree(toy, report, report_path):
    """The in-run gate and `compare` judge the same two files the same way, row by row."""
    from pytest_ablation.results.gate import judge_reports, summarize
    from pytest_ablation.results.report_json import load_report

    again = summarize(
        judge_reports(load_report(toy.path / "baseline.json", what="baseline"), load_report(report_path)),
        "baseline.json",
    )
    assert rows_of(again) == rows_of(report["gate"])
    assert again["failed"] == report["gate"]["failed"]


def test_report_records_every_case_outcome(mixed, monkeypatch):
    monkeypatch.setenv("MIXED_CRASH", "1")
    monkeypatch.setenv("MIXED_SKIP", "1")
    result = mixed.runpytest("test_mixed.py", "-k", "not 0.1")
    result.assert_outcomes(passed=1, failed=1, skipped=1, deselected=1)
    report = strict_load(mixed.path / "reports" / "report.json")
    outcomes = {c["variant"]: (c["outcome"], c["reason"]) for c in report["cases"]}
    assert outcomes["s=0.1"] == ("deselected", "not selected (-k, -m or node ids)")
    assert outcomes["s=0.2"] == ("passed", None)
    assert outcomes["s=0.3"][0] == "error" and "generator bug" in outcomes["s=0.3"][1]
    assert outcomes["s=0.4"] == ("skipped", "needs a GPU")
    assert all(c["nodeid"].startswith("test_mixed.py::test_mixed[") for c in report["cases"])
    assert report["selection"]["paths"] == ["test_mixed.py"]


def test_a_crashed_variant_fails_the_gate_and_compare_alike(mixed, monkeypatch, capsys):
    save_baseline(mixed)
    monkeypatch.setenv("MIXED_CRASH", "1")
    result, report, path = gate(mixed, "test_mixed.py")
    assert result.ret == 1
    crashed = [r for r in report["gate"]["rows"] if r["variant"] == "s=0.3"]
    assert {r["status"] for r in crashed} == {"error"} and len(crashed) == 2
    assert all("generator bug" in r["reason"] for r in crashed)
    result.stdout.fnmatch_lines(["error: mixed s=0.3: *RuntimeError: generator bug*"])
    code, out = compare_rows(mixed, capsys, path)
    assert code == 1 and "error" in out
    agree(mixed, report, path)


def test_compare_uses_the_tolerance_of_a_conftest_metric(mixed, capsys):
    path = save_baseline(mixed)
    baseline = json.loads(path.read_text())
    for _, _variant, metric, entry in metric_entries(baseline):
        if metric == "spread":
            entry["value"] += 0.02  # within the metric's tolerance of 0.05, beyond 0
    path.write_text(json.dumps(baseline))
    result, report, report_path = gate(mixed, "test_mixed.py")
    assert result.ret == 0, result.stdout.str()
    assert report["metrics"]["spread"]["tolerance"] == 0.05
    code, out = compare_rows(mixed, capsys, report_path)
    assert code == 0 and "regressed" not in out
    agree(mixed, report, report_path)
    # With a tolerance of 0 given on the command line, the same entries regress.
    code, out = compare_rows(mixed, capsys, report_path, "--tolerance", "spread=0")
    assert code == 1 and "regressed" in out


def test_a_nan_metric_fails_and_report_json_stays_strict(mixed, monkeypatch, capsys):
    save_baseline(mixed)
    monkeypatch.setenv("PROBE_NAN", "1")
    result, report, path = gate(mixed, "test_mixed.py", "--ablation-no-cache")
    assert result.ret == 1
    spread = [r for r in report["gate"]["rows"] if r["metric"] == "spread"]
    assert len(spread) == 4 and all(r["current"] is None for r in spread)
    # Either the NaN reaches the report (null) and the gate calls it "nan", or the statistics
    # refuse it and the case errors: it fails the gate both ways, with the reason.
    statuses = {r["status"] for r in spread}
    assert statuses in ({"nan"}, {"error"})
    if statuses == {"nan"}:
        assert {r["value"] for r in result_rows(report) if r["metric"] == "spread"} == {None}
    else:
        assert all("finite" in r["reason"] for r in spread)
    assert ": NaN" not in path.read_text()  # strict_load refuses the token too
    assert compare_rows(mixed, capsys, path)[0] == 1
    agree(mixed, report, path)


def test_a_nan_run_saves_no_baseline(mixed, monkeypatch):
    monkeypatch.setenv("PROBE_NAN", "1")
    result = mixed.runpytest("--ablation-save-baseline=nan.json", "test_mixed.py")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["ablation: --ablation-save-baseline: not written: *"])
    assert not (mixed.path / "nan.json").exists()


def test_a_deleted_variant_fails_a_deselected_one_is_not_run(mixed, capsys):
    path = save_baseline(mixed)
    baseline = json.loads(path.read_text())
    study = baseline["studies"][0]
    template = next(v for v in study["variants"] if v["variant"] == "s=0.1")
    study["variants"].append(dict(template, variant="s=0.9", nodeid="test_mixed.py::test_mixed[s=0.9]"))
    path.write_text(json.dumps(baseline))
    result, report, report_path = gate(mixed, "test_mixed.py", "-k", "not 0.4")
    assert result.ret == 1
    status = {(r["variant"], r["metric"]): r["status"] for r in report["gate"]["rows"]}
    assert status[("s=0.9", "spread")] == "deleted"
    assert status[("s=0.4", "spread")] == "not run"
    assert status[("s=0.1", "spread")] == "ok"
    result.stdout.fnmatch_lines(["deleted: mixed s=0.9: test_mixed.py::test_mixed?s=0.9? is no longer in the code*"])
    assert compare_rows(mixed, capsys, report_path)[0] == 1
    agree(mixed, report, report_path)


def test_a_deleted_study_file_fails_but_a_file_not_collected_is_not_run(mixed, capsys):
    mixed.makepyfile(test_other=MIXED.replace('"mixed"', '"other"').replace("test_mixed", "test_other"))
    mixed.runpytest("--ablation-save-baseline=baseline.json").assert_outcomes(passed=8)
    # Only test_mixed.py collected: the other study was not run, which is no failure.
    result, report, _ = gate(mixed, "test_mixed.py")
    assert result.ret == 0, result.stdout.str()
    assert {r["status"] for r in report["gate"]["rows"] if r["study"] == "other"} == {"not run"}
    # The whole folder collected, but test_other.py is gone: its study was deleted.
    (mixed.path / "test_other.py").unlink()
    result, report, path = gate(mixed)
    assert result.ret == 1
    assert {r["status"] for r in report["gate"]["rows"] if r["study"] == "other"} == {"deleted"}
    assert compare_rows(mixed, capsys, path)[0] == 1
    agree(mixed, report, path)


def test_gate_and_compare_agree_on_every_kind_of_case(mixed, monkeypatch, capsys):
    path = save_baseline(mixed)
    baseline = json.loads(path.read_text())
    for _, variant, metric, entry in metric_entries(baseline):
        if variant == "s=0.2" and metric == "mean_brightness":
            entry["value"] += 0.5  # a regression
    path.write_text(json.dumps(baseline))
    mixed.makepyfile(
        test_new="""
        import pytest

        @pytest.mark.ablation("fresh", reference="a", metrics=["spread"])
        @pytest.mark.parametrize("strength", [0.3], ids=["a"])
        def test_fresh(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    """
    )
    monkeypatch.setenv("MIXED_CRASH", "1")
    monkeypatch.setenv("MIXED_SKIP", "1")
    result, report, report_path = gate(mixed, "-k", "not 0.1")
    assert result.ret == 1
    statuses = {(r["study"], r["variant"], r["metric"]): r["status"] for r in report["gate"]["rows"]}
    assert statuses[("mixed", "s=0.1", "spread")] == "not run"
    assert statuses[("mixed", "s=0.2", "mean_brightness")] == "regressed"
    assert statuses[("mixed", "s=0.3", "spread")] == "error"
    assert statuses[("mixed", "s=0.4", "spread")] == "skipped"
    assert statuses[("fresh", "a", "spread")] == "new"
    code, out = compare_rows(mixed, capsys, report_path)
    assert code == 1
    for status in ("not run", "regressed", "error", "skipped", "new"):
        assert status in out
    agree(mixed, report, report_path)


XFAIL_STUDY = """
import os

import pytest


def crash_or_claim(strength):
    return pytest.param(strength, marks=pytest.mark.ablation_xfail("toy-test", reason="random"))


@pytest.mark.ablation("xf", reference="s=0.2", metrics=["mean_brightness"])
@pytest.mark.parametrize("strength", [crash_or_claim(0.1), 0.2], ids=lambda s: f"s={s}")
def test_xf(strength, flicker, ablation):
    result = ablation.run(flicker, strength=strength)
    if strength == 0.1:
        if os.environ.get("XF_CRASH"):
            raise PermissionError(13, "Permission denied", "/models/weights.bin")
        ablation.expect(result, "mean_brightness").above_reference(margin=10.0)
"""


def test_ablation_xfail_expects_a_failed_claim_not_a_crash(toy, monkeypatch):
    toy.makepyfile(test_xf=XFAIL_STUDY)
    toy.runpytest("test_xf.py").assert_outcomes(passed=1, xfailed=1)
    report = strict_load(toy.path / "reports" / "report.json")
    assert {c["variant"]: c["outcome"] for c in report["cases"]} == {"s=0.1": "xfailed", "s=0.2": "passed"}
    monkeypatch.setenv("XF_CRASH", "1")
    result = toy.runpytest("test_xf.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*PermissionError*Permission denied*"])
    report = strict_load(toy.path / "reports" / "report.json")
    crashed = next(c for c in report["cases"] if c["variant"] == "s=0.1")
    assert crashed["outcome"] == "error" and "PermissionError" in crashed["reason"]


def test_two_functions_with_the_same_study_and_variant_stop_the_run(toy):
    toy.makepyfile(
        test_dup="""
        import pytest

        @pytest.mark.ablation("steady", reference="s=0.2", metrics=["mean_brightness"])
        @pytest.mark.parametrize("strength", [0.1, 0.2], ids=lambda s: f"s={s}")
        def test_one(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)

        @pytest.mark.ablation("steady", reference="s=0.2", metrics=["mean_brightness"])
        @pytest.mark.parametrize("strength", [0.2, 0.3], ids=lambda s: f"s={s}")
        def test_two(strength, flicker, ablation):
            ablation.run(flicker, strength=strength)
    """
    )
    result = toy.runpytest("test_dup.py")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid ablation study:",
            "*study 'steady' variant 's=0.2' is defined by test_dup.py::test_one?s=0.2? and "
            "test_dup.py::test_two?s=0.2?; a study's variant ids must be unique*",
        ]
    )


def test_an_empty_shard_writes_its_report_and_passes(mixed, capsys):
    # Four tests in five shards: the fifth has nothing to run.
    result = mixed.runpytest("test_mixed.py", "--ablation-shard=5/5", "--ablation-report-dir=s5")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*shard 5/5: nothing to run*"])
    empty = strict_load(mixed.path / "s5" / "report.json")
    assert empty["shard"] == {"index": 5, "count": 5} and result_rows(empty) == []
    assert {c["outcome"] for c in empty["cases"]} == {"deselected"}
    assert {c["reason"] for c in empty["cases"]} == {"on another shard than 5/5"}
    for index in range(1, 5):
        mixed.runpytest(
            "test_mixed.py", f"--ablation-shard={index}/5", f"--ablation-report-dir=s{index}"
        ).assert_outcomes(passed=1, deselected=3)
    assert (
        main(["merge", *(str(mixed.path / f"s{i}/report.json") for i in range(1, 6)), "-o", str(mixed.path / "merged")])
        == 0
    )
    merged = strict_load(mixed.path / "merged" / "report.json")
    assert {c["outcome"] for c in merged["cases"]} == {"passed"}
    capsys.readouterr()


def test_a_version_1_baseline_still_gates(mixed, capsys):
    path = save_baseline(mixed)
    old = json.loads(path.read_text())
    old["version"] = 1
    for key in ("cases", "selection"):
        old.pop(key)
    old["results"] = result_rows(old)  # version 1 repeated each comparison as a row
    path.write_text(json.dumps(old))
    result, report, report_path = gate(mixed, "test_mixed.py")
    assert result.ret == 0, result.stdout.str()
    assert compare_rows(mixed, capsys, report_path)[0] == 0
    # A version-1 report as the *current* one says nothing of its cases: compare refuses it.
    assert main(["compare", str(report_path), str(path)]) == 2
    assert "does not record its cases" in capsys.readouterr().err
