"""The controller's side of a run: what the cases produced, the report, the gate and the
exit status.

Made on the controller of an xdist run, or in a run without workers, after the start-up
checks of the report folder, the cache folder and the baseline (before any model loads).
It receives every test report (records and outcomes travel with them from the workers) and
each worker's summary and catalogue; ``finish`` builds the report, gates it, writes it and
sets the exit status.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from ..files import check_writable_dir, free_bytes
from ..results.outcomes import Outcomes, selection_paths

if TYPE_CHECKING:
    from ..run.catalog import Catalog
    from .session import AblationSession
    from .worker import WorkerContext

# Below this much free space on the report folder's disk a run would end unable to write
# its report; it stops at start-up instead.
MIN_FREE_BYTES = 10 * 2**20


def check_outputs(options) -> None:
    """The report folder, the cache folder and the baseline to save must be writable."""
    problem = check_writable_dir(options.report_dir)
    if problem:
        raise pytest.UsageError(f"--ablation-report-dir: cannot write reports to {options.report_dir}: {problem}")
    free = free_bytes(options.report_dir)
    if free is not None and free < MIN_FREE_BYTES:
        raise pytest.UsageError(
            f"--ablation-report-dir: only {free // 1024} KiB free on the disk of "
            f"{options.report_dir}; a run needs at least {MIN_FREE_BYTES // 2**20} MiB "
            "there to write its report"
        )
    if not options.no_cache:
        problem = check_writable_dir(options.cache_dir)
        if problem:
            raise pytest.UsageError(
                f"--ablation-cache-dir: cannot write to {options.cache_dir}: {problem}; "
                "allowed: a writable folder (or pass --ablation-no-cache)"
            )
    target = options.save_baseline
    if target is not None:
        if target.is_dir():
            raise pytest.UsageError(
                f"--ablation-save-baseline: {target} is a directory; expected a file path such as reports/baseline.json"
            )
        problem = check_writable_dir(target.parent)
        if problem:
            raise pytest.UsageError(f"--ablation-save-baseline: cannot write {target}: {problem}")


def load_baseline(options, profile_name: str):
    """The report ``--ablation-gate`` names, checked (a baseline of another profile is
    refused at start-up); None without the option."""
    if options.gate is None:
        return None
    from ..results.gate import profile_mismatch
    from ..results.report_json import ReportError, load_report

    try:
        baseline = load_report(options.gate, what="baseline")
    except ReportError as error:
        raise pytest.UsageError(f"--ablation-gate: {error}") from None
    mismatch = profile_mismatch(baseline, {"profile": {"name": profile_name}})
    if mismatch:
        raise pytest.UsageError(f"--ablation-gate: {options.gate}: {mismatch}")
    return baseline


class ResultCollector:
    """Results, outcomes and worker summaries of the run, and its report when it finishes.

    After ``finish``: ``report`` (None when there was nothing to report), ``gate`` (the
    verdict against the baseline, if any), ``report_paths``, ``write_error`` (what could
    not be written) and ``nothing_to_run`` (a shard the split left empty), for the terminal
    summary.
    """

    def __init__(self, session: AblationSession, catalog: Catalog) -> None:
        self.options = session.options
        check_outputs(self.options)
        self._baseline = load_baseline(self.options, session.profile.name)
        self._session = session
        self._catalog = catalog
        self._records: list[dict] = []
        self._outcomes = Outcomes()
        self._workers: dict[str, dict] = {}
        self._catalogs: list[dict] = []
        self.report: dict | None = None
        self.gate: dict | None = None
        self.report_paths: dict | None = None
        self.write_error: str | None = None
        self.nothing_to_run = False
        # (line, failed) of each experiment tracker that logged the run, or could not (trackers/).
        self.tracker_lines: list[tuple[str, bool]] = []

    def receive(self, report) -> None:
        """A test report of any phase, from this process or a worker."""
        self._outcomes.add(report)
        payload = getattr(report, "ablation", None)
        if payload:
            self._records.extend(payload.get("records", ()))

    def receive_worker(self, name: str, summary: dict | None = None, catalog: dict | None = None) -> None:
        """What a worker said of itself (``WorkerContext.summary``) and of its collection
        (``Catalog.summary``); either may be missing, e.g. for a worker that crashed."""
        if summary:
            self._workers[name] = summary
        if catalog:
            self._catalogs.append(catalog)

    def finish(self, session, worker: WorkerContext | None = None) -> None:
        """Assemble, gate and write the report, and set ``session.exitstatus``; ``worker``
        is this process's own, in a run without workers."""
        if worker is not None and worker.used:
            self._workers["main"] = cast(dict, worker.summary())  # a used worker has a summary
        if session.exitstatus == pytest.ExitCode.USAGE_ERROR:
            return
        cases = self._case_outcomes()
        # A run in which no case reached an outcome (--collect-only, --fixtures, or stopped
        # before the first case) made nothing: it writes nothing, so the last report stays.
        ran = any(c["outcome"] not in ("deselected", "unfinished") for c in cases)
        if not self._records and not ran and self.options.shard is None:
            return
        if self.options.shard is not None and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            # An empty shard is a normal part of a split (more shards than selected tests):
            # it exits 0 and writes its (empty) report so that the merge finds every shard.
            self.nothing_to_run = True
            session.exitstatus = pytest.ExitCode.OK
        report = self._build(cases)
        config = self._session.config
        config.hook.pytest_ablation_report(config=config, report=report)
        self.report = report
        failed = not self._write(report)
        if self.gate is not None and self.gate["failed"] and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if failed and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _case_outcomes(self) -> list[dict]:
        """Every case of the collected files, with what happened to it in this run."""
        known: dict[str, tuple[str, str]] = {}
        selected: set[str] = set()
        dropped: set[str] = set()
        for catalog in [self._catalog.summary(), *self._catalogs]:
            for study, variant, nodeid in catalog.get("cases", ()):
                known.setdefault(nodeid, (study, variant))
            selected.update(catalog.get("selected", ()))
            dropped.update(catalog.get("shard_dropped", ()))
        shard = self.options.shard
        cases = []
        for nodeid, (study, variant) in known.items():
            found = self._outcomes.get(nodeid)
            if found is not None:
                outcome, reason = found
            elif nodeid in selected:
                outcome, reason = "unfinished", "selected, but the run ended before it ran"
            elif nodeid in dropped and shard is not None:
                outcome, reason = "deselected", f"on another shard than {shard[0]}/{shard[1]}"
            else:
                outcome, reason = "deselected", "not selected (-k, -m or node ids)"
            cases.append({"study": study, "variant": variant, "nodeid": nodeid, "outcome": outcome, "reason": reason})
        return cases

    def _build(self, cases: list[dict]) -> dict:
        """The report of the run, with the gate's verdict when there is a baseline."""
        from ..results.gate import gate_verdict
        from ..results.report_json import build_report
        from ..results.report_json import environment, merge_cache_stats

        config = self._session.config
        files = sorted({c["nodeid"].split("::", 1)[0] for c in cases})
        report = build_report(
            self._records,
            profile=self._session.profile.to_dict(),
            environment=environment(Path(config.rootpath), self._workers),
            metric_info=self._metric_info(),
            cache=merge_cache_stats(self._workers.values()),
            shard=self.options.shard,
            cases=cases,
            selection={**selection_paths(config), "files": files},
        )
        if self._baseline is not None:
            self.gate = report["gate"] = gate_verdict(
                self._baseline, report, str(self.options.gate), tolerances=self.options.tolerances
            )
        return report

    def _write(self, report: dict) -> bool:
        """Write the report files and, if asked, the baseline; False (and ``write_error``)
        when something could not be written."""
        from ..report.write import write_reports

        options = self.options
        try:
            self.report_paths = write_reports(report, options.report_dir, keep_runs=options.keep_runs)
        except OSError as error:
            self.write_error = (
                f"could not write the report to {options.report_dir}: "
                f"{error.strerror or error}; the previous report there is kept"
            )
            return False
        if options.save_baseline is None:
            return True
        from ..files import write_json_atomic
        from ..results.report_json import baseline_problem

        problem = baseline_problem(report)
        if problem:
            self.write_error = f"--ablation-save-baseline: not written: {problem}"
            return False
        try:
            write_json_atomic(options.save_baseline, report)
        except OSError as error:
            self.write_error = (
                f"--ablation-save-baseline: could not write {options.save_baseline}: {error.strerror or error}"
            )
            return False
        return True

    def _metric_info(self) -> dict[str, dict]:
        names = {m for r in self._records for m in (*r["metrics"], *(r.get("set_metrics") or ()))}
        if self._baseline is not None:
            from ..results.gate import report_metrics

            names |= report_metrics(self._baseline)
        info = {}
        for name in sorted(names):
            try:
                spec = self._session.metric(name)
            except ValueError:
                continue
            info[name] = {
                "direction": spec.direction,
                "tolerance": self.options.tolerances.get(name, spec.tolerance),
                "definition": spec.definition,
                "source": spec.source,
            }
        return info
