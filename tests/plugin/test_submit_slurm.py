"""`pytest-ablation submit --executor slurm` on a real single-node Slurm cluster (slurmctld,
slurmd and munge from the distribution's packages, started by ``slurm_cluster``): the shards
run as a job array, are merged and gated; a shard that Slurm requeues, or that is signalled
as a preempted job is, starts again and resumes from the cache."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
from report_files import result_rows
from slurm_cluster import run_slurm, slurm_cluster

pytest.importorskip("submitit")

from pytest_ablation.cli.main import main  # noqa: E402

SLOW_STUDY = """
import os
import time

import pytest

from conftest import Flicker


class Slow(Flicker):
    def generate(self, request):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        return super().generate(request)


@pytest.fixture
def slow(ablation_models):
    return Slow(ablation_models.get("toy"))


@pytest.mark.ablation("slow", reference="s=0.2", metrics=["temporal_flickering", "mean_brightness"])
@pytest.mark.parametrize("strength", [0.1, 0.2, 0.3], ids=lambda s: f"s={s}")
def test_slow(strength, slow, ablation):
    ablation.run(slow, strength=strength)
"""


@pytest.fixture
def cluster(tmp_path_factory, monkeypatch):
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


@pytest.fixture
def project(toy, monkeypatch):
    toy.makepyfile(test_slow=SLOW_STUDY)
    (toy.path / "test_flicker.py").unlink()
    monkeypatch.setenv("PYTHONPATH", str(toy.path))
    toy.runpytest("--ablation-report-dir", "full", "--ablation-no-cache").assert_outcomes(passed=3)
    return toy


def submit(toy, *options):
    return main(
        [
            "submit",
            "--shards",
            "2",
            "--executor",
            "slurm",
            "--poll",
            "0.5",
            "--timeout",
            "10",
            "--cache-dir",
            str(toy.path / "shared-cache"),
            "--report-dir",
            str(toy.path / "out"),
            *options,
            "--",
            "-q",
            "-p",
            "no:cacheprovider",
        ]
    )


def read(path):
    return json.loads(path.read_text())


def generated(toy) -> list[str]:
    log = Path(os.environ["TOY_GENERATE_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def array_tasks(cluster) -> list[str]:
    return run_slurm(cluster, "squeue", "-h", "-r", "-o", "%i %t").split("\n")


@pytest.mark.slow
def test_submit_runs_the_shards_as_slurm_jobs_merges_and_gates(project, cluster, capsys):
    toy = project
    options = ["--slurm-account=lab", "--cpus-per-task=1", "--slurm-mem=500M", "--sbatch=--comment=ablations"]
    assert submit(toy, *options, "--gate", str(toy.path / "full" / "report.json")) == 0
    out = capsys.readouterr().out
    assert re.search(r"submitted 2 shard\(s\) \(slurm\): job \d+_0", out), out
    assert "shards: 2 done, 0 running, 0 failed (of 2)" in out
    assert "gate against" in out
    merged, single = read(toy.path / "out" / "report.json"), read(toy.path / "full" / "report.json")
    assert result_rows(merged) == result_rows(single)
    # What sbatch was given, as the scheduler recorded it.
    job = re.search(r"job (\d+)_0", out).group(1)
    shown = run_slurm(cluster, "scontrol", "show", "job", f"{job}_0")
    for field in ("Account=lab", "MinMemoryNode=500M", "Comment=ablations", "NumCPUs=1"):
        assert field in shown, shown


def _interrupt_mid_run(toy, cluster, interrupt, capsys) -> str:
    """Submit the slow study, ``interrupt(job)`` its first shard once it has made some videos,
    and return submit's output when it is done."""
    result: dict[str, int] = {}
    already = len(generated(toy))
    worker = threading.Thread(target=lambda: result.setdefault("code", submit(toy)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 120
    running: list[str] = []
    while time.monotonic() < deadline and not (running and len(generated(toy)) >= already + 4):
        time.sleep(0.1)
        running = [line.split()[0] for line in array_tasks(cluster) if line.endswith(" R")]
    assert running, "no shard was running"
    first = sorted(running)[0]
    interrupt(first)
    # Slurm holds a requeued job back for two minutes before it may start again; the test lets
    # it start after a few seconds (at once, it may start before its first run's credential
    # is revoked, and be killed as "non-startable").
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = run_slurm(cluster, "squeue", "-h", "-r", "-j", first, "-o", "%t").strip()
        if state == "PD":
            run_slurm(cluster, "scontrol", "update", f"JobId={first}", "StartTime=now+5")
            break
        time.sleep(0.2)
    worker.join(timeout=300)
    assert not worker.is_alive(), "submit did not finish"
    assert result["code"] == 0, capsys.readouterr().out
    restarts = run_slurm(cluster, "scontrol", "show", "job", first)
    assert "Restarts=1" in restarts, restarts
    return capsys.readouterr().out


def _resumed(toy, before: list[str]) -> None:
    merged, single = read(toy.path / "out" / "report.json"), read(toy.path / "full" / "report.json")
    assert result_rows(merged) == result_rows(single)
    # Every video was made once, but for the one in progress when the shard was stopped: the
    # requeued shard read the others back from the cache.
    made = generated(toy)[len(before) :]
    assert len(made) - len(set(made)) <= 1, made


@pytest.mark.slow
def test_a_requeued_shard_resumes_from_the_cache(project, cluster, monkeypatch, capsys):
    toy = project
    monkeypatch.setenv("SLOW_SECONDS", "0.4")
    before = generated(toy)
    _interrupt_mid_run(toy, cluster, lambda job: run_slurm(cluster, "scontrol", "requeue", job), capsys)
    _resumed(toy, before)


@pytest.mark.slow
def test_a_preempted_shard_is_requeued_by_its_job_and_resumes(project, cluster, monkeypatch, capsys):
    # Slurm signals a job USR2 before its time limit (submitit asks for it) and, where the site
    # configures it, on preemption; the job then requeues itself through ShardJob.checkpoint.
    toy = project
    monkeypatch.setenv("SLOW_SECONDS", "0.4")
    before = generated(toy)
    _interrupt_mid_run(toy, cluster, lambda job: run_slurm(cluster, "scancel", "--signal=USR2", job), capsys)
    _resumed(toy, before)
    logs = "".join(path.read_text() for path in (toy.path / "out" / "submitit").glob("*_log.err"))
    assert "Caught signal SIGUSR2" in logs and "DUE TO JOB REQUEUE" in logs, logs


def test_the_slurm_options_reach_the_job_script_and_bad_ones_are_refused(tmp_path, capsys, monkeypatch):
    import shutil

    from pytest_ablation.cli.main import build_parser
    from pytest_ablation.cli.submit import make_executor

    if shutil.which("srun") is None:
        pytest.skip("submitit's Slurm executor needs srun on the PATH (Debian: apt-get install slurm-wlm)")
    argv = [
        "submit",
        "--shards=2",
        "--executor=slurm",
        "--slurm-partition=gpu",
        "--slurm-account=lab",
        "--slurm-qos=high",
        "--slurm-constraint=a100",
        "--slurm-mem=64G",
        "--cpus-per-task=8",
        "--gpus-per-task=1",
        "--timeout=90",
        "--sbatch=--exclusive",
        "--sbatch=--mail-type=END",
        "--",
        "-q",
    ]
    args = build_parser().parse_args(argv)
    executor = make_executor(args, tmp_path / "submitit")
    script = executor._executor._make_submission_file_text("python -m x", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --qos=high",
        "#SBATCH --constraint=a100",
        "#SBATCH --mem=64G",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --time=90",
        "#SBATCH --exclusive",
        "#SBATCH --mail-type=END",
    ):
        assert line in script.splitlines(), script
    for bad, message in (
        ("--slurm-mem=lots", "argument --slurm-mem: got 'lots'; expected a size such as 16000 (MB), 32G or 1T"),
        ("--sbatch=exclusive", "argument --sbatch: got 'exclusive'; expected one sbatch option as --name=value"),
    ):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["submit", "--shards=2", bad])
        assert message in capsys.readouterr().err
