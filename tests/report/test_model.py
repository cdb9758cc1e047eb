"""The typed model every reader takes a report in, read from report.json of every version."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pytest_ablation.cli.main import main
from pytest_ablation.results.gate import judge_reports
from pytest_ablation.results.model import Comparison, Report, ReportMismatch, SetValue
from pytest_ablation.results.report_json import REPORT_VERSION, ReportError, load_report, read_report
from report_files import result_rows

BASELINES = sorted((Path(__file__).parents[2] / "reports").glob("baseline*.json"))


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.name)
def test_a_version_2_baseline_reads_as_the_rows_its_writer_repeated(path):
    # Version 2's writer stored each comparison twice: in the variant entry and as a row of
    # `results`. The model reads the entries; the rows are that writer's own account.
    document = json.loads(path.read_text())
    assert document["version"] == 2
    report = Report.from_json(document)
    assert len(report.comparisons) == len(document["results"]) > 0
    for comparison, row in zip(report.comparisons, document["results"]):
        assert {name: comparison.row()[name] for name in row} == row
    assert [c.row() for c in report.comparisons] == result_rows(document)


def _v2_with_one_row_changed(path: Path) -> dict:
    document = json.loads(path.read_text())
    document["results"][3]["value"] += 0.25
    return document


def test_a_version_2_report_whose_row_contradicts_its_entry_is_refused_by_every_reader(tmp_path, capsys):
    document = _v2_with_one_row_changed(BASELINES[0])
    row = document["results"][3]
    with pytest.raises(ReportMismatch, match=r"results\[3\] .*: value is .* there and .* in its variant's entry"):
        Report.from_json(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    for argv in (
        ["show", str(bad)],
        ["compare", str(BASELINES[0]), str(bad)],
        ["html", str(bad), "-o", str(tmp_path / "page.html")],
        ["merge", str(bad), "-o", str(tmp_path / "merged")],
        ["baseline", str(bad), str(tmp_path / "base.json")],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert "contradicts itself" in err and f"{row['study']} {row['variant']} {row['metric']}" in err


def test_a_version_3_report_keeps_each_number_once(tmp_path):
    document = json.loads(BASELINES[0].read_text())
    current = {key: value for key, value in document.items() if key not in ("results", "set_results")}
    current["version"] = REPORT_VERSION
    path = tmp_path / "v3.json"
    path.write_text(json.dumps(current))
    report = read_report(path)
    assert len(report.comparisons) == len(document["results"])
    for comparison, row in zip(report.comparisons, document["results"]):
        assert {name: comparison.row()[name] for name in row} == row
    # The rows a version 3 report would have repeated are refused: one shape per number.
    path.write_text(json.dumps({**current, "results": document["results"]}))
    with pytest.raises(ReportError, match="the field 'results' does not belong in this version"):
        load_report(path)


def test_the_gate_reads_a_version_2_baseline_and_a_version_3_report_alike():
    document = json.loads(BASELINES[0].read_text())
    current = {key: value for key, value in document.items() if key != "results"}
    current["version"] = REPORT_VERSION
    worse = copy.deepcopy(current)
    entry = worse["studies"][0]["variants"][1]
    metric = next(m for m, e in entry["metrics"].items() if e["direction"] == "higher")
    entry["metrics"][metric]["value"] -= 1.0
    assert {row.status for row in judge_reports(document, current)} <= {"ok", "info"}
    regressed = [row for row in judge_reports(document, worse) if row.status == "regressed"]
    assert [(r.study, r.variant, r.metric) for r in regressed] == [
        (worse["studies"][0]["study"], entry["variant"], metric)
    ]


def test_the_values_are_typed():
    report = Report.from_json(json.loads(BASELINES[0].read_text()))
    assert all(isinstance(c, Comparison) and c.level == "paired" for c in report.comparisons)
    assert all(isinstance(c.ci, tuple) and len(c.ci) == 2 for c in report.comparisons if c.ci is not None)
    assert report.cases is not None and {c.outcome for c in report.cases} <= {"passed", "xfailed"}
    assert report.claims and {c.verdict for c in report.claims} <= {"supported", "refuted", "inconclusive"}
    assert report.profile_name == json.loads(BASELINES[0].read_text())["profile"]["name"]
    fvd = SetValue("s", "v", "fvd", "lower", 12.0, 10.0, 14.0)
    assert fvd.key == ("s", "v", "fvd") and fvd.level == "set" and fvd.row()["low"] == 10.0
