"""A real study (ZS² TMA on the tiny profile) through the plugin, as a user runs it."""

import subprocess
import sys
from pathlib import Path

import pytest
from report_files import report_of, result_rows

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "ablations" / "test_zs2_tma.py"


def run_study(tmp_path: Path, name: str, *args: str) -> dict:
    reports = tmp_path / name
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(STUDY),
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "0.98 or 1.0",
            "--ablation-no-cache",
            f"--ablation-report-dir={reports}",
            f"--rootdir={REPO}",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return report_of(reports / "report.json")


@pytest.mark.slow
@pytest.mark.slow
def test_real_study_numbers_do_not_depend_on_workers(tmp_path):
    single = run_study(tmp_path, "one", "-n", "0")
    double = run_study(tmp_path, "two", "-n", "2", "--dist", "load")
    assert [r["variant"] for r in result_rows(single)] == ["mu=0.98"] * 3 + ["mu=1.0"] * 3
    assert result_rows(single) == result_rows(double)
    assert single["studies"] == double["studies"]
    workers = double["environment"]["workers"]
    assert [w["loads"].get("sd", 0) for w in workers.values() if w["loads"]] in ([1], [1, 1])
