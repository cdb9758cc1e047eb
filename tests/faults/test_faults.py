"""Faults a run must survive, run for real where CI allows: an interrupt and a resume, a
killed worker, corrupted cache entries, concurrent runs on one cache, a full disk (ENOSPC,
simulated) and a read-only cache."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
from plugin.conftest import lines
from report_files import report_of, result_rows

SLOW = """
import os
import time

import pytest


@pytest.mark.ablation("slow", reference="s=0.2", metrics=["mean_brightness"])
@pytest.mark.parametrize("strength", [0.1, 0.2, 0.3, 0.4], ids=lambda s: f"s={s}")
def test_slow(strength, flicker, ablation):
    if strength == 0.3 and os.environ.get("KILL_WORKER"):
        os.kill(os.getpid(), 9)
    ablation.run(SlowFlicker(flicker), strength=strength)


class SlowFlicker:
    def __init__(self, inner):
        self.inner = inner

    def cache_identity(self):
        return self.inner.cache_identity()

    def generate(self, request):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        return self.inner.generate(request)
"""


@pytest.fixture
def slow(toy):
    (toy.path / "test_flicker.py").unlink()
    toy.makepyfile(test_slow=SLOW)
    return toy


def videos_per_variant(toy):
    """Prompts x seeds of the toy profile: the videos one variant generates."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib

    settings = tomllib.loads((toy.path / "toy.toml").read_text())["settings"]
    return len(settings["prompts"]) * settings["seeds"]


def spawn(toy, *args, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_slow.py", *args],
        cwd=toy.path,
        env={
            **os.environ,
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(toy.path), os.environ.get("PYTHONPATH")])),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_sigint_mid_run_keeps_finished_work_and_the_rerun_resumes(slow, tmp_path):
    log = tmp_path / "logs" / "generate.txt"
    run = spawn(slow, "--ablation-cache-dir=cache", SLOW_SECONDS="0.2")
    deadline = time.monotonic() + 120
    per_variant = videos_per_variant(slow)
    # Past the first case (its variant's and its reference's videos), then interrupt.
    while len(lines(log)) < 2 * per_variant + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 2, output  # pytest's "interrupted"
    assert "KeyboardInterrupt" in output
    report = report_of(slow.path / "reports" / "report.json")
    outcomes = {c["variant"]: c["outcome"] for c in report["cases"]}
    assert outcomes["s=0.1"] == "passed"
    assert "unfinished" in outcomes.values()  # said so, not dropped
    # The rerun loads what the interrupted run finished and computes only the rest.
    rerun = slow.runpytest("--ablation-cache-dir=cache", "test_slow.py")
    rerun.assert_outcomes(passed=4)
    report = report_of(slow.path / "reports" / "report.json")
    assert report["cache"]["hits"] >= 2 * per_variant
    assert len(set(lines(log))) == 4 * per_variant
    assert len(lines(log)) <= 4 * per_variant + 1  # at most the one being made is made again


@pytest.mark.slow
def test_a_killed_worker_is_an_error_in_the_report_and_the_gate(slow, monkeypatch):
    slow.runpytest("test_slow.py", "--ablation-save-baseline=baseline.json").assert_outcomes(passed=4)
    monkeypatch.setenv("KILL_WORKER", "1")
    result = slow.runpytest("test_slow.py", "-n", "1", "--dist=load", "--ablation-gate=baseline.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*crashed while running*s=0.3*"])
    report = report_of(slow.path / "reports" / "report.json")
    killed = next(c for c in report["cases"] if c["variant"] == "s=0.3")
    assert killed["outcome"] == "error" and "crashed" in killed["reason"]
    assert {r["status"] for r in report["gate"]["rows"] if r["variant"] == "s=0.3"} == {"error"}
    outcomes = {c["variant"]: c["outcome"] for c in report["cases"]}
    assert outcomes["s=0.1"] == outcomes["s=0.2"] == "passed"
    # A case the dead worker never reached is run by another, or reported as unfinished.
    assert outcomes["s=0.4"] in ("passed", "unfinished")
    if outcomes["s=0.4"] == "unfinished":
        assert {r["status"] for r in report["gate"]["rows"] if r["variant"] == "s=0.4"} == {"unfinished"}


def test_corrupted_cache_entries_are_recomputed(slow, tmp_path):
    slow.runpytest("test_slow.py", "--ablation-cache-dir=cache").assert_outcomes(passed=4)
    first = result_rows(report_of(slow.path / "reports" / "report.json"))
    entries = sorted((slow.path / "cache").rglob("*.json")) + sorted((slow.path / "cache").rglob("*.safetensors"))
    assert entries
    for index, entry in enumerate(entries[:6]):
        data = entry.read_bytes()
        entry.write_bytes(data[: len(data) // 2] if index % 2 else data[:-1] + b"\x00")
    result = slow.runpytest("test_slow.py", "--ablation-cache-dir=cache")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["cache: corrupted entry recomputed: *"])
    assert result_rows(report_of(slow.path / "reports" / "report.json")) == first


@pytest.mark.slow
def test_concurrent_runs_share_one_cache(slow, tmp_path):
    runs = [
        spawn(slow, "--ablation-cache-dir=shared", f"--ablation-report-dir=r{i}", SLOW_SECONDS="0.05") for i in (1, 2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    first, second = (report_of(slow.path / f"r{i}" / "report.json") for i in (1, 2))
    assert result_rows(first) == result_rows(second)
    log = lines(tmp_path / "logs" / "generate.txt")
    # Each video computed once between the two runs.
    assert len(log) == len(set(log)) == 4 * videos_per_variant(slow)


def test_a_full_disk_costs_the_cache_and_the_report_not_the_run(slow, monkeypatch):
    slow.runpytest("test_slow.py", "--ablation-cache-dir=cache").assert_outcomes(passed=4)
    good = (slow.path / "reports" / "report.json").read_bytes()

    def no_space(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    import pytest_ablation.run.cache as cache
    import pytest_ablation.files as files

    monkeypatch.setattr(cache, "write_bytes_atomic", no_space)
    monkeypatch.setattr(files, "write_bytes_atomic", no_space)
    result = slow.runpytest("test_slow.py", "--ablation-cache-dir=fresh-cache")
    result.assert_outcomes(passed=4)  # every case ran and was scored
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "cache: * entries computed but not kept (first: *No space left on device)*",
            "ablation: could not write the report to *reports: No space left on device; the previous "
            "report there is kept",
        ]
    )
    assert (slow.path / "reports" / "report.json").read_bytes() == good


def test_a_read_only_cache_stops_the_run_before_any_model_loads(slow, tmp_path):
    if os.geteuid() == 0:
        target = "/sys/ablation-cache"  # a read-only file system, even for root
        if os.access("/sys", os.W_OK) and not os.path.ismount("/sys"):
            pytest.skip("no read-only location to try")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        target = str(folder / "cache")
    result = slow.runpytest("test_slow.py", f"--ablation-cache-dir={target}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: --ablation-cache-dir: cannot write to {target}: *--ablation-no-cache*"])
    assert not os.path.exists(os.environ["TOY_LOAD_LOG"])
    # With the cache off, the same run goes ahead.
    slow.runpytest("test_slow.py", f"--ablation-cache-dir={target}", "--ablation-no-cache").assert_outcomes(passed=4)
