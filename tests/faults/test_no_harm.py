"""Nothing lost, nothing written outside its folder: run copies, empty runs and merges,
tried with real files and links."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ablation.results.report_json import ReportError
from pytest_ablation.results.merge import merge_report_files
from pytest_ablation.report.write import prune_runs, write_reports
from report_files import report_of


def test_run_pruning_removes_only_the_plugins_own_run_copies(toy):
    runs = toy.path / "reports" / "runs"
    mine = [runs / f"exp{k:02d}" for k in range(1, 13)] + [runs / "2024-05-01_baseline"]
    # A folder named like a run copy but without the plugin's mark is the user's too.
    mine.append(runs / "20200101T000000Z-000000")
    for folder in mine:
        folder.mkdir(parents=True)
        (folder / "notes.txt").write_text("mine")
    for _ in range(2):
        toy.runpytest("-p", "no:randomly", "--ablation-keep-runs=1").assert_outcomes(passed=3)
    assert all((folder / "notes.txt").read_text() == "mine" for folder in mine)
    copies = [p for p in runs.iterdir() if p not in mine]
    assert len(copies) == 1 and (copies[0] / "report.json").is_file()


def test_prune_never_follows_a_link(tmp_path):
    runs = tmp_path / "runs"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    runs.mkdir()
    (runs / "20990101T000000Z-0000aa").symlink_to(outside, target_is_directory=True)
    assert prune_runs(runs, 0) == []
    assert (outside / "precious.txt").read_text() == "keep"


@pytest.mark.parametrize("option", ["--collect-only", "--fixtures"])
def test_a_run_that_generates_nothing_writes_nothing(toy, option):
    toy.runpytest("-p", "no:randomly").assert_outcomes(passed=3)
    reports = toy.path / "reports"
    before = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    toy.runpytest("-p", "no:randomly", option)
    after = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert after == before


def _shard(tmp_path, toy_report, name, media):
    folder = tmp_path / name
    folder.mkdir()
    report = copy.deepcopy(toy_report)
    for study in report["studies"]:
        for variant in study["variants"]:
            variant["media"] = dict(media)
    (folder / "report.json").write_text(json.dumps(report))
    return folder / "report.json"


@pytest.fixture
def toy_report(toy):
    toy.runpytest("-p", "no:randomly").assert_outcomes(passed=3)
    return report_of(toy)


def test_merge_refuses_a_media_path_that_climbs_out(tmp_path, toy_report):
    shard = _shard(tmp_path, toy_report, "shard", {"preview": "../../x/pwned.png"})
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "pwned.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ReportError, match="leads outside its folder"):
        merge_report_files([shard], tmp_path / "out" / "deep")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["pwned.png"]


def test_merge_refuses_a_preview_that_links_outside_its_folder(tmp_path, toy_report):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the report")
    shard = _shard(tmp_path, toy_report, "shard", {"preview": "media/leak.png"})
    (shard.parent / "media").mkdir()
    (shard.parent / "media" / "leak.png").symlink_to(secret)
    with pytest.raises(ReportError, match="leads outside its folder"):
        merge_report_files([shard], tmp_path / "out")
    assert not any((tmp_path / "out").rglob("*")) if (tmp_path / "out").exists() else True


def test_merge_into_a_shards_own_folder_is_refused_and_changes_nothing(tmp_path, toy_report):
    shard = _shard(tmp_path, toy_report, "shard", {})
    before = shard.read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "pytest_ablation.cli.main", "merge", str(shard), "-o", str(shard.parent)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode != 0
    assert "would overwrite that shard's" in done.stderr + done.stdout
    assert shard.read_bytes() == before
    # And the same merge into a folder of its own works, and can be repeated.
    for _ in range(2):
        merged = merge_report_files([shard], tmp_path / "merged")
        write_reports(merged, tmp_path / "merged")
    assert (tmp_path / "merged" / "report.json").is_file()
