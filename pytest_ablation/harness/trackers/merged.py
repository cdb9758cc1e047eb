"""Logging a merged report: ``pytest-ablation merge --wandb/--mlflow`` and ``submit``'s.

A sharded run is one run: each shard holds part of it, so the shards log nothing themselves
(``submit`` refuses the pytest tracker options in the shards' arguments) and the merged
report is logged once, with the same rows and files as a single run logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from . import (
    TRACKERS,
    MergedRunOptions,
    TrackedRun,
    TrackerContext,
    TrackerUsageError,
    log_to_targets,
    prepare_targets,
)

FLAGS = {"wandb": "--wandb", "mlflow": "--mlflow"}


def add_arguments(parser) -> None:
    """``--wandb [[ENTITY/]PROJECT]`` and ``--mlflow [URI|DIR]``, defaults as the pytest
    options' (``--ablation-wandb``, ``--ablation-mlflow``), under the report folder."""
    parser.add_argument(
        FLAGS["wandb"],
        nargs="?",
        const=True,
        default=None,
        metavar="[ENTITY/]PROJECT",
        help="log the merged report to Weights & Biases, offline (under the report folder's "
        "wandb/) unless WANDB_MODE says otherwise; project as --ablation-wandb's",
    )
    parser.add_argument(
        FLAGS["mlflow"],
        nargs="?",
        const=True,
        default=None,
        metavar="URI|DIR",
        help="log the merged report to MLflow: a tracking URI, or a folder for a local store "
        "(default: the report folder's mlflow/)",
    )


def requested(args) -> dict[str, str | None]:
    """The trackers asked for: name -> value (None for the tracker's default); an
    ``OptionError`` naming the option for a bad value."""
    from ..options import OptionError, parse_tracker

    trackers = {}
    for name, flag in FLAGS.items():
        given = getattr(args, name)
        if isinstance(given, str) and Path(given).is_file():
            # ``merge --mlflow a/report.json b/report.json``: argparse gave it a report.
            raise OptionError(
                f"{flag}: took {given!r}, a file, as its value; put {flag} after "
                f"the report files, or give its value with '=' ({flag}=VALUE)"
            )
        on, value = parse_tracker(name, given, Path.cwd(), flag)
        if on:
            trackers[name] = value
    return trackers


def prepare(args, report_dir: Path) -> list:
    """The targets to log to, checked before any work (a missing package, an unusable
    store): a ``ReportError`` naming the option when one cannot be used."""
    from ...results.report_json import ReportError

    trackers = requested(args)
    if not trackers:
        return []
    context = TrackerContext(report_dir=Path(report_dir), rootdir=Path.cwd())
    try:
        return prepare_targets(trackers, context, FLAGS)
    except TrackerUsageError as error:
        raise ReportError(str(error)) from None


def log_merged(
    targets: list, report: dict, report_dir: Path, *, exitstatus: int, gate: str | None, tolerances: dict, out: IO[str]
) -> bool:
    """Log the merged ``report`` (written in ``report_dir``) to ``targets``, print where each
    went to ``out``; whether every one succeeded."""
    if not targets:
        return True
    options = MergedRunOptions(gate=gate, tolerances=dict(tolerances))
    run = TrackedRun(report=report, report_dir=Path(report_dir), options=options, exitstatus=exitstatus)
    lines, failed = log_to_targets(targets, run, FLAGS)
    for text, _ in lines:
        out.write(text + "\n")
    return not failed


def refused_in_shards(arg: str) -> str | None:
    """The message refusing a pytest tracker option among a shard's arguments, else None."""
    option = arg.split("=", 1)[0]
    for name, info in TRACKERS.items():
        if option == info.flag:
            return (
                f"{info.flag}: each shard would log its own part of the run; log the merged "
                f"report once with submit's {FLAGS[name]} instead"
            )
    return None
