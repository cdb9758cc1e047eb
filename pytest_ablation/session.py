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
    DeviceAssignment,
    DeviceError,
    assign,
    auto_worker_count,
    cpu_count,
    resolve_devices,
)
from .files import check_writable_dir
from .options import AblationOptions, OptionError, read_options
from .study import Catalog

WORKER_DEVICE = "ablation_device"
WORKER_SUMMARY = "ablation"


def read_options_or_fail(config) -> AblationOptions:
    try:
        return read_options(config)
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None


def visible_gpus(config) -> list[str]:
    gpus = config.hook.pytest_ablation_visible_gpus(config=config)
    return list(gpus) if gpus is not None else []


def auto_worker_count_for(config) -> int:
    """``-n auto``: one worker per device ``--ablation-devices`` resolves to (cores on CPU)."""
    options = read_options_or_fail(config)
    try:
        devices = resolve_devices(options.devices, visible_gpus(config))
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
        self.workers: dict[str, dict] = {}
        self.gate: dict | None = None
        self.report: dict | None = None
        self.report_paths: dict | None = None
        self.assignment: DeviceAssignment | None = None
        self.devices: list[str] | None = None
        self.gpus: list[str] = []
        self._pool = None
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
        target = self.options.save_baseline
        if target is not None:
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
            self.gpus = visible_gpus(self.config)
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
            )
        return self._pool

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
        written = write_preview(_frames_hwc(videos[0]), root / media_dir, variant, fps=fps)
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

    # -- results ------------------------------------------------------------------------
    def receive(self, report) -> None:
        payload = getattr(report, "ablation", None)
        if not payload:
            return
        self.cases_run.add((payload["study"], payload["variant"]))
        self.records.extend(payload.get("records", ()))

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

    def receive_worker(self, name: str, summary: dict | None) -> None:
        if summary:
            self.workers[name] = summary

    def finish_controller(self) -> None:
        if self._groups_dir is not None:
            import shutil

            shutil.rmtree(self._groups_dir, ignore_errors=True)

    def finish_worker(self) -> None:
        if self.is_worker:
            self.config.workeroutput[WORKER_SUMMARY] = self.worker_summary()
        if self._pool is not None:
            self._pool.release()

    def finish(self, session) -> None:
        """On the controller: assemble, write and gate the report."""
        if self.is_worker:
            return
        if not self.distributed and (self._pool is not None or self._cache is not None):
            self.workers["main"] = self.worker_summary()
        if not self.records and not self.cases_run:
            return
        from .gate import compare, summarize
        from .report import build_report, write_reports
        from .report.build import environment, merge_cache_stats

        metric_info = self._metric_info()
        report = build_report(
            self.records,
            profile=self.profile.to_dict(),
            environment=environment(Path(self.config.rootpath), self.workers),
            metric_info=metric_info,
            cache=merge_cache_stats(self.workers.values()),
            shard=self.options.shard,
        )
        if self.baseline is not None:
            rows = compare(
                self.baseline["results"],
                report["results"],
                ran=self.cases_run,
                tolerances=self.options.tolerances,
                directions={name: info["direction"] for name, info in metric_info.items()},
            )
            self.gate = report["gate"] = summarize(rows, str(self.options.gate))
        self.config.hook.pytest_ablation_report(config=self.config, report=report)
        self.report = report
        self.report_paths = write_reports(report, self.options.report_dir)
        if self.options.save_baseline is not None:
            from .files import write_json_atomic

            write_json_atomic(self.options.save_baseline, report)
        if self.gate is not None and self.gate["failed"] and session.exitstatus == 0:
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
