"""``pytest-ablation submit``: one job per shard on Slurm (or local processes), then one report.

Each job runs ``python -m pytest <args> --ablation-shard I/N`` in the folder ``submit`` was
started from, with the cache folder every shard shares and its own report folder
``<report-dir>/shard-I``. The command waits, printing progress, submits a failed shard once
more (its finished entries are read back from the cache, so only what it had not finished is
computed), merges the shards' reports into ``<report-dir>`` with ``pytest-ablation merge``'s
code and, with ``--gate``, judges the merged report as ``--ablation-gate`` would.

A shard has failed when its job raised or ended without writing its report, or when its
pytest exited with a status other than 0 (passed) or 1 (tests failed: the report is whole).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from submitit import Job

# pytest's statuses after which a shard's report is whole: 0 passed, 1 some tests failed.
COMPLETE = (0, 1)


class ShardFailed(RuntimeError):
    pass


@dataclass
class ShardJob:
    """What a job runs: picklable, so that submitit can send it to a cluster node."""

    cwd: str
    pytest_args: list[str]
    report_dir: str
    cache_dir: str | None
    count: int

    def command(self, index: int) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "pytest",
            *self.pytest_args,
            f"--ablation-shard={index}/{self.count}",
            f"--ablation-report-dir={shard_dir(Path(self.report_dir), index)}",
        ]
        if self.cache_dir is not None:
            command.append(f"--ablation-cache-dir={self.cache_dir}")
        return command

    def __call__(self, index: int) -> int:
        done = subprocess.run(self.command(index), cwd=self.cwd)
        report = shard_dir(Path(self.report_dir), index) / "report.json"
        if done.returncode not in COMPLETE or not report.exists():
            raise ShardFailed(
                f"shard {index}/{self.count}: pytest exited with status "
                f"{done.returncode}" + ("" if report.exists() else ", no report written")
            )
        return done.returncode


def shard_dir(report_dir: Path, index: int) -> Path:
    return report_dir / f"shard-{index}"


def make_executor(args, folder: Path):
    """submitit's executor for ``--executor``, with the resources asked for."""
    try:
        import submitit
    except ImportError:
        from ..results.report_json import ReportError

        raise ReportError("`pytest-ablation submit` needs submitit: pip install 'pytest-ablation[submit]'") from None
    if args.executor == "local":
        executor: submitit.Executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=args.timeout)
        return executor
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    except RuntimeError as error:  # no srun on this machine
        from ..results.report_json import ReportError

        raise ReportError(
            f"--executor slurm: {error} (--executor local runs the shards as processes on this machine)"
        ) from None
    parameters = {
        "name": "ablations",
        "timeout_min": args.timeout,
        "tasks_per_node": 1,
        "nodes": 1,
        "slurm_array_parallelism": args.shards,
    }
    if args.gpus_per_task:
        parameters["gpus_per_node"] = args.gpus_per_task
    if args.slurm_partition:
        parameters["slurm_partition"] = args.slurm_partition
    executor.update_parameters(**parameters)
    return executor


@dataclass
class _Shard:
    index: int
    job: Job[int]
    tries: int = 1
    status: int | None = None
    error: str | None = field(default=None)


def _state(shard: _Shard) -> str:
    if shard.status is not None:
        return "done"
    if shard.error is not None:
        return "failed"
    return "running"


def _reason(error: Exception) -> str:
    """One line on why a job failed: the shard's own message when the job reached it."""
    text = str(error)
    found = re.search(r"ShardFailed: (.+)", text)
    if found:
        return found.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def run_shards(args, out=None) -> dict[int, _Shard]:
    """Submit the shards, wait for them, retry each failed one once; the shards at the end.
    Progress goes to ``out`` (default: standard output)."""
    out = sys.stdout if out is None else out
    report_dir = Path(args.report_dir).resolve()
    cache_dir = str(Path(args.cache_dir).resolve()) if args.cache_dir else None
    job = ShardJob(
        cwd=os.getcwd(),
        pytest_args=list(args.pytest_args),
        report_dir=str(report_dir),
        cache_dir=cache_dir,
        count=args.shards,
    )
    executor = make_executor(args, report_dir / "submitit")
    indices = list(range(1, args.shards + 1))
    jobs = executor.map_array(job, indices)
    shards = {i: _Shard(i, j) for i, j in zip(indices, jobs)}
    out.write(
        f"submitted {args.shards} shard(s) ({args.executor}): job {jobs[0].job_id}"
        f"{'' if len(jobs) == 1 else ' ...'}; logs in {report_dir / 'submitit'}\n"
    )
    last = None
    while True:
        for shard in shards.values():
            if _state(shard) != "running" or not shard.job.done():
                continue
            try:
                shard.status = shard.job.result()
            except Exception as error:  # the job's own exception, or the scheduler's
                reason = _reason(error)
                if shard.tries < 2:
                    out.write(f"shard {shard.index}/{args.shards} failed ({reason}); submitting it again\n")
                    shard.job = executor.submit(job, shard.index)
                    shard.tries += 1
                else:
                    shard.error = reason
        states = [_state(s) for s in shards.values()]
        progress = (states.count("done"), states.count("running"), states.count("failed"))
        if progress != last:
            out.write(f"shards: {progress[0]} done, {progress[1]} running, {progress[2]} failed (of {args.shards})\n")
            out.flush()
            last = progress
        if not progress[1]:
            return shards
        time.sleep(args.poll)


def cmd_submit(args) -> int:
    from ..files import check_writable_dir
    from ..results.gate import GateInputError, gate_verdict
    from ..harness.options import parse_tolerances
    from ..results.model import Report
    from ..results.report_json import ReportError, load_report
    from ..report.terminal import render_results_table
    from ..report.write import write_reports
    from ..results.merge import merge_report_files

    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    from ..harness.trackers.merged import log_merged, prepare, refused_in_shards

    for arg in pytest_args:
        if arg.split("=", 1)[0] in ("--ablation-shard", "--ablation-report-dir", "--ablation-cache-dir"):
            raise ReportError(
                f"{arg.split('=', 1)[0]}: set by submit for each shard; use "
                "--shards, --report-dir and --cache-dir instead"
            )
        refusal = refused_in_shards(arg)
        if refusal:
            raise ReportError(refusal)
    args.pytest_args = pytest_args
    report_dir = Path(args.report_dir)
    problem = check_writable_dir(report_dir)
    if problem:
        raise ReportError(f"--report-dir: cannot write to {report_dir}: {problem}")
    targets = prepare(args, report_dir)  # a tracker that cannot log stops before any shard
    tolerances = parse_tolerances(args.tolerance or [], source="--tolerance")
    baseline = load_report(args.gate, what="baseline") if args.gate else None
    if baseline is not None:
        from ..results.gate import report_metrics, unknown_tolerance
        from ..metrics.registry import metric_names

        # Checked before any shard runs: a tolerance matters only for the baseline's metrics.
        problem = unknown_tolerance(tolerances, set(metric_names()) | report_metrics(baseline), "--tolerance")
        if problem:
            raise ReportError(problem)

    shards = run_shards(args)
    failed = sorted(i for i, s in shards.items() if s.status is None)
    for index in failed:
        sys.stdout.write(f"shard {index}/{args.shards} failed twice: {shards[index].error}\n")
    paths = [shard_dir(report_dir, i) / "report.json" for i in sorted(shards) if i not in failed]
    if not paths:
        sys.stdout.write("no shard finished: nothing to merge\n")
        return 1
    merged = merge_report_files(paths, report_dir, partial=bool(failed))
    status = 1 if failed or any(s.status == 1 for s in shards.values()) else 0
    gate = None
    if baseline is not None:
        try:
            gate = merged["gate"] = gate_verdict(baseline, merged, str(args.gate), tolerances=tolerances)
        except GateInputError as error:
            raise ReportError(f"--gate: {error}") from None
    written = write_reports(merged, report_dir)
    sys.stdout.write(render_results_table(merged))
    note = f"; shard(s) {', '.join(f'{i}/{args.shards}' for i in failed)} missing" if failed else ""
    sys.stdout.write(
        f"merged {len(paths)} shard report(s): {len(Report.from_json(merged).comparisons)} results{note}\n"
        f"written: {written['html']}, {written['json']}, {written['markdown']}\n"
    )
    if gate is not None:
        if gate["failed"]:
            from ..results.report_json import variant_order
            from ..report.terminal import render_gate_table

            from ..report.terminal import render_differences

            sys.stdout.write(render_gate_table(gate, only_problems=True, order=variant_order(merged)))
            sys.stdout.write(render_differences(gate))
        sys.stdout.write(f"gate against {args.gate}: {gate['summary']}\n")
        if gate["failed"]:
            status = 1
    logged = log_merged(
        targets,
        merged,
        report_dir,
        exitstatus=status,
        gate=str(args.gate) if args.gate else None,
        tolerances=tolerances,
        out=sys.stdout,
    )
    return status if logged else max(status, 1)


def add_parser(sub, positive_int, positive_float) -> None:
    submit = sub.add_parser(
        "submit",
        help="run the shards of a pytest run as jobs (Slurm or local), then merge and gate",
        description="Submit one job per shard, wait, retry a failed shard once, merge the "
        "shards' reports into --report-dir and, with --gate, gate the merged report. "
        "Arguments after -- go to every shard's pytest.",
    )
    submit.add_argument("--shards", type=positive_int, required=True, metavar="N", help="the number of shards (jobs)")
    submit.add_argument(
        "--executor",
        choices=("slurm", "local"),
        default="slurm",
        help="slurm: a Slurm job array; local: processes on this machine (default slurm)",
    )
    submit.add_argument("--slurm-partition", metavar="P", help="the Slurm partition")
    submit.add_argument(
        "--gpus-per-task",
        type=positive_int,
        metavar="G",
        help="GPUs per shard (each shard may spread over them with -n)",
    )
    submit.add_argument(
        "--timeout",
        type=positive_int,
        default=24 * 60,
        metavar="MIN",
        help="a shard's time limit in minutes (default 1440)",
    )
    submit.add_argument(
        "--gate", metavar="BASELINE", help="gate the merged report against this baseline; exit 1 on a regression"
    )
    submit.add_argument(
        "--tolerance",
        action="append",
        metavar="METRIC=TOL",
        help="override a metric's tolerance for --gate (repeatable)",
    )
    submit.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache folder every shard shares (default: the shards' own default, "
        "$PYTEST_ABLATION_CACHE or the user's cache folder); on a cluster, a shared filesystem",
    )
    submit.add_argument(
        "--report-dir",
        default="reports",
        metavar="DIR",
        help="the merged report's folder; shard I writes to DIR/shard-I (default reports)",
    )
    submit.add_argument(
        "--poll",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="how often to look at the jobs (default 10)",
    )
    from ..harness.trackers.merged import add_arguments as add_tracker_arguments

    add_tracker_arguments(submit)
    submit.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the arguments of every shard's pytest")
    submit.set_defaults(run=cmd_submit)
