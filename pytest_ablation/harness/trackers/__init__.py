"""Experiment trackers: a run's results logged to Weights & Biases or MLflow.

Optional: each tracker needs its package, which the extra of its name installs
(``pip install "pytest-ablation[wandb]"``, ``"[mlflow]"``), and is turned on by its option
(``--ablation-wandb``, ``--ablation-mlflow``). Only the controller logs: it alone holds the
whole report.

Each tracker's module (``wandb_tracker``, ``mlflow_tracker``: not named after the package it
imports, which a module of that name would shadow wherever this folder lands on
``sys.path``) has ``prepare(value, context)``, run at start-up: it imports the package,
resolves the defaults and makes the checks that cost nothing, so that a missing package or
an unusable store stops the run before any model loads. It returns a target whose
``log(run)`` logs the run once the report files are written, and says where it went.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..collector import ResultCollector
    from ..options import AblationOptions


@dataclass(frozen=True)
class TrackerInfo:
    name: str  # its key in AblationOptions.trackers, and the extra that installs it
    label: str
    flag: str
    module: str

    @property
    def install(self) -> str:
        return f'pip install "pytest-ablation[{self.name}]"'


TRACKERS = {
    "wandb": TrackerInfo("wandb", "Weights & Biases", "--ablation-wandb", "wandb_tracker"),
    "mlflow": TrackerInfo("mlflow", "MLflow", "--ablation-mlflow", "mlflow_tracker"),
}


class TrackerError(Exception):
    """A tracker that cannot be used as asked (besides a missing package)."""


@dataclass(frozen=True)
class TrackerContext:
    """What a tracker's defaults are made from, at start-up."""

    report_dir: Path
    rootdir: Path


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker logs at the end: the report as written, where, and how the run ended."""

    report: dict
    report_dir: Path
    options: AblationOptions | MergedRunOptions
    exitstatus: int


def missing_package(info: TrackerInfo, error: ImportError, flag: str | None = None) -> str:
    name = getattr(error, "name", None) or info.name
    return (
        f"{flag or info.flag}: logging to {info.label} needs the {name!r} package, which "
        f"cannot be imported ({error}); install the extra: {info.install}"
    )


class TrackerUsageError(Exception):
    """A tracker asked for that cannot be used: the message names the option and the fix."""


def prepare_targets(
    trackers: dict[str, str | None], context: TrackerContext, flags: dict[str, str] | None = None
) -> list:
    """``(info, target)`` for each tracker asked for (name -> value, None for its default),
    or a ``TrackerUsageError`` naming the option (``flags``: name -> the option as the
    caller spells it; the pytest option by default) when one cannot be used."""
    targets = []
    for name, value in trackers.items():
        info = TRACKERS[name]
        flag = (flags or {}).get(name, info.flag)
        module = importlib.import_module(f"{__name__}.{info.module}")
        try:
            with _no_warnings():
                targets.append((info, module.prepare(value, context)))
        except ImportError as error:
            raise TrackerUsageError(missing_package(info, error, flag)) from None
        except TrackerError as error:
            raise TrackerUsageError(f"{flag}: {error}") from None
    return targets


def log_to_targets(
    targets: list, run: TrackedRun, flags: dict[str, str] | None = None
) -> tuple[list[tuple[str, bool]], bool]:
    """Log ``run`` to each target: the lines to show (text, is a problem) and whether one
    failed. A tracker's failure becomes a line, never a traceback."""
    notes: list[tuple[str, bool]] = []
    failed = False
    for info, target in targets:
        try:
            with _no_warnings():
                notes.append((f"{info.name}: {target.log(run)}", False))
        except Exception as error:
            failed = True
            flag = (flags or {}).get(info.name, info.flag)
            notes.append((f"{flag}: could not log the run to {info.label}: {type(error).__name__}: {error}", True))
    return notes, failed


@dataclass(frozen=True)
class MergedRunOptions:
    """What a tracker logs of the options of a run merged from shards (``pytest-ablation
    merge`` or ``submit``): the shards' own options are in their reports."""

    gate: str | None = None
    tolerances: dict = field(default_factory=dict)
    devices: str | None = None
    no_cache: bool = False
    shard: tuple[int, int] | None = None


def start_trackers(config, options: AblationOptions, collector: ResultCollector) -> None:
    """Prepare the trackers the options ask for and register the hooks that log the run;
    a ``pytest.UsageError`` naming the option when one cannot be used."""
    if not options.trackers:
        return
    context = TrackerContext(report_dir=Path(options.report_dir), rootdir=Path(config.rootpath))
    try:
        targets = prepare_targets(options.trackers, context)
    except TrackerUsageError as error:
        raise pytest.UsageError(str(error)) from None
    config.pluginmanager.register(TrackerHooks(targets, collector), "ablation-trackers")


@contextlib.contextmanager
def _no_warnings():
    # What the trackers' packages warn about is theirs (deprecations inside MLflow's SQL
    # store...), not the run's: it would land in pytest's warnings summary, or, under
    # -W error, stop the log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class TrackerHooks:
    """Keeps the report the run makes and logs it once report.json, report.md and
    report.html are written (``pytest_ablation_report`` is called before they are, and the
    trackers upload those files)."""

    def __init__(self, targets: list, collector: ResultCollector) -> None:
        self._targets = targets
        self._collector = collector
        self._report: dict | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_ablation_report(self, config, report):
        # The dict itself: implementations amend it in place, and it is written as they leave it.
        self._report = report

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        # trylast: after the plugin's own pytest_sessionfinish has written the report and set
        # the exit status (and before the terminal summary, which shows these lines).
        collector = self._collector
        if self._report is None:
            return
        notes = collector.tracker_lines
        if collector.report_paths is None:
            for info, _ in self._targets:
                notes.append((f"{info.name}: not logged: the report could not be written", True))
            return
        run = TrackedRun(
            report=self._report,
            report_dir=Path(collector.options.report_dir),
            options=collector.options,
            exitstatus=int(session.exitstatus),
        )
        lines, failed = log_to_targets(self._targets, run)
        notes.extend(lines)
        if failed and session.exitstatus == pytest.ExitCode.OK:
            # As for a report that could not be written: the run asked for the log.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
