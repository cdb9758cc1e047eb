"""`pytest-ablation submit` with submitit's local executor: shards as jobs, a retry, the
merge and the gate."""

import json

import pytest
from report_files import metric_entries, result_rows

pytest.importorskip("submitit")

from pytest_ablation.cli.main import main  # noqa: E402

from .test_shards import CALM_STUDY  # noqa: E402

FAIL_ONCE = """
import os


def pytest_configure(config):
    # Shard 2 dies, as a node lost mid-run would: once while the flag file FAIL_ONCE names
    # exists, every time with FAIL_ALWAYS set.
    flag = os.environ.get("FAIL_ONCE")
    shard = [a for a in config.invocation_params.args if a.startswith("--ablation-shard=")]
    if not (shard and shard[0].startswith("--ablation-shard=2/")):
        return
    if os.environ.get("FAIL_ALWAYS"):
        os._exit(3)
    if flag and os.path.exists(flag):
        os.remove(flag)
        os._exit(3)
"""


@pytest.fixture
def project(toy, monkeypatch):
    toy.makepyfile(test_calm=CALM_STUDY, fail_once=FAIL_ONCE)
    monkeypatch.setenv("PYTHONPATH", str(toy.path))
    toy.runpytest("--ablation-report-dir", "full", "--ablation-no-cache").assert_outcomes(passed=7)
    return toy


def submit(toy, shards, *options):
    return main(
        [
            "submit",
            "--shards",
            str(shards),
            "--executor",
            "local",
            "--poll",
            "0.2",
            "--cache-dir",
            str(toy.path / "shared-cache"),
            "--report-dir",
            str(toy.path / "out"),
            *options,
            "--",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "fail_once",
        ]
    )


def read(path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_submit_runs_every_shard_merges_and_gates(project, capsys):
    toy = project
    assert submit(toy, 3, "--gate", str(toy.path / "full" / "report.json")) == 0
    out = capsys.readouterr().out
    assert "submitted 3 shard(s) (local)" in out
    assert "shards: 3 done, 0 running, 0 failed (of 3)" in out
    merged, single = read(toy.path / "out" / "report.json"), read(toy.path / "full" / "report.json")
    assert merged["studies"] == single["studies"] and result_rows(merged) == result_rows(single)
    assert [s["index"] for s in merged["merged_from"]] == [1, 2, 3]
    assert merged["gate"]["failed"] is False
    for index in (1, 2, 3):
        assert read(toy.path / "out" / f"shard-{index}" / "report.json")["shard"]["index"] == index
    assert (toy.path / "out" / "report.html").exists()


@pytest.mark.slow
def test_a_failed_shard_is_submitted_again_and_a_regression_fails_the_gate(project, capsys, tmp_path, monkeypatch):
    toy = project
    flag = tmp_path / "fail-once"
    flag.write_text("")
    monkeypatch.setenv("FAIL_ONCE", str(flag))  # the jobs inherit it
    baseline = read(toy.path / "full" / "report.json")
    for _, _variant, metric, row in metric_entries(baseline):
        if metric == "mean_brightness":
            row["value"] += 1.0  # a baseline the run falls short of
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    assert submit(toy, 2, "--gate", str(tmp_path / "baseline.json")) == 1
    out = capsys.readouterr().out
    assert not flag.exists()
    assert ("shard 2/2 failed (shard 2/2: pytest exited with status 3, no report written); submitting it again") in out
    assert "shards: 2 done, 0 running, 0 failed (of 2)" in out
    assert "gate against" in out
    merged = read(toy.path / "out" / "report.json")
    assert result_rows(merged) == result_rows(read(toy.path / "full" / "report.json"))
    assert merged["gate"]["failed"] is True


@pytest.mark.slow
def test_a_shard_that_fails_twice_is_named_and_the_others_are_merged(project, capsys, monkeypatch):
    toy = project
    monkeypatch.setenv("FAIL_ALWAYS", "1")
    assert submit(toy, 2) == 1
    out = capsys.readouterr().out
    assert "shards: 1 done, 0 running, 1 failed (of 2)" in out
    assert "shard 2/2 failed twice: shard 2/2: pytest exited with status 3" in out
    assert "shard(s) 2/2 missing" in out
    merged = read(toy.path / "out" / "report.json")
    assert merged["merged_from"] == [
        {"index": 1, "count": 2, "report": str(toy.path / "out" / "shard-1" / "report.json")}
    ]


def test_submit_refuses_shard_options_in_the_pytest_arguments(tmp_path, capsys):
    assert (
        main(
            [
                "submit",
                "--shards",
                "2",
                "--executor",
                "local",
                "--report-dir",
                str(tmp_path),
                "--",
                "--ablation-shard",
                "1/2",
            ]
        )
        == 2
    )
    assert "--ablation-shard: set by submit" in capsys.readouterr().err


def test_slurm_resources_reach_the_job_array(tmp_path, monkeypatch):
    import argparse

    from pytest_ablation.cli.submit import make_executor

    args = argparse.Namespace(executor="slurm", timeout=30, shards=4, gpus_per_task=2, slurm_partition="gpu")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(Exception, match="--executor slurm: .*--executor local"):
        make_executor(args, tmp_path / "jobs")
    (tmp_path / "bin").mkdir()
    srun = tmp_path / "bin" / "srun"  # submitit only looks for it
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(0o755)
    executor = make_executor(args, tmp_path / "jobs")
    assert executor._executor.parameters == {
        "job_name": "ablations",
        "time": 30,
        "ntasks_per_node": 1,
        "nodes": 1,
        "gpus_per_node": 2,
        "array_parallelism": 4,
        "partition": "gpu",
    }


@pytest.mark.slow
def test_submit_logs_the_merged_report_once_to_mlflow(project, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    toy = project
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    baseline = str(toy.path / "full" / "report.json")
    assert submit(toy, 2, "--mlflow", "--gate", baseline) == 0
    out = capsys.readouterr().out
    store = toy.path / "out" / "mlflow"
    assert "mlflow: run " in out and f"of sqlite:///{store}/mlflow.db" in out
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name(toy.path.name).experiment_id])
    merged = read(toy.path / "out" / "report.json")
    from pytest_ablation.harness.trackers.mlflow_tracker import metric_key

    deltas = {
        metric_key(r["study"], r["variant"], r["metric"], "delta"): r["delta"]
        for r in result_rows(merged)
        if isinstance(r["delta"], float)
    }
    assert deltas and {k: run.data.metrics[k] for k in deltas} == pytest.approx(deltas)
    assert run.data.params["options.gate"] == baseline
    assert run.data.tags["ablation.gate"] == "passed" and merged["gate"]["failed"] is False
    assert not any((toy.path / "out" / f"shard-{i}" / "mlflow").exists() for i in (1, 2))


def test_submit_refuses_a_tolerance_for_a_misspelt_metric_before_any_shard(tmp_path, capsys):
    from pytest_ablation.results.report_json import REPORT_FORMAT, REPORT_VERSION

    baseline = tmp_path / "base.json"
    baseline.write_text(
        json.dumps(
            {
                "format": REPORT_FORMAT,
                "version": REPORT_VERSION,
                "metrics": {},
                "cases": [],
                "studies": [
                    {
                        "study": "s",
                        "variants": [
                            {
                                "variant": "a",
                                "reference": "a",
                                "metrics": {"temporal_flickering": {"direction": "higher", "value": 0.9}},
                            }
                        ],
                    }
                ],
            }
        )
    )
    assert (
        main(
            [
                "submit",
                "--shards",
                "2",
                "--executor",
                "local",
                "--report-dir",
                str(tmp_path / "out"),
                "--gate",
                str(baseline),
                "--tolerance",
                "temporal_flickerng=0.1",
                "--",
                "-q",
            ]
        )
        == 2
    )
    assert "did you mean 'temporal_flickering'?" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("shard-*"))
