"""What a run says about itself: whose video is being made, why a claim failed, why a run
with passing tests exits 1, and which models it loaded."""

import json
import re

import pytest
from report_files import metric_entries, report_of


def section(lines: list[str], title: str) -> str:
    """The lines of one "=== title ===" section of pytest's output, up to the next section:
    whatever other sections a run adds (a warnings summary left by earlier in-process runs)
    stay out of it."""
    header = re.compile(r"^=+ (.+?) =+$")
    inside, kept = False, []
    for line in lines:
        found = header.match(line)
        if found:
            if inside:
                break
            inside = found.group(1) == title
            continue
        if inside:
            kept.append(line)
    return "\n".join(kept)


def test_progress_names_the_reference_when_it_makes_the_references_videos(toy):
    result = toy.runpytest("-v", "test_flicker.py::test_flicker[s=0.0]")
    result.assert_outcomes(passed=1)
    progress = [line for line in result.outlines if "[ablation] flicker" in line]
    # The case s=0.0 makes its own 12 videos, then its reference's (s=0.5), labelled as such.
    assert len(progress) == 24
    assert all(" s=0.0: " in line for line in progress[:12])
    assert all(" s=0.5: " in line for line in progress[12:])


def test_a_failed_claim_shows_its_numbers_without_the_plugins_frames(toy):
    toy.makepyfile(
        test_flicker="""
import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickering"])
@pytest.mark.parametrize("strength", [0.5, 1.0], ids=lambda s: f"s={s}")
def test_flicker(strength, flicker, ablation):
    result = ablation.run(flicker, strength=strength)
    if strength == 1.0:
        ablation.expect(result, "temporal_flickering").above_reference()  # it is below
"""
    )
    result = toy.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    failure = section(result.outlines, "FAILURES")
    assert "ExpectationFailed: flicker: s=1.0 temporal_flickering above_reference: REFUTED" in failure
    assert "expected temporal_flickering of s=1.0 to be above the reference" in failure
    assert "delta" in failure and "95% CI" in failure
    assert "plugin.py" not in failure and "expectations.py" not in failure
    assert len(failure.strip().splitlines()) < 12


def test_a_failing_gate_says_so_last_even_when_every_test_passed(toy):
    toy.runpytest("--ablation-save-baseline=baseline.json").assert_outcomes(passed=3)
    path = toy.path / "baseline.json"
    baseline = json.loads(path.read_text())
    for _, variant, metric, entry in metric_entries(baseline):
        if variant == "s=0.0" and metric == "temporal_flickering":
            entry["value"] += 0.1
    path.write_text(json.dumps(baseline))
    result = toy.runpytest("--ablation-gate=baseline.json")
    result.assert_outcomes(passed=3)
    assert result.ret == 1
    out = result.outlines
    final = max(i for i, line in enumerate(out) if re.search(r"\d+ passed", line))
    start = max(i for i, line in enumerate(out) if line.startswith("ablation gate FAILED"))
    # The message (wrapped to the terminal tables' width) is what stands last before the count.
    message = " ".join(line.strip() for line in out[start:final])
    assert re.fullmatch(
        r"ablation gate FAILED against \S*baseline\.json \(1 regressed.*\): the run "
        r"exits with status 1 whatever the tests' own outcomes",
        message,
    )


def test_the_judge_does_not_load_for_metrics_that_do_not_need_it(pytester):
    pytester.makepyfile(
        test_still="""
import pytest


@pytest.mark.ablation("still", reference="mu=0.98", metrics=["temporal_flickering", "dynamic_degree"])
@pytest.mark.parametrize("mu", [0.6, 0.98], ids=lambda m: f"mu={m}")
def test_still(mu, zs2, ablation):
    ablation.run(zs2, momentum=mu)
"""
    )
    result = pytester.runpytest("--ablation-profile=tiny")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["worker main: cpu*; model loads: sd x1"])
    assert "clip x" not in result.stdout.str()


def test_compare_prints_no_empty_table_when_nothing_regressed(toy, capsys):
    from pytest_ablation.cli.main import main
    from pytest_ablation.results.report_json import load_report
    from pytest_ablation.report.terminal import render_verdicts

    toy.runpytest("--ablation-save-baseline=baseline.json").assert_outcomes(passed=3)
    baseline = str(toy.path / "baseline.json")
    capsys.readouterr()
    assert main(["compare", baseline, baseline]) == 0
    out = capsys.readouterr().out
    # The current run's claims with their verdicts, then only the count: no table.
    verdicts = f"claims of {baseline}:\n{render_verdicts(load_report(baseline))}"
    assert "supported" in verdicts and out.startswith(verdicts)
    assert re.fullmatch(r"\d+ ok(, \d+ info)?\n", out[len(verdicts) :])
    assert main(["compare", "--all", baseline, baseline]) == 0
    assert "status" in capsys.readouterr().out  # --all still shows every row


@pytest.mark.slow
def test_a_long_expected_failure_reason_is_kept_whole_in_every_report_file(toy):

    reason = " ".join(f"word{i}" for i in range(300))  # about 2,400 characters
    toy.makepyfile(
        test_flicker=f"""
import pytest


@pytest.mark.ablation("flicker", reference="s=0.5", metrics=["temporal_flickering"])
@pytest.mark.parametrize("strength", [
    pytest.param(0.0, marks=pytest.mark.ablation_xfail("toy-test", reason={reason!r})), 0.5,
], ids=lambda s: f"s={{s}}")
def test_flicker(strength, flicker, ablation):
    result = ablation.run(flicker, strength=strength)
    if strength == 0.0:
        ablation.expect(result, "temporal_flickering").above_reference(margin=10.0)
"""
    )
    result = toy.runpytest_subprocess()
    result.assert_outcomes(passed=1, xfailed=1)
    reports = toy.path / "reports"
    cases = report_of(reports / "report.json")["cases"]
    expected = next(case for case in cases if case["outcome"] == "xfailed")
    assert reason in expected["reason"]
    assert reason in (reports / "report.md").read_text()
    assert reason in (reports / "report.html").read_text()
