"""The state of one pytest-ablation run, in one process.

The plugin's hooks only delegate here. The controller (or the single process) owns the
report and the gate; a worker owns its device, its model pool and its cache handle, and
sends back its records through test reports and its summary through ``workeroutput``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from .cache import ResultCache
from .devices import (
    AUTO,
    DeviceAssignment,
    DeviceError,
    assign,
    auto_worker_count,
    cpu_count,
    resolve_devices,
)
from .files import check_writable_dir, free_bytes
from .options import AblationOptions, OptionError, read_options
from .outcomes import Outcomes, selection_paths
from .study import Catalog

WORKER_DEVICE = "ablation_device"
WORKER_SUMMARY = "ablation"
WORKER_CATALOG = "ablation_catalog"
# Below this much free space on the report folder's disk a run would end unable to write
# its report; it stops at start-up instead.
MIN_FREE_BYTES = 10 * 2**20


def read_options_or_fail(config) -> AblationOptions:
    try:
        return read_options(config)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None


def visible_gpus(config, requested) -> list[str]:
    """The GPUs' physical ids, asked of the hook only when the devices asked for need them."""
    if requested != AUTO and not any(name.startswith("cuda") for name in requested):
        return []
    gpus = config.hook.pytest_ablation_visible_gpus(config=config)
    return [str(gpu) for gpu in gpus] if gpus is not None else []


def auto_worker_count_for(config) -> int:
    """``-n auto``: one worker per device ``--ablation-devices`` resolves to (cores on CPU)."""
    options = read_options_or_fail(config)
    try:
        devices = resolve_devices(options.devices, visible_gpus(config, options.devices))
    except DeviceError as error:
        raise pytest.UsageError(str(error)) from None
    return auto_worker_count(devices, cpu_count())


class AblationSession:
    def __init__(self, config):
        self.config = config
        self.options = read_options_or_fail(config)
        self.is_worker = hasattr(config, "workerinput")
        self.catalog = Catalog()
        self.records: list[dict] = []
        self.cases_run: set[tuple[str, str]] = set()
        self.outcomes = Outcomes()
        self.selected: set[str] = set()
        self.shard_dropped: set[str] = set()
        self.worker_catalogs: dict[str, dict] = {}
        self.write_error: str | None = None
        self.workers: dict[str, dict] = {}
        self.gate: dict | None = None
        self.report: dict | None = None
        self.report_paths: dict | None = None
        self.assignment: DeviceAssignment | None = None
        self.devices: list[str] | None = None
        self.gpus: list[str] = []
        self._pool = None
        self._model_group: str | None = None
        self._scorer = None
        self._cache = None
        self._groups_dir = None
        self.profile = self._load_profile()
        self._register_metrics()
        if self.is_worker:
            self.assignment = DeviceAssignment.from_dict(config.workerinput[WORKER_DEVICE])
        else:
            self._check_outputs()
            self.baseline = self._load_baseline()

    # -- start-up checks: all before any model loads --------------------------------------
    def _load_profile(self):
        from .profiles import ProfileError, load_profile

        try:
            return load_profile(self.options.profile)
        except ProfileError as error:
            raise pytest.UsageError(f"--ablation-profile: {error}") from None

    def _register_metrics(self) -> None:
        from .metrics.registry import register_metric

        self.config.hook.pytest_ablation_add_metrics(
            register=functools.partial(register_metric, replace=True)
        )

    def _check_outputs(self) -> None:
        problem = check_writable_dir(self.options.report_dir)
        if problem:
            raise pytest.UsageError(
                f"--ablation-report-dir: cannot write reports to {self.options.report_dir}: {problem}"
            )
        free = free_bytes(self.options.report_dir)
        if free is not None and free < MIN_FREE_BYTES:
            raise pytest.UsageError(
                f"--ablation-report-dir: only {free // 1024} KiB free on the disk of "
                f"{self.options.report_dir}; a run needs at least {MIN_FREE_BYTES // 2**20} MiB "
                "there to write its report"
            )
        if not self.options.no_cache:
            problem = check_writable_dir(self.options.cache_dir)
            if problem:
                raise pytest.UsageError(
                    f"--ablation-cache-dir: cannot write to {self.options.cache_dir}: {problem}; "
                    "allowed: a writable folder (or pass --ablation-no-cache)"
                )
        target = self.options.save_baseline
        if target is not None:
            if target.is_dir():
                raise pytest.UsageError(
                    f"--ablation-save-baseline: {target} is a directory; expected a file path "
                    "such as reports/baseline.json"
                )
            problem = check_writable_dir(target.parent)
            if problem:
                raise pytest.UsageError(
                    f"--ablation-save-baseline: cannot write {target}: {problem}"
                )

    def _load_baseline(self):
        if self.options.gate is None:
            return None
        from .report import ReportError, load_report

        try:
            return load_report(self.options.gate, what="baseline")
        except ReportError as error:
            raise pytest.UsageError(f"--ablation-gate: {error}") from None

    def resolve_devices(self) -> list[str]:
        if self.devices is None:
            self.gpus = visible_gpus(self.config, self.options.devices)
            try:
                self.devices = resolve_devices(self.options.devices, self.gpus)
            except DeviceError as error:
                raise pytest.UsageError(str(error)) from None
        return self.devices

    def start(self) -> None:
        """Session start on the controller: decide devices (workers get theirs later)."""
        if self.is_worker:
            return
        devices = self.resolve_devices()
        if not self.distributed:
            self.assignment = assign(devices, self.gpus, 0)

    @property
    def distributed(self) -> bool:
        return bool(getattr(self.config.option, "dist", "no") != "no" and getattr(self.config.option, "tx", None))

    def groups_dir(self) -> str:
        """A folder where workers publish which model group each collected test is in."""
        if self._groups_dir is None:
            import tempfile

            self._groups_dir = tempfile.mkdtemp(prefix="pytest-ablation-groups-")
        return self._groups_dir

    def worker_assignment(self, worker_index: int) -> DeviceAssignment:
        return assign(self.resolve_devices(), self.gpus, worker_index)

    # -- lazily built machinery ---------------------------------------------------------
    @property
    def cache(self) -> ResultCache:
        if self._cache is None:
            self._cache = ResultCache(self.options.cache_dir, enabled=not self.options.no_cache)
        return self._cache

    @property
    def pool(self):
        if self._pool is None:
            from .pool import ModelPool

            if self.assignment is None:
                self.start()
            self._pool = ModelPool(
                self.profile,
                self.assignment,
                on_load=lambda role, seconds: self.progress(
                    f"loaded model {role!r} on {self.assignment.device} in {seconds:.1f}s"
                ),
                on_release=lambda roles: self.progress(
                    f"released {', '.join(map(repr, roles))} on {self.assignment.device}: "
                    "the next tests use other models"
                ),
            )
            if self._model_group is not None:
                self._pool.enter_group(self._model_group)
        return self._pool

    def enter_model_group(self, group: str) -> None:
        """A test of ``group`` is about to run on this process (see ``ModelPool.enter_group``)."""
        self._model_group = group
        if self._pool is not None:
            self._pool.enter_group(group)

    @property
    def scorer(self):
        if self._scorer is None:
            from .scoring import Scorer

            self._scorer = Scorer(self.cache, self.pool, self.metric)
        return self._scorer

    def metric(self, name: str):
        from .metrics.registry import get_metric

        return get_metric(name)

    def known_metrics(self) -> list[str]:
        from .metrics.registry import metric_names

        return metric_names()

    # -- progress -----------------------------------------------------------------------
    @property
    def show_progress(self) -> bool:
        return not self.is_worker and self.config.option.verbose >= 1

    def progress(self, message: str) -> None:
        if not self.show_progress:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"  [ablation] {message}")
        else:
            reporter.write_line(f"  [ablation] {message}")

    # -- media --------------------------------------------------------------------------
    def save_media(self, record: dict, videos, *, fps: int) -> dict:
        """Write the variant's preview (and, if asked, every video) under the report directory.

        Runs where the video was generated, so nothing large travels between processes; the
        record keeps the paths, relative to the report directory, for report.html.
        """
        from .report.media import save_video, slug, write_preview

        root = self.options.report_dir
        study, variant = slug(record["study"]), slug(record["variant"])
        media_dir = Path("media") / study
        try:
            written = write_preview(_frames_hwc(videos[0]), root / media_dir, variant, fps=fps)
        except OSError as error:
            # A full disk costs the pictures, not the case: its numbers are already scored.
            import warnings

            warnings.warn(f"ablation: previews of {record['study']} {record['variant']} not "
                          f"saved: {error.strerror or error}", stacklevel=2)
            return {}
        saved = {"media": {kind: (media_dir / name).as_posix() for kind, name in written.items()}}
        if self.options.save_videos is not None:
            video_dir = Path("videos") / study / variant
            saved["videos"] = [
                save_video(
                    _frames_hwc(video),
                    root / video_dir / f"{slug(sample['prompt'])}-seed{sample['seed_index']}",
                    self.options.save_videos,
                    fps,
                ).relative_to(root).as_posix()
                for sample, video in zip(record["samples"], videos)
            ]
        return saved

    # -- collection ---------------------------------------------------------------------
    def collected(self, items) -> None:
        for item in items:
            self.catalog.add_item(item)

    def check_studies(self) -> None:
        errors = self.catalog.problems(set(self.known_metrics()))
        if errors:
            raise pytest.UsageError("invalid ablation study:\n  " + "\n  ".join(errors))

    def check_selected(self, nodeids) -> None:
        """The selected cases' needs the profile must meet, checked before any model loads."""
        missing: dict[str, set[str]] = {}
        for nodeid in nodeids:
            case = self.catalog.case(nodeid)
            if case is None:
                continue
            for metric in case.marker.metrics:
                if "clip" in self.metric(metric).needs and "clip" not in self.profile.models:
                    missing.setdefault("clip", set()).add(f"{metric} ({case.study})")
        for role, users in sorted(missing.items()):
            raise pytest.UsageError(
                f"--ablation-profile: profile {self.profile.name!r} has no model role {role!r}, "
                f"which {', '.join(sorted(users))} need(s); its roles are: "
                f"{', '.join(self.profile.models)}; add a [models.{role}] table or choose "
                "another profile"
            )

    def selection_done(self, nodeids, dropped_by_shard=()) -> None:
        self.selected.update(n for n in nodeids if self.catalog.case(n) is not None)
        self.shard_dropped.update(dropped_by_shard)

    def catalog_summary(self) -> dict:
        return {
            "cases": [[c.study, c.variant, c.nodeid] for c in self.catalog.by_nodeid.values()],
            "selected": sorted(self.selected),
            "shard_dropped": sorted(self.shard_dropped),
        }

    # -- results ------------------------------------------------------------------------
    def receive(self, report) -> None:
        self.outcomes.add(report)
        payload = getattr(report, "ablation", None)
        if not payload:
            return
        self.cases_run.add((payload["study"], payload["variant"]))
        self.records.extend(payload.get("records", ()))

    def case_outcomes(self) -> list[dict]:
        """Every case of the collected files, with what happened to it in this run."""
        known: dict[str, tuple[str, str]] = {}
        selected = set(self.selected)
        dropped = set(self.shard_dropped)
        for catalog in [self.catalog_summary(), *self.worker_catalogs.values(), *self._published_catalogs()]:
            for study, variant, nodeid in catalog.get("cases", ()):
                known.setdefault(nodeid, (study, variant))
            selected.update(catalog.get("selected", ()))
            dropped.update(catalog.get("shard_dropped", ()))
        shard = self.options.shard
        cases = []
        for nodeid, (study, variant) in known.items():
            found = self.outcomes.get(nodeid)
            if found is not None:
                outcome, reason = found
            elif nodeid in selected:
                outcome, reason = "unfinished", "selected, but the run ended before it ran"
            elif nodeid in dropped and shard is not None:
                outcome, reason = "deselected", f"on another shard than {shard[0]}/{shard[1]}"
            else:
                outcome, reason = "deselected", "not selected (-k, -m or node ids)"
            cases.append({"study": study, "variant": variant, "nodeid": nodeid,
                          "outcome": outcome, "reason": reason})
        return cases

    def _published_catalogs(self) -> list[dict]:
        """What workers wrote when their collection finished: it survives a killed worker."""
        if self._groups_dir is None:
            return []
        import json

        catalogs = []
        for path in sorted(Path(self._groups_dir).glob("catalog-*.json")):
            try:
                catalogs.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return catalogs

    def worker_summary(self) -> dict:
        assignment = self.assignment
        pool = self._pool
        loaded = sorted(pool.loads) if pool is not None else []
        return {
            "device": assignment.device if assignment else None,
            "device_text": assignment.describe() if assignment else None,
            "physical_gpu": assignment.physical if assignment else None,
            "threads": assignment.threads if assignment else None,
            "loads": dict(pool.loads) if pool is not None else {},
            "load_seconds": dict(pool.load_seconds) if pool is not None else {},
            "models": {role: pool.identity(role) for role in loaded} if pool is not None else {},
            "cache": self._cache.stats.to_dict() if self._cache is not None else {},
        }

    def receive_worker(self, name: str, summary: dict | None, catalog: dict | None = None) -> None:
        if summary:
            self.workers[name] = summary
        if catalog:
            self.worker_catalogs[name] = catalog

    def finish_controller(self) -> None:
        if self._groups_dir is not None:
            import shutil

            shutil.rmtree(self._groups_dir, ignore_errors=True)

    def finish_worker(self) -> None:
        if self.is_worker:
            self.config.workeroutput[WORKER_SUMMARY] = self.worker_summary()
            self.config.workeroutput[WORKER_CATALOG] = self.catalog_summary()
        if self._pool is not None:
            self._pool.release()

    def finish(self, session) -> None:
        """On the controller: assemble, write and gate the report."""
        if self.is_worker:
            return
        if not self.distributed and (self._pool is not None or self._cache is not None):
            self.workers["main"] = self.worker_summary()
        if session.exitstatus == pytest.ExitCode.USAGE_ERROR:
            return
        cases = self.case_outcomes()
        ran = any(c["outcome"] != "deselected" for c in cases)
        if not self.records and not ran and self.options.shard is None:
            return
        if self.options.shard is not None and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            # An empty shard is a normal part of a split (more shards than model groups): it
            # writes its (empty) report so that the merge finds every shard.
            session.exitstatus = pytest.ExitCode.OK
        from .gate import judge_reports, summarize
        from .report import build_report, write_reports
        from .report.build import baseline_problem, environment, merge_cache_stats

        metric_info = self._metric_info()
        files = sorted({c["nodeid"].split("::", 1)[0] for c in cases})
        report = build_report(
            self.records,
            profile=self.profile.to_dict(),
            environment=environment(Path(self.config.rootpath), self.workers),
            metric_info=metric_info,
            cache=merge_cache_stats(self.workers.values()),
            shard=self.options.shard,
            cases=cases,
            selection={**selection_paths(self.config), "files": files},
        )
        if self.baseline is not None:
            rows = judge_reports(self.baseline, report, tolerances=self.options.tolerances)
            self.gate = report["gate"] = summarize(rows, str(self.options.gate))
        self.config.hook.pytest_ablation_report(config=self.config, report=report)
        self.report = report
        failed = False
        try:
            self.report_paths = write_reports(report, self.options.report_dir, keep_runs=self.options.keep_runs)
        except OSError as error:
            failed = True
            self.write_error = (
                f"could not write the report to {self.options.report_dir}: "
                f"{error.strerror or error}; the previous report there is kept"
            )
        if self.options.save_baseline is not None and not failed:
            from .files import write_json_atomic

            problem = baseline_problem(report)
            if problem:
                failed = True
                self.write_error = f"--ablation-save-baseline: not written: {problem}"
            else:
                try:
                    write_json_atomic(self.options.save_baseline, report)
                except OSError as error:
                    failed = True
                    self.write_error = (f"--ablation-save-baseline: could not write "
                                        f"{self.options.save_baseline}: {error.strerror or error}")
        if self.gate is not None and self.gate["failed"] and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if failed and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _metric_info(self) -> dict[str, dict]:
        names = {m for r in self.records for m in r["metrics"]}
        if self.baseline is not None:
            names |= {r["metric"] for r in self.baseline["results"]}
        info = {}
        for name in sorted(names):
            try:
                spec = self.metric(name)
            except ValueError:
                continue
            info[name] = {
                "direction": spec.direction,
                "tolerance": self.options.tolerances.get(name, spec.tolerance),
                "definition": spec.definition,
                "source": spec.source,
            }
        return info


def _frames_hwc(video):
    return video.frames.permute(0, 2, 3, 1).contiguous().numpy()
