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
from dataclasses import dataclass
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
    options: "AblationOptions"
    exitstatus: int


def missing_package(info: TrackerInfo, error: ImportError) -> str:
    name = getattr(error, "name", None) or info.name
    return (f"{info.flag}: logging to {info.label} needs the {name!r} package, which cannot be "
            f"imported ({error}); install the extra: {info.install}")


def start_trackers(config, options: "AblationOptions", collector: "ResultCollector") -> None:
    """Prepare the trackers the options ask for and register the hooks that log the run;
    a ``pytest.UsageError`` naming the option when one cannot be used."""
    if not options.trackers:
        return
    context = TrackerContext(report_dir=Path(options.report_dir), rootdir=Path(config.rootpath))
    targets = []
    for name, value in options.trackers.items():
        info = TRACKERS[name]
        module = importlib.import_module(f"{__name__}.{info.module}")
        try:
            with _no_warnings():
                targets.append((info, module.prepare(value, context)))
        except ImportError as error:
            raise pytest.UsageError(missing_package(info, error)) from None
        except TrackerError as error:
            raise pytest.UsageError(f"{info.flag}: {error}") from None
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

    def __init__(self, targets: list, collector: "ResultCollector") -> None:
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
        run = TrackedRun(report=self._report, report_dir=Path(collector.options.report_dir),
                         options=collector.options, exitstatus=int(session.exitstatus))
        failed = False
        for info, target in self._targets:
            try:
                with _no_warnings():
                    notes.append((f"{info.name}: {target.log(run)}", False))
            except Exception as error:  # a tracker's failure is reported, never a traceback
                failed = True
                notes.append((f"{info.flag}: could not log the run to {info.label}: "
                               f"{type(error).__name__}: {error}", True))
        if failed and session.exitstatus == pytest.ExitCode.OK:
            # As for a report that could not be written: the run asked for the log.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
